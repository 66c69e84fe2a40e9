"""`GET /v1/actions/{id}/impact`: did the action move its metric? Before (the baseline
window) against after, on the action's scope and on a control, and the difference of the
two changes, so that a tenant-wide upswing or a regression to the mean is not taken for the
action's effect (docs/actions.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.actions.schemas import (
    ActionMetric,
    Change,
    ImpactRead,
    Verdict,
    Window,
)
from feedback_api.actions.service import Measured, measure
from feedback_api.actions.service import action as action_service
from feedback_api.exceptions import InvalidRequest
from feedback_api.kit.periods import PeriodBound
from feedback_api.kit.time import utcnow
from feedback_api.metrics import formulas, measures
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.schemas import Bounds
from feedback_api.metrics.service import metric as metric_service

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class _Diff:
    delta: float
    se: float


def _change(metric: ActionMetric, before: Measured, after: Measured) -> _Diff | None:
    """after − before, with its standard error, by the metrics' two-sample test."""
    if metric is ActionMetric.THEME_SHARE:
        if not before.n or not after.n:
            return None
        p1, p2 = before.mentions / before.n, after.mentions / after.n
        se = math.sqrt(p1 * (1 - p1) / before.n + p2 * (1 - p2) / after.n)
        return _Diff(100 * (p2 - p1), 100 * se)
    if before.histogram is None or after.histogram is None:
        return None
    result = measures.compare(metric.value, before.histogram, after.histogram)
    if result is None or result.standard_error is None:
        return None
    return _Diff(result.delta, result.standard_error)


def _read_change(diff: _Diff | None) -> Change | None:
    if diff is None:
        return None
    z = formulas.z_value(CONFIDENCE)
    p = None
    if diff.se > 0:
        p = 2 * (1 - formulas.NORMAL.cdf(abs(diff.delta) / diff.se))
    return Change(
        delta=round(diff.delta, 4),
        interval=Bounds(low=diff.delta - z * diff.se, high=diff.delta + z * diff.se),
        standard_error=diff.se,
        p_value=p,
    )


def _minus(total: Measured, part: Measured) -> Measured:
    """Everyone else: the tenant's responses outside the scope (histograms subtract)."""
    if total.histogram is not None and part.histogram is not None:
        rest = Histogram(total.histogram.scale_min, total.histogram.scale_max)
        rest.add_counts(
            [a - b for a, b in zip(total.histogram.counts, part.histogram.counts, strict=True)]
        )
        return Measured(None, None, rest.n, histogram=rest)
    return Measured(None, None, total.n - part.n, mentions=total.mentions - part.mentions)


@dataclass(frozen=True, slots=True)
class Assessment:
    change: Change | None
    control_change: Change | None
    did: Change | None
    verdict: Verdict
    reason: str


def assess(
    metric: ActionMetric,
    before: Measured,
    after: Measured,
    control_before: Measured,
    control_after: Measured,
    needed: int,
) -> Assessment:
    """The changes on the scope and on the control, their difference, and the verdict.
    Pure: the statistics that tests run over many synthetic seeds."""
    in_scope = _change(metric, before, after)
    in_control = _change(metric, control_before, control_after)
    did = None
    if in_scope is not None and in_control is not None:
        did = _Diff(in_scope.delta - in_control.delta, math.hypot(in_scope.se, in_control.se))
    did_read = _read_change(did)
    rule, why = verdict(metric, did_read, after.n, needed)
    return Assessment(_read_change(in_scope), _read_change(in_control), did_read, rule, why)


def verdict(
    metric: ActionMetric, did: Change | None, after_n: int, needed: int
) -> tuple[Verdict, str]:
    """The rule (docs/actions.md): too early while the after period holds fewer responses
    than the baseline said are needed; then improved or worse when the interval of the
    difference of differences lies wholly on one side of 0 (lower is better for a theme's
    share), else no detectable change."""
    if after_n < needed or did is None:
        return Verdict.TOO_EARLY, f"{after_n} of the {needed} responses needed after the change"
    sign = -1 if metric is ActionMetric.THEME_SHARE else 1
    low, high = sorted((sign * did.interval.low, sign * did.interval.high))
    if low > 0:
        return Verdict.IMPROVED, "the change beyond the control's is above 0 with 95 % confidence"
    if high < 0:
        return Verdict.WORSE, "the change beyond the control's is below 0 with 95 % confidence"
    return Verdict.NO_DETECTABLE_CHANGE, "the interval of the change beyond the control's holds 0"


async def impact(
    session: AsyncSession,
    tenant_id: UUID,
    action_id: UUID,
    control: dict[str, Any] | None,
    until: PeriodBound,
) -> ImpactRead:
    action = await action_service.get(session, tenant_id, action_id)
    metric = action.metric
    scope = action.scope.model_dump()
    b_lo, b_hi = action.baseline.period_from, action.baseline.period_to
    started = action.ends_on or action.starts_on
    end = utcnow()
    if until is not None:  # a date is its local midnight, as the metrics read `to`
        _, end, _ = await metric_service.period(session, tenant_id, None, until)
    a_lo = a_hi = end  # nothing after yet
    if started is not None:
        try:
            a_lo, a_hi, _ = await metric_service.period(session, tenant_id, started, end)
        except InvalidRequest:  # it starts after `to`: nothing after yet
            a_lo = a_hi = end
    before = await measure(session, tenant_id, scope, metric, b_lo, b_hi)
    after = await measure(session, tenant_id, scope, metric, a_lo, a_hi)
    if control is None:
        # the rest of the tenant: everything the scope's theme and filters leave out
        everyone: dict[str, Any] = {"theme": None, "attributes": {}}
        if metric is ActionMetric.THEME_SHARE:
            everyone["theme"] = scope["theme"]  # the same theme, over everyone else
        before_all = await measure(session, tenant_id, everyone, metric, b_lo, b_hi)
        after_all = await measure(session, tenant_id, everyone, metric, a_lo, a_hi)
        control_before, control_after = _minus(before_all, before), _minus(after_all, after)
        control_label = "the rest of the tenant"
    else:
        scoped = {**scope, **control}
        control_before = await measure(session, tenant_id, scoped, metric, b_lo, b_hi)
        control_after = await measure(session, tenant_id, scoped, metric, a_lo, a_hi)
        control_label = "the comparison scope"
    found = assess(metric, before, after, control_before, control_after, action.baseline.needed_n)
    in_scope, in_control, did_read = found.change, found.control_change, found.did
    rule, why = found.verdict, found.reason
    share_before = share_after = share_change = None
    if scope.get("theme") is not None:
        if metric is ActionMetric.THEME_SHARE:
            share_before, share_after = before, after
        else:
            share = ActionMetric.THEME_SHARE
            share_before = await measure(session, tenant_id, scope, share, b_lo, b_hi)
            share_after = await measure(session, tenant_id, scope, share, a_lo, a_hi)
        share_change = _read_change(_change(ActionMetric.THEME_SHARE, share_before, share_after))
    progress = None
    base_value = action.baseline.value
    if after.value is not None and base_value is not None and action.target != base_value:
        progress = round(100 * (after.value - base_value) / (action.target - base_value), 2)
    return ImpactRead(
        action_id=action.id,
        metric=metric,
        before=_value(_measured_value(metric, before), b_lo, b_hi),
        after=_value(_measured_value(metric, after), a_lo, a_hi),
        change=in_scope,
        control=control_label,
        control_before=_value(_measured_value(metric, control_before), b_lo, b_hi),
        control_after=_value(_measured_value(metric, control_after), a_lo, a_hi),
        control_change=in_control,
        difference_in_differences=did_read,
        theme_share_before=None
        if share_before is None
        else _value(_measured_value(ActionMetric.THEME_SHARE, share_before), b_lo, b_hi),
        theme_share_after=None
        if share_after is None
        else _value(_measured_value(ActionMetric.THEME_SHARE, share_after), a_lo, a_hi),
        theme_share_change=share_change,
        target=action.target,
        progress=progress,
        verdict=rule,
        verdict_reason=why,
    )


def _measured_value(metric: ActionMetric, m: Measured) -> Measured:
    """A control measured by subtraction has counts but no value yet: compute it."""
    if m.value is not None:
        return m
    if metric is ActionMetric.THEME_SHARE:
        share = measures.proportion("mentions", m.mentions, m.n, CONFIDENCE)
        interval = share.interval
        return Measured(
            share.value,
            None if interval is None else Bounds(low=interval.low, high=interval.high),
            m.n,
            mentions=m.mentions,
        )
    assert m.histogram is not None
    result = measures.measure(metric.value, m.histogram, CONFIDENCE)
    interval = result.interval
    return Measured(
        result.value,
        None if interval is None else Bounds(low=interval.low, high=interval.high),
        m.n,
        histogram=m.histogram,
    )


def _value(m: Measured, lo: datetime, hi: datetime) -> Window:
    return Window(period_from=lo, period_to=hi, value=m.value, interval=m.interval, n=m.n)
