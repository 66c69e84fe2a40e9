"""A theme over time (`GET /v1/insights/themes/{key}/trend`) and the themes that are rising
(`GET /v1/insights/themes/rising`), in the tenant's time zone, with the metrics' intervals,
tests and small-cell rules.

Rising (docs/insights.md): a theme's share of the responses with a comment or tag in the
period against the period of the same length just before it. Each theme with at least
MIN_MENTIONS mentions now, and at least MIN_BASE responses with text on each side, is
tested: the pooled two-proportion z-test, one-sided (growth), with Newcombe's interval for
the change. The p-values of all tested themes are adjusted with Benjamini–Hochberg, so
among the themes called rising the expected share of false ones is at most `fdr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import InvalidRequest, NotFound
from feedback_api.insights.report import tallies_of
from feedback_api.insights.repository import InsightRepository, ThemeRepository
from feedback_api.insights.schemas import (
    RisingTheme,
    RisingThemes,
    ThemeTrend,
    ThemeTrendBucket,
)
from feedback_api.kit.periods import Interval, TooManyBuckets, buckets, previous_period
from feedback_api.metrics.formulas import NORMAL, compare_proportions
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.schemas import Bounds, Integrity, MetricKind, Period
from feedback_api.metrics.service import MetricQuery, Tally, metric_value, share_value
from feedback_api.metrics.service import metric as metric_service

MIN_MENTIONS = 10
MIN_BASE = 30


async def _known(session: AsyncSession, tenant_id: UUID, key: str) -> None:
    if key.startswith("tag:"):
        return
    if await ThemeRepository(session).get(tenant_id, key) is None:
        raise NotFound(f"no theme {key!r} (tags are `tag:<tag>`)")


async def theme_trend(
    session: AsyncSession, kind: MetricKind, query: MetricQuery, key: str, interval: Interval
) -> ThemeTrend:
    lo, hi, period, limits = await metric_service.frame(session, query)
    selection = query.selection
    await _known(session, selection.tenant_id, key)
    try:
        parts = buckets(lo, hi, ZoneInfo(period.timezone), interval)
    except TooManyBuckets as exc:
        raise InvalidRequest.at(("query", "interval"), "too_many_buckets", str(exc)) from None
    rows = await InsightRepository(session).trend_tallies(
        selection, lo, hi, [b.start for b in parts], key
    )
    valid_only = query.integrity is Integrity.VALID
    low, high = selection.scale_min, selection.scale_max
    base = [0] * len(parts)
    mentioned = [Histogram(low, high) for _ in parts]
    excluded = [0] * len(parts)
    for row in rows:
        index = row.bucket - 1
        if row.excluded:
            if row.mentioned:
                excluded[index] += row.n
            if valid_only:
                continue
        base[index] += row.n
        if row.mentioned:
            mentioned[index].add(row.score, row.n)
    return ThemeTrend(
        key=key,
        kind=kind,
        interval=interval.value,
        period=period,
        integrity=query.integrity,
        confidence=query.confidence,
        min_cell=limits.min_cell,
        buckets=[
            ThemeTrendBucket(
                start=b.start,
                end=b.end,
                base=base[i],
                mentions=mentioned[i].n,
                share=share_value("mentions", mentioned[i].n, base[i], query.confidence),
                with_theme=metric_value(
                    Tally(mentioned[i], excluded[i]), kind, query.confidence, limits
                ),
            )
            for i, b in enumerate(parts)
        ],
    )


@dataclass(frozen=True, slots=True)
class GrowthTest:
    key: str
    before: tuple[int, int]  # mentions, base
    now: tuple[int, int]
    p_value: float | None


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Adjusted p-values (q-values): reject where q ≤ the FDR."""
    if not p_values:
        return []
    from scipy.stats import false_discovery_control  # here: scipy is slow to import

    return [float(q) for q in false_discovery_control(p_values, method="bh")]


def one_sided_growth(before: tuple[int, int], now: tuple[int, int]) -> float | None:
    """P(a share this much higher, or more, if it had not changed): the pooled z-test."""
    result = compare_proportions(before[0], before[1], now[0], now[1])
    if result is None or result.statistic is None:
        return None
    return float(NORMAL.cdf(-result.statistic))


def rising_tests(
    before: dict[str | None, int], now: dict[str | None, int], fdr: float
) -> list[tuple[GrowthTest, float | None, bool]]:
    """Each theme's test, q-value and verdict, from mention counts by theme (None: base)."""
    base_before, base_now = before.get(None, 0), now.get(None, 0)
    tests = [
        GrowthTest(
            key,
            (before.get(key, 0), base_before),
            (count, base_now),
            one_sided_growth((before.get(key, 0), base_before), (count, base_now))
            if count >= MIN_MENTIONS and min(base_before, base_now) >= MIN_BASE
            else None,
        )
        for key, count in now.items()
        if key is not None
    ]
    tested = [t for t in tests if t.p_value is not None]
    q_values = dict(
        zip(
            (t.key for t in tested),
            benjamini_hochberg([t.p_value for t in tested if t.p_value is not None]),
            strict=True,
        )
    )
    return [
        (t, q_values.get(t.key), q_values.get(t.key, 1.0) <= fdr and t.p_value is not None)
        for t in tests
    ]


def _counts(tallies: dict[str | None, Histogram]) -> dict[str | None, int]:
    return {key: h.n for key, h in tallies.items()}


async def rising(
    session: AsyncSession, kind: MetricKind, query: MetricQuery, fdr: float
) -> RisingThemes:
    lo, hi, period, limits = await metric_service.frame(session, query)
    selection = query.selection
    zone = ZoneInfo(period.timezone)
    plo, phi = previous_period(lo, hi, zone)
    repo = InsightRepository(session)
    valid_only = query.integrity is Integrity.VALID
    low, high = selection.scale_min, selection.scale_max
    now = _counts(tallies_of(await repo.theme_tallies(selection, lo, hi), low, high, valid_only))
    before = _counts(
        tallies_of(await repo.theme_tallies(selection, plo, phi), low, high, valid_only)
    )
    items = []
    for test, q_value, is_rising in rising_tests(before, now, fdr):
        hidden = limits.suppressed(test.now[0]) or limits.suppressed(test.before[0])
        change = compare_proportions(*test.before, *test.now, confidence=query.confidence)
        items.append(
            RisingTheme(
                key=test.key,
                mentions=test.now[0],
                previous_mentions=None if hidden else test.before[0],
                share=share_value("mentions", *test.now, query.confidence),
                previous_share=None
                if hidden
                else share_value("mentions", *test.before, query.confidence),
                change=None
                if hidden or change is None or change.interval is None
                else Bounds(low=100 * change.interval.low, high=100 * change.interval.high),
                ratio=None
                if hidden or test.before[0] == 0 or test.now[1] == 0
                else round((test.now[0] / test.now[1]) / (test.before[0] / test.before[1]), 4),
                # The p-value and the counts now would give a small previous count away.
                p_value=None if hidden else test.p_value,
                q_value=None if hidden else q_value,
                tested=test.p_value is not None,
                rising=is_rising,
            )
        )
    items.sort(key=lambda r: (not r.rising, r.q_value if r.q_value is not None else 2, r.key))
    return RisingThemes(
        kind=kind,
        period=period,
        previous_period=Period(
            from_=plo.astimezone(zone), to=phi.astimezone(zone), timezone=zone.key
        ),
        integrity=query.integrity,
        fdr=fdr,
        min_mentions=MIN_MENTIONS,
        min_base=MIN_BASE,
        base=now.get(None, 0),
        previous_base=before.get(None, 0),
        items=items,
    )
