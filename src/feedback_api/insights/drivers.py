"""`GET /v1/insights/drivers`: how much each theme, tag, touchpoint or channel explains the
score, how it does now, and how many points of the metric it accounts for
(insights/importance.py for the method, docs/insights.md for its reading)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.insights.cpu import offload
from feedback_api.insights.importance import REPLICATES, Importance, Patterns, importance
from feedback_api.insights.importance import Estimate as RawEstimate
from feedback_api.insights.repository import DriverTally, InsightRepository, ThemeRepository
from feedback_api.insights.schemas import (
    Driver,
    DriverBy,
    DriverReport,
    Estimate,
    NotEstimable,
)
from feedback_api.metrics.measures import CSAT_SATISFIED_MIN, Histogram
from feedback_api.metrics.schemas import Bounds, Integrity, MetricKind
from feedback_api.metrics.service import (
    Limits,
    MetricQuery,
    Tally,
    merge_small_cells,
    metric_value,
    share_value,
)
from feedback_api.metrics.service import metric as metric_service

# Fewer responses than this with (or without) a driver: its importance is not estimated.
MIN_N = 30
# The model takes the most frequent drivers up to this many: beyond, each adds little that
# a manager could act on, and the cost grows with the square of the count.
MAX_DRIVERS = 30
MAX_LISTED = 200  # items in a report: the estimable ones, then the most frequent others


def outcome(kind: MetricKind, score: int) -> float:
    """The score in the metric's unit, so that its mean is the metric and the effects are
    points of it: NPS +100 / 0 / −100, CSAT 100 for 4–5 else 0, CES and ratings the score."""
    if kind is MetricKind.NPS:
        return 100.0 if score >= 9 else 0.0 if score >= 7 else -100.0
    if kind is MetricKind.CSAT:
        return 100.0 if score >= CSAT_SATISFIED_MIN else 0.0
    return float(score)


@dataclass(frozen=True, slots=True)
class _Model:
    keys: list[str]  # the model's drivers, most frequent first
    result: Importance | None


def _patterns(kind: MetricKind, rows: list[DriverTally], keys: list[str]) -> Patterns:
    column = {key: j for j, key in enumerate(keys)}
    grouped: dict[tuple[tuple[int, ...], int], int] = defaultdict(int)
    for row in rows:
        present = tuple(sorted(column[d] for d in row.drivers if d in column))
        grouped[(present, row.score)] += row.n
    x = np.zeros((len(grouped), len(keys)))
    y = np.zeros(len(grouped))
    counts = np.zeros(len(grouped), dtype=np.int64)
    for i, ((present, score), n) in enumerate(grouped.items()):
        x[i, list(present)] = 1.0
        y[i] = outcome(kind, score)
        counts[i] = n
    return Patterns(x, y, counts)


def _withheld(per: dict[str, Histogram], base: int, limits: Limits, *, exclusive: bool) -> set[str]:
    """Drivers whose performance would let a small cell be worked out by subtraction from
    the overall metric and the other drivers'. Touchpoints and channels split the base:
    the small ones, and the responses with none, are merged as the metrics' breakdowns
    merge them, and the smallest shown ones join while they are too few together. A theme
    or tag is withheld when the responses without it are a small cell."""
    if limits.small_cells:
        return set()
    if not exclusive:
        return {k for k, h in per.items() if 0 < base - h.n < limits.min_cell}
    sizes: dict[str | None, int] = {k: h.n for k, h in per.items()}
    sizes[None] = base - sum(sizes.values())  # responses at no touchpoint: never shown
    _, merged = merge_small_cells(sizes, limits.min_cell)
    return {k for k in merged if k is not None}


def _estimate(e: RawEstimate | None) -> Estimate | None:
    if e is None:
        return None
    return Estimate(
        value=round(e.value, 4), interval=Bounds(low=round(e.low, 4), high=round(e.high, 4))
    )


async def driver_report(
    session: AsyncSession, kind: MetricKind, query: MetricQuery, by: DriverBy
) -> DriverReport:
    lo, hi, period, limits = await metric_service.frame(session, query)
    selection = query.selection
    valid_only = query.integrity is Integrity.VALID
    rows = await InsightRepository(session).driver_tallies(selection, lo, hi, by.value)
    low, high = selection.scale_min, selection.scale_max
    overall = Histogram(low, high)
    excluded_all = 0
    per: dict[str, Histogram] = defaultdict(lambda: Histogram(low, high))
    excluded: dict[str, int] = defaultdict(int)
    used: list[DriverTally] = []
    for row in rows:
        if row.excluded:
            excluded_all += row.n
            for d in row.drivers:
                excluded[d] += row.n
            if valid_only:
                continue
        used.append(row)
        overall.add(row.score, row.n)
        for d in row.drivers:
            per[d].add(row.score, row.n)
    base = overall.n
    floor = MIN_N if limits.small_cells else max(MIN_N, limits.min_cell)

    exclusive = by in (DriverBy.TOUCHPOINT, DriverBy.CHANNEL)
    hidden = _withheld(per, base, limits, exclusive=exclusive)

    def reason(key: str) -> NotEstimable | None:
        n = per[key].n
        if n < floor:
            return NotEstimable.TOO_FEW
        if base - n < floor:
            return NotEstimable.TOO_FEW_WITHOUT
        if key in hidden:
            return NotEstimable.WITHHELD
        return None

    by_volume = sorted(per, key=lambda k: (-per[k].n, k))
    keys = [k for k in by_volume if reason(k) is None][:MAX_DRIVERS]
    model = _Model(keys, None)
    if keys:
        patterns = _patterns(kind, used, keys)
        confidence = query.confidence
        model = _Model(
            keys,
            await offload(lambda: importance(patterns, exclusive=exclusive, confidence=confidence)),
        )
    names: dict[str, str | None] = {}
    if by is DriverBy.THEME:
        names = {
            t.key: next(iter(t.names.values()), None)
            for t in await ThemeRepository(session).all(selection.tenant_id)
        }
    items = _drivers(
        kind, query, limits, per, excluded, base, by_volume, model, reason, names, hidden
    )
    listed = [d for d in items if d.estimable] + [d for d in items if not d.estimable]
    result = model.result
    return DriverReport(
        kind=kind,
        by=by,
        period=period,
        integrity=query.integrity,
        confidence=query.confidence,
        min_cell=limits.min_cell,
        min_n=floor,
        max_drivers=MAX_DRIVERS,
        replicates=result.replicates if result else REPLICATES,
        base=base,
        overall=metric_value(Tally(overall, excluded_all), kind, query.confidence, limits),
        r_squared=None if result is None else _estimate(result.r2),
        items=listed[:MAX_LISTED],
        not_listed=max(0, len(listed) - MAX_LISTED),
    )


def _drivers(
    kind: MetricKind,
    query: MetricQuery,
    limits: Limits,
    per: dict[str, Histogram],
    excluded: dict[str, int],
    base: int,
    by_volume: list[str],
    model: _Model,
    reason: Callable[[str], NotEstimable | None],
    names: dict[str, str | None],
    hidden: set[str],
) -> list[Driver]:
    result = model.result
    column = {key: j for j, key in enumerate(model.keys)}
    ranks: dict[str, int] = {}
    if result is not None:
        order = sorted(model.keys, key=lambda k: -result.importance[column[k]].value)
        ranks = {key: i + 1 for i, key in enumerate(order)}
    items = []
    for key in by_volume:
        j = column.get(key)
        why = reason(key)
        if why is None and j is None:
            why = NotEstimable.NOT_IN_MODEL
        if why is None and result is None:
            why = NotEstimable.NO_VARIANCE
        importance_, effect, impact = None, None, None
        if why is None and result is not None and j is not None:
            importance_ = _estimate(result.importance[j])
            effect = _estimate(result.effect[j])
            impact = _estimate(result.impact[j])
        n = per[key].n
        items.append(
            Driver(
                key=key,
                name=names.get(key),
                n=n,
                share=share_value("responses", n, base, query.confidence),
                performance=metric_value(
                    Tally(per[key], excluded[key]),
                    kind,
                    query.confidence,
                    # withheld: as if a small cell, whatever its n
                    replace(limits, min_cell=n + 1) if key in hidden else limits,
                ),
                estimable=importance_ is not None,
                reason=why,
                rank=ranks.get(key) if importance_ is not None else None,
                importance=importance_,
                effect=effect,
                impact=impact,
            )
        )
    items.sort(key=lambda d: (d.rank is None, d.rank or 0, -d.n, d.key))
    return items
