from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import InvalidRequest, NotFound
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.periods import (
    Bucket,
    Coverage,
    Interval,
    PeriodBound,
    TooManyBuckets,
    buckets,
    cover,
    previous_period,
    resolve_period,
)
from feedback_api.kit.time import utcnow
from feedback_api.metrics import measures
from feedback_api.metrics.formulas import Comparison as RawComparison
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.repository import (
    ROLLUP_DIMENSIONS,
    MetricRepository,
    TenantMetricSettings,
)
from feedback_api.metrics.schemas import (
    Bounds,
    Breakdown,
    BreakdownRow,
    CompareSide,
    Comparison,
    ComparisonResult,
    Integrity,
    MetricKind,
    MetricResult,
    MetricValue,
    Period,
    Share,
    Summary,
    SummaryItem,
    Trend,
    TrendBucket,
)
from feedback_api.metrics.selection import Selection

REBUILD_JOB = "metrics.rebuild"
FIXED_SCALES = {MetricKind.NPS: (0, 10), MetricKind.CSAT: (1, 5), MetricKind.CES: (1, 7)}


@dataclass(slots=True)
class Tally:
    histogram: Histogram
    excluded: int = 0


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """What every metrics endpoint shares: whose responses, which ones, how sure."""

    selection: Selection
    start: PeriodBound = None
    end: PeriodBound = None
    integrity: Integrity = Integrity.VALID
    confidence: float = 0.95
    # The key holds metrics:small_cells: cells below the tenant's minimum are shown.
    small_cells: bool = False

    @property
    def kind(self) -> MetricKind:
        return MetricKind(self.selection.kind)


@dataclass(frozen=True, slots=True)
class Limits:
    """How one read treats small cells: the tenant's thresholds and the key's exemption."""

    low_sample_n: int
    min_cell: int
    small_cells: bool

    def suppressed(self, n: int) -> bool:
        """Whether a cell of n responses would single out the people in it. Every cell
        counts, filtered or not: a tenant-wide total of 3 is 3 people's answers. An empty
        cell has nothing to hide."""
        return not self.small_cells and 0 < n < self.min_cell


@dataclass(slots=True)
class _Context:
    settings: TenantMetricSettings
    zone: ZoneInfo
    tallies: dict[tuple[int, str | None], Tally] = field(default_factory=dict)


def scale_for(kind: MetricKind, scale_min: int | None, scale_max: int | None) -> tuple[int, int]:
    """The fixed scale of nps/csat/ces, or the one a rating query names."""
    if kind is MetricKind.RATING:
        if scale_min is None or scale_max is None or scale_min >= scale_max:
            missing = scale_min is None or scale_max is None
            raise InvalidRequest.at(
                ("query", "scale_min"),
                "scale_required" if missing else "scale_range",
                "give the rating scale, e.g. scale_min=1&scale_max=10",
                detail="a rating metric needs scale_min < scale_max",
            )
        return scale_min, scale_max
    fixed = FIXED_SCALES[kind]
    if (scale_min, scale_max) not in ((None, None), fixed):
        message = f"{kind.value} is always on the scale {fixed[0]}–{fixed[1]}"
        raise InvalidRequest.at(
            ("query", "scale_min" if scale_min is not None else "scale_max"),
            "scale_fixed",
            f"{message}; leave scale_min and scale_max out",
            detail=message,
        )
    return fixed


def _bounds(interval: object) -> Bounds | None:
    if interval is None:
        return None
    return Bounds(low=interval.low, high=interval.high)  # type: ignore[attr-defined]


def _fields(tally: Tally, kind: MetricKind, confidence: float, limits: Limits) -> dict[str, Any]:
    """A MetricValue's fields, to build it or a model extending it in one validation.
    A suppressed cell keeps its counts of responses and withholds everything computed from
    their scores: the category counts too, since in a cell of 2 `detractors: 2` is both
    answers, and the sd, since with the mean it gives both scores of a pair."""
    n = tally.histogram.n
    if limits.suppressed(n):
        return {
            "n": n,
            "suppressed": True,
            "value": None,
            "interval": None,
            "margin": None,
            "low_sample": n < limits.low_sample_n,
            "categories": None,
            "share": None,
            "sd": None,
            "distribution": None,
            "excluded": tally.excluded,
        }
    result = measures.measure(kind.value, tally.histogram, confidence)
    share = None
    if result.share is not None:
        share = Share(
            label=result.share.label,
            count=result.share.count,
            value=result.share.value,
            interval=_bounds(result.share.interval),
        )
    return {
        "n": result.n,
        "suppressed": False,
        "value": result.value,
        "interval": _bounds(result.interval),
        "margin": result.margin,
        "low_sample": result.n < limits.low_sample_n,
        "categories": result.categories,
        "share": share,
        "sd": result.sd,
        "distribution": list(tally.histogram.counts),
        "excluded": tally.excluded,
    }


def _value(tally: Tally, kind: MetricKind, confidence: float, limits: Limits) -> MetricValue:
    return MetricValue(**_fields(tally, kind, confidence, limits))


#: For other reports over responses: a value and a comparison exactly as the metrics give.
metric_value = _value


def share_value(label: str, k: int, n: int, confidence: float) -> Share:
    """k of n as the metrics report a share: percent, with the Wilson interval."""
    raw = measures.proportion(label, k, n, confidence)
    return Share(label=raw.label, count=raw.count, value=raw.value, interval=_bounds(raw.interval))


def compare_tallies(
    kind: MetricKind, a: Tally, b: Tally, limits: Limits, confidence: float, alpha: float
) -> ComparisonResult | None:
    """b − a, unless a side is suppressed: the delta and the other side's value would give
    the suppressed one away."""
    if limits.suppressed(a.histogram.n) or limits.suppressed(b.histogram.n):
        return None
    raw = measures.compare(kind.value, a.histogram, b.histogram, confidence=confidence, alpha=alpha)
    return _comparison(raw, alpha)


def _comparison(raw: RawComparison | None, alpha: float) -> ComparisonResult | None:
    if raw is None:
        return None
    return ComparisonResult(
        test=raw.test,  # type: ignore[arg-type]
        delta=raw.delta,
        interval=_bounds(raw.interval),
        p_value=raw.p_value,
        significant=raw.significant,
        alpha=alpha,
        statistic=raw.statistic,
        degrees_of_freedom=raw.degrees_of_freedom,
    )


def _period(start: datetime, end: datetime, zone: ZoneInfo) -> Period:
    return Period(from_=start.astimezone(zone), to=end.astimezone(zone), timezone=zone.key)


class MetricService:
    async def _context(self, session: AsyncSession, tenant_id: UUID) -> _Context:
        settings = await MetricRepository(session).settings(tenant_id)
        if settings is None:
            raise NotFound("no such tenant")
        return _Context(settings=settings, zone=ZoneInfo(settings.timezone))

    def _limits(self, ctx: _Context, query: MetricQuery) -> Limits:
        return Limits(
            low_sample_n=ctx.settings.low_sample_n,
            min_cell=ctx.settings.min_cell_n,
            small_cells=query.small_cells,
        )

    def _resolve(
        self, query: MetricQuery, zone: ZoneInfo, names: tuple[str, str] = ("from", "to")
    ) -> tuple[datetime, datetime]:
        return resolve_period(query.start, query.end, zone, utcnow(), names)

    async def frame(
        self, session: AsyncSession, query: MetricQuery
    ) -> tuple[datetime, datetime, Period, Limits]:
        """For other reports over the same responses: the period as the metrics read it
        (tenant's time zone) and the small-cell limits the caller is held to."""
        ctx = await self._context(session, query.selection.tenant_id)
        lo, hi = self._resolve(query, ctx.zone)
        return lo, hi, _period(lo, hi, ctx.zone), self._limits(ctx, query)

    async def period(
        self, session: AsyncSession, tenant_id: UUID, start: PeriodBound, end: PeriodBound
    ) -> tuple[datetime, datetime, Period]:
        """A period as the metrics endpoints read `from`/`to` (dates are local midnights,
        default the last 30 days), for other reports that take the same parameters."""
        ctx = await self._context(session, tenant_id)
        selection = Selection(tenant_id=tenant_id, kind="nps", scale_min=0, scale_max=10)
        lo, hi = self._resolve(MetricQuery(selection, start, end), ctx.zone)
        return lo, hi, _period(lo, hi, ctx.zone)

    async def _tally(
        self,
        session: AsyncSession,
        ctx: _Context,
        query: MetricQuery,
        parts: list[Bucket],
        group_by: str | None = None,
    ) -> dict[tuple[int, str | None], Tally]:
        """Histograms per (bucket, group): from the rollup when it can answer (tenant's
        time zone current, filters and grouping on rollup dimensions), else from raw rows."""
        selection = query.selection
        rollup = (
            ctx.settings.rollup_timezone == ctx.settings.timezone
            and selection.rollup_ready
            and (group_by is None or group_by in ROLLUP_DIMENSIONS)
        )
        raw_bounds = None
        if rollup:
            coverage = cover(parts, ctx.zone)
        else:
            coverage = Coverage(raw=[(b.index, b.start, b.end) for b in parts])
            if len(parts) > 1:
                raw_bounds = [b.start for b in parts]
        rows = await MetricRepository(session).histograms(
            selection, coverage, group_by=group_by, raw_bounds=raw_bounds
        )
        include = query.integrity is Integrity.ALL
        tallies: dict[tuple[int, str | None], Tally] = {}
        for row in rows:
            key = (row.bucket, row.group)
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = Tally(Histogram(selection.scale_min, selection.scale_max))
            if row.counts is not None:
                n = sum(row.counts)
                if include or not row.excluded:
                    tally.histogram.add_counts(row.counts)
            else:
                assert row.score is not None
                n = row.n
                if include or not row.excluded:
                    tally.histogram.add(row.score, n)
            if row.excluded:
                tally.excluded += n
        return tallies

    def _empty(self, selection: Selection) -> Tally:
        return Tally(Histogram(selection.scale_min, selection.scale_max))

    async def _one(
        self,
        session: AsyncSession,
        ctx: _Context,
        query: MetricQuery,
        start: datetime,
        end: datetime,
    ) -> Tally:
        tallies = await self._tally(session, ctx, query, buckets(start, end, ctx.zone, None))
        return tallies.get((0, None)) or self._empty(query.selection)

    async def tally(
        self, session: AsyncSession, query: MetricQuery, start: datetime, end: datetime
    ) -> Tally:
        """For other domains that measure a selection over resolved instants (actions'
        baselines and impact): the histogram as the metrics read it."""
        ctx = await self._context(session, query.selection.tenant_id)
        return await self._one(session, ctx, query, start, end)

    async def metric(
        self, session: AsyncSession, query: MetricQuery, target_margin: float | None = None
    ) -> MetricResult:
        ctx = await self._context(session, query.selection.tenant_id)
        start, end = self._resolve(query, ctx.zone)
        tally = await self._one(session, ctx, query, start, end)
        limits = self._limits(ctx, query)
        fields = _fields(tally, query.kind, query.confidence, limits)
        needed = None
        if target_margin is not None:
            # A suppressed cell's variance is its scores' too: plan as if none were seen.
            seen = self._empty(query.selection) if fields["suppressed"] else tally
            needed = measures.needed_n(
                query.kind.value, seen.histogram, target_margin, query.confidence
            )
        return MetricResult(
            **fields,
            kind=query.kind,
            scale_min=query.selection.scale_min,
            scale_max=query.selection.scale_max,
            confidence=query.confidence,
            period=_period(start, end, ctx.zone),
            integrity=query.integrity,
            min_cell=limits.min_cell,
            needed_n=needed,
        )

    async def trend(self, session: AsyncSession, query: MetricQuery, interval: Interval) -> Trend:
        ctx = await self._context(session, query.selection.tenant_id)
        start, end = self._resolve(query, ctx.zone)
        try:
            parts = buckets(start, end, ctx.zone, interval)
        except TooManyBuckets as exc:
            raise InvalidRequest.at(
                ("query", "interval"),
                "too_many_buckets",
                str(exc),
                detail=f"{exc}: shorten the period or use a longer interval",
            ) from None
        tallies = await self._tally(session, ctx, query, parts)
        limits = self._limits(ctx, query)
        return Trend(
            kind=query.kind,
            interval=interval.value,
            scale_min=query.selection.scale_min,
            scale_max=query.selection.scale_max,
            confidence=query.confidence,
            period=_period(start, end, ctx.zone),
            integrity=query.integrity,
            min_cell=limits.min_cell,
            buckets=[
                TrendBucket(
                    **_fields(
                        tallies.get((b.index, None)) or self._empty(query.selection),
                        query.kind,
                        query.confidence,
                        limits,
                    ),
                    start=b.start,
                    end=b.end,
                )
                for b in parts
            ],
        )

    async def breakdown(self, session: AsyncSession, query: MetricQuery, by: str) -> Breakdown:
        ctx = await self._context(session, query.selection.tenant_id)
        start, end = self._resolve(query, ctx.zone)
        tallies = await self._tally(
            session, ctx, query, buckets(start, end, ctx.zone, None), group_by=by
        )
        groups = {group: tally for (_, group), tally in tallies.items()}
        limits = self._limits(ctx, query)
        # No group is suppressed beside shown ones (with a total or the other groups, it
        # could be worked out): small groups are merged into `other`, which the smallest
        # shown groups join while it is too small. A key that may read small cells gets
        # every group on its own.
        kept, merged = merge_small_cells(
            {k: t.histogram.n for k, t in groups.items()},
            1 if limits.small_cells else limits.min_cell,
        )
        other: Tally | None = None
        if merged and by == "tag":
            # A response with two merged tags is in both groups but is one person's answer:
            # `other` counts the responses, each once, so that its n is true and one
            # response tagged five ways is not a cell of five. If that is too few, the
            # smallest shown tag joins, as above; once one has, `other` holds all of that
            # tag's responses, at least the minimum, so this takes one more read at most.
            while True:
                tag_any = replace(query.selection, tag_any=tuple(merged))
                other = await self._one(session, ctx, replace(query, selection=tag_any), start, end)
                if not kept or other.histogram.n >= limits.min_cell:
                    break
                merged.append(kept.pop())
        elif merged:
            other = self._empty(query.selection)
            for key in merged:
                other.histogram = other.histogram.merged(groups[key].histogram)
                other.excluded += groups[key].excluded
        rows = [
            BreakdownRow(**_fields(groups[key], query.kind, query.confidence, limits), key=key)
            for key in kept
        ]
        if other is not None:
            rows.append(
                BreakdownRow(
                    **_fields(other, query.kind, query.confidence, limits),
                    key=None,
                    other=True,
                    groups=len(merged),
                )
            )
        return Breakdown(
            kind=query.kind,
            by=by,
            scale_min=query.selection.scale_min,
            scale_max=query.selection.scale_max,
            confidence=query.confidence,
            period=_period(start, end, ctx.zone),
            integrity=query.integrity,
            min_cell=limits.min_cell,
            rows=rows,
        )

    async def compare(
        self,
        session: AsyncSession,
        a: MetricQuery,
        b: MetricQuery,
        *,
        segments: tuple[str | None, str | None],
        alpha: float,
    ) -> Comparison:
        ctx = await self._context(session, a.selection.tenant_id)
        a_start, a_end = self._resolve(a, ctx.zone, ("a_from", "a_to"))
        b_start, b_end = self._resolve(b, ctx.zone, ("b_from", "b_to"))
        tally_a = await self._one(session, ctx, a, a_start, a_end)
        tally_b = await self._one(session, ctx, b, b_start, b_end)
        limits = self._limits(ctx, a)
        return Comparison(
            kind=a.kind,
            scale_min=a.selection.scale_min,
            scale_max=a.selection.scale_max,
            confidence=a.confidence,
            integrity=a.integrity,
            min_cell=limits.min_cell,
            a=CompareSide(
                period=_period(a_start, a_end, ctx.zone),
                segment=segments[0],
                metric=_value(tally_a, a.kind, a.confidence, limits),
            ),
            b=CompareSide(
                period=_period(b_start, b_end, ctx.zone),
                segment=segments[1],
                metric=_value(tally_b, b.kind, b.confidence, limits),
            ),
            comparison=compare_tallies(a.kind, tally_a, tally_b, limits, a.confidence, alpha),
        )

    async def summary(self, session: AsyncSession, query: MetricQuery, alpha: float) -> Summary:
        ctx = await self._context(session, query.selection.tenant_id)
        start, end = self._resolve(query, ctx.zone)
        prev_start, prev_end = previous_period(start, end, ctx.zone)
        limits = self._limits(ctx, query)
        items: dict[str, SummaryItem] = {}
        for kind in (MetricKind.NPS, MetricKind.CSAT, MetricKind.CES):
            low, high = FIXED_SCALES[kind]
            selection = replace(query.selection, kind=kind.value, scale_min=low, scale_max=high)
            kind_query = replace(query, selection=selection)
            parts = [Bucket(0, prev_start, prev_end), Bucket(1, start, end)]
            tallies = await self._tally(session, ctx, kind_query, parts)
            previous = tallies.get((0, None)) or self._empty(selection)
            current = tallies.get((1, None)) or self._empty(selection)
            items[kind.value] = SummaryItem(
                current=_value(current, kind, query.confidence, limits),
                previous=_value(previous, kind, query.confidence, limits),
                change=compare_tallies(kind, previous, current, limits, query.confidence, alpha),
            )
        return Summary(
            period=_period(start, end, ctx.zone),
            previous_period=_period(prev_start, prev_end, ctx.zone),
            confidence=query.confidence,
            integrity=query.integrity,
            min_cell=limits.min_cell,
            **items,
        )

    async def schedule_rebuild(self, session: AsyncSession, tenant_id: UUID) -> None:
        """Re-bucket the tenant's rollup (its time zone changed). Until it has run, metrics
        are computed from raw rows in the new zone: correct, only slower."""
        await job_service.enqueue(session, REBUILD_JOB, tenant_id=tenant_id)

    async def fold(self, session: AsyncSession) -> int:
        return await MetricRepository(session).fold()

    async def rebuild_step(
        self, session: AsyncSession, tenant_id: UUID, chunk: int | None = None
    ) -> bool:
        """One bounded transaction's worth of the tenant's rebuild (metrics/repository.py);
        True when the rollup is complete in the tenant's time zone."""
        return await MetricRepository(session).rebuild_step(tenant_id, chunk=chunk)


def merge_small_cells(
    sizes: dict[str | None, int], min_cell: int
) -> tuple[list[str | None], list[str | None]]:
    """Split groups into those shown (largest first) and those merged into "other", so
    that no reported cell, "other" included, holds fewer than `min_cell` responses: groups
    below the minimum are merged, and while "other" is itself too small the smallest shown
    group joins it. Empty groups are dropped."""
    ordered = sorted(
        ((k, n) for k, n in sizes.items() if n > 0),
        key=lambda item: (-item[1], item[0] is None, item[0] or ""),
    )
    kept = [k for k, n in ordered if n >= min_cell]
    merged = [k for k, n in ordered if n < min_cell]
    other = sum(sizes[k] for k in merged)
    while merged and other < min_cell and kept:
        smallest = kept.pop()
        merged.append(smallest)
        other += sizes[smallest]
    return kept, merged


metric = MetricService()
