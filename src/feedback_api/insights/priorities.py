"""`GET /v1/insights/priorities`: themes and touchpoints placed by impact (from the drivers:
effect × share, the points of the metric each accounts for) against effort (from a linked
improvement action's estimate; unknown until one exists), in four quadrants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.insights.hooks import efforts as effort_source
from feedback_api.insights.schemas import (
    Driver,
    DriverBy,
    Effort,
    Priority,
    PriorityReport,
    Quadrant,
)
from feedback_api.metrics.schemas import MetricKind
from feedback_api.metrics.service import MetricQuery

# A cost counts as high impact from 1 % of the metric's span: 2 NPS points, 1 CSAT point,
# 0.06 on CES's 1–7 (unless the caller says otherwise).
SPAN_SHARE = 0.01

EffortKey = tuple[str, str]  # (dimension, key)
# An action's effort is low up to this many person-days (unless the caller says otherwise).
LOW_EFFORT_DAYS = 10.0


def default_min_impact(kind: MetricKind, low: int, high: int) -> float:
    span = {MetricKind.NPS: 200.0, MetricKind.CSAT: 100.0}.get(kind, float(high - low))
    return round(SPAN_SHARE * span, 4)


def quadrant(impact: Level | None, effort: Effort | None) -> Quadrant | None:
    if impact is None or effort is None:
        return None
    if impact == "high":
        return Quadrant.QUICK_WINS if effort.level == "low" else Quadrant.MAJOR_PROJECTS
    return Quadrant.FILL_INS if effort.level == "low" else Quadrant.NOT_NOW


Dimension = Literal["theme", "touchpoint"]
Level = Literal["high", "low"]


def _priority(
    dimension: Dimension, driver: Driver, min_impact: float, efforts: Mapping[EffortKey, Effort]
) -> Priority:
    impact = driver.impact
    level: Level | None = None
    if driver.estimable and impact is not None:
        certain_cost = impact.interval.high < 0
        level = "high" if certain_cost and -impact.value >= min_impact else "low"
    effort = efforts.get((dimension, driver.key))
    return Priority(
        dimension=dimension,
        key=driver.key,
        name=driver.name,
        n=driver.n,
        performance=driver.performance,
        effect=driver.effect,
        impact=impact,
        estimable=driver.estimable,
        impact_level=level,
        effort=effort,
        quadrant=quadrant(level, effort),
    )


async def priorities(
    session: AsyncSession,
    kind: MetricKind,
    query: MetricQuery,
    min_impact: float | None,
    efforts: Mapping[EffortKey, Effort] | None = None,
    *,
    low_effort_days: float = LOW_EFFORT_DAYS,
) -> PriorityReport:
    selection = query.selection
    threshold = (
        min_impact
        if min_impact is not None
        else default_min_impact(kind, selection.scale_min, selection.scale_max)
    )
    known = (
        efforts
        if efforts is not None
        else await effort_source.get()(session, selection.tenant_id, low_effort_days)
    )
    from feedback_api.insights.drivers import driver_report  # numpy: loaded on first use

    themes = await driver_report(session, kind, query, DriverBy.THEME)
    touchpoints = await driver_report(session, kind, query, DriverBy.TOUCHPOINT)
    items = [_priority("theme", d, threshold, known) for d in themes.items]
    items += [_priority("touchpoint", d, threshold, known) for d in touchpoints.items]
    items.sort(
        key=lambda p: (
            p.impact is None,
            p.impact.value if p.impact is not None else 0.0,
            -p.n,
            p.dimension,
            p.key,
        )
    )
    counts = {q: sum(p.quadrant is q for p in items) for q in Quadrant}
    return PriorityReport(
        kind=kind,
        period=touchpoints.period,
        integrity=query.integrity,
        confidence=query.confidence,
        min_impact=threshold,
        overall=touchpoints.overall,
        items=items,
        low_effort_days=low_effort_days,
        quadrants=counts,
        unplaced=sum(p.impact_level is not None and p.quadrant is None for p in items),
    )
