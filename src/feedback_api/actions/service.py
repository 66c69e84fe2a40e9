"""Improvement actions: SMART at creation (the baseline is measured on the action's scope
and must be able to show the change aimed for), their life cycle, and their efforts for
the priority matrix."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.actions.repository import ActionRepository
from feedback_api.actions.schemas import (
    ActionCompleted,
    ActionCreate,
    ActionMetric,
    ActionRead,
    ActionScope,
    ActionStatus,
    ActionUpdate,
    Baseline,
    CustomerToTell,
)
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import InvalidRequest, NotFound
from feedback_api.insights.report import theme_histograms
from feedback_api.insights.repository import ThemeRepository
from feedback_api.insights.schemas import Effort
from feedback_api.invitations.rules import ALL_CHANNELS
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.pagination import encode_cursor, paginate
from feedback_api.kit.time import utcnow
from feedback_api.metrics import formulas, measures
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.schemas import Bounds, MetricKind
from feedback_api.metrics.selection import Selection
from feedback_api.metrics.service import FIXED_SCALES, MetricQuery
from feedback_api.metrics.service import metric as metric_service
from feedback_api.models import ImprovementAction

BASELINE_DAYS = 90
MIN_BASELINE = 30  # responses: below this the normal approximations behind the tests fail
ALPHA, POWER = 0.05, 0.80
LOW_EFFORT_DAYS = 10.0
EVENT_CUSTOMERS = 500  # customers in `action.completed`; the rest by the cursor endpoint
CUSTOMER_CHUNK = 1000
RANGES = {
    ActionMetric.NPS: (-100.0, 100.0),
    ActionMetric.CSAT: (0.0, 100.0),
    ActionMetric.CES: (1.0, 7.0),
    ActionMetric.THEME_SHARE: (0.0, 100.0),
}
KINDS = (MetricKind.NPS, MetricKind.CSAT, MetricKind.CES)


@dataclass(frozen=True, slots=True)
class Measured:
    """The action's metric over its scope in a window. For theme_share: `mentions` of `n`
    comments; otherwise the scores' histogram."""

    value: float | None
    interval: Bounds | None
    n: int
    histogram: Histogram | None = None
    mentions: int = 0


def selection(tenant_id: UUID, scope: Mapping[str, Any], kind: MetricKind) -> Selection:
    low, high = FIXED_SCALES[kind]
    return Selection(
        tenant_id=tenant_id,
        kind=kind.value,
        scale_min=low,
        scale_max=high,
        channel=scope.get("channel"),
        touchpoint=scope.get("touchpoint"),
        location_ref=scope.get("location_ref"),
        attributes=tuple(sorted((scope.get("attributes") or {}).items())),
    )


async def measure(
    session: AsyncSession,
    tenant_id: UUID,
    scope: Mapping[str, Any],
    metric: ActionMetric,
    lo: datetime,
    hi: datetime,
) -> Measured:
    """The metric over the scope in [lo, hi), valid responses only."""
    theme = scope.get("theme")
    if metric is ActionMetric.THEME_SHARE:
        mentions = base = 0
        for kind in KINDS:  # every scored comment, whichever the question's kind
            tallies = await theme_histograms(
                session, selection(tenant_id, scope, kind), lo, hi, valid_only=True
            )
            base += tallies[None].n if None in tallies else 0
            mentions += tallies[theme].n if theme in tallies else 0
        share = measures.proportion("mentions", mentions, base, 0.95)
        interval = share.interval
        return Measured(
            share.value,
            None if interval is None else Bounds(low=interval.low, high=interval.high),
            base,
            mentions=mentions,
        )
    kind = MetricKind(metric.value)
    chosen = selection(tenant_id, scope, kind)
    if theme is not None:
        tallies = await theme_histograms(session, chosen, lo, hi, valid_only=True)
        histogram = tallies.get(theme) or Histogram(chosen.scale_min, chosen.scale_max)
    else:
        histogram = (await metric_service.tally(session, MetricQuery(chosen), lo, hi)).histogram
    result = measures.measure(kind.value, histogram, 0.95)
    return Measured(
        result.value,
        None
        if result.interval is None
        else Bounds(low=result.interval.low, high=result.interval.high),
        result.n,
        histogram=histogram,
    )


def needed_per_period(metric: ActionMetric, seen: Measured, target: float) -> int:
    """Responses per period for a two-sided test at ALPHA to detect the change from the
    baseline to the target with POWER: the metrics' sample-size formula for a margin of
    Δ·z_α / (√2·(z_α + z_β)), which is the same n as (z_α + z_β)²·2σ²/Δ²."""
    if seen.value is None:
        return MIN_BASELINE if metric is ActionMetric.THEME_SHARE else 10**9
    z_alpha = formulas.z_value(1 - ALPHA)
    z_beta = formulas.NORMAL.inv_cdf(POWER)
    delta = abs(target - seen.value)
    if delta == 0:
        return 10**9
    margin = delta * z_alpha / (math.sqrt(2) * (z_alpha + z_beta))
    if metric is ActionMetric.THEME_SHARE:
        p = seen.mentions / seen.n if seen.n and 0 < seen.mentions < seen.n else 0.5
        return formulas.proportion_sample_size(margin / 100, 1 - ALPHA, p=p)
    assert seen.histogram is not None
    return measures.needed_n(metric.value, seen.histogram, margin, 1 - ALPHA)


def _improves(metric: ActionMetric, baseline: float, target: float) -> bool:
    # a theme's share of complaints should fall; the scores should rise
    return target < baseline if metric is ActionMetric.THEME_SHARE else target > baseline


def read(action: ImprovementAction) -> ActionRead:
    return ActionRead.model_validate(
        {
            **{c: getattr(action, c) for c in ActionRead.model_fields if hasattr(action, c)},
            "scope": {
                "theme": action.theme,
                "touchpoint": action.touchpoint,
                "channel": action.channel,
                "location_ref": action.location_ref,
                "attributes": action.attributes,
            },
            "baseline": action.baseline,
        }
    )


class ActionService:
    async def create(
        self, session: AsyncSession, tenant_id: UUID, body: ActionCreate
    ) -> ActionRead:
        scope = body.scope.model_dump()
        await self._check_scope(session, tenant_id, body.scope, body.metric)
        low, high = RANGES[body.metric]
        if not low <= body.target <= high:
            raise InvalidRequest.at(
                ("body", "target"),
                "target_out_of_range",
                f"a {body.metric.value} target lies in {low:g}…{high:g}",
            )
        zone = await self._zone(session, tenant_id)
        today = utcnow().astimezone(zone).date()
        if body.deadline <= today:
            raise InvalidRequest.at(
                ("body", "deadline"), "deadline_passed", "the deadline must be after today"
            )
        start = body.baseline_from or (utcnow() - timedelta(days=BASELINE_DAYS))
        lo, hi, period = await metric_service.period(
            session, tenant_id, start, body.baseline_to or utcnow()
        )
        seen = await measure(session, tenant_id, scope, body.metric, lo, hi)
        if seen.value is not None and not _improves(body.metric, seen.value, body.target):
            better = "below" if body.metric is ActionMetric.THEME_SHARE else "above"
            raise InvalidRequest.at(
                ("body", "target"),
                "target_not_an_improvement",
                f"the baseline is {seen.value:.1f}: the target must lie {better} it",
            )
        needed = max(MIN_BASELINE, needed_per_period(body.metric, seen, body.target))
        if seen.n < needed:
            what = "comments" if body.metric is ActionMetric.THEME_SHARE else "responses"
            raise InvalidRequest.at(
                ("body", "baseline_from"),
                "baseline_too_small",
                f"the baseline window holds {seen.n} {what} of the scope; showing a change "
                f"to {body.target:g} needs {needed} per period (two-sided 5 %, power 80 %): "
                "widen the window or the scope, or aim for a larger change",
            )
        baseline = Baseline(
            period_from=period.from_,
            period_to=period.to,
            value=seen.value,
            interval=seen.interval,
            n=seen.n,
            needed_n=needed,
        )
        values = {
            **body.model_dump(
                exclude={"scope", "baseline_from", "baseline_to", "status", "metric"}
            ),
            **scope,
            "metric": body.metric.value,
            "status": body.status.value,
            "baseline": baseline.model_dump(mode="json", by_alias=True),
            "completed_at": utcnow() if body.status is ActionStatus.DONE else None,
        }
        action = await ActionRepository(session).add(tenant_id, values)
        made = read(action)
        await event_service.emit(session, tenant_id, EventType.ACTION_CREATED, [made])
        if action.completed_at is not None:
            await self._completed(session, action, made)
        return made

    async def get(self, session: AsyncSession, tenant_id: UUID, action_id: UUID) -> ActionRead:
        return read(await self._row(session, tenant_id, action_id))

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        status: ActionStatus | None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[ActionRead], str | None]:
        rows = await ActionRepository(session).page(
            tenant_id, status=status.value if status else None, limit=limit + 1, after=after
        )
        return paginate([read(r) for r in rows], limit, lambda a: (a.created_at, a.id))

    async def update(
        self, session: AsyncSession, tenant_id: UUID, action_id: UUID, body: ActionUpdate
    ) -> ActionRead:
        action = await self._row(session, tenant_id, action_id, lock=True)
        changes = body.model_dump(exclude_unset=True)
        if "status" in changes:
            changes["status"] = self._transition(action.status, changes["status"])
            if changes["status"] == ActionStatus.DONE.value and action.completed_at is None:
                changes["completed_at"] = utcnow()
        target = changes.get("target")
        if target is not None:
            metric = ActionMetric(action.metric)
            low, high = RANGES[metric]
            value = action.baseline.get("value")
            if not low <= target <= high or (
                value is not None and not _improves(metric, value, target)
            ):
                raise InvalidRequest.at(
                    ("body", "target"),
                    "target_not_an_improvement",
                    "the target must lie in the metric's range and improve on the baseline",
                )
        for name in ("title", "target", "deadline"):
            if name in changes and changes[name] is None:
                raise InvalidRequest.at(("body", name), "required", f"`{name}` cannot be null")
        if not changes:
            return read(action)
        for name, value in changes.items():
            setattr(action, name, value)
        action.version += 1
        action.updated_at = utcnow()
        await session.flush()
        made = read(action)
        await event_service.emit(session, tenant_id, EventType.ACTION_UPDATED, [made])
        if "completed_at" in changes:
            await self._completed(session, action, made)
        return made

    async def customers_to_tell(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        action_id: UUID,
        *,
        limit: int,
        after: UUID | None,
    ) -> tuple[list[CustomerToTell], str | None]:
        return await self._to_tell(
            session, await self._row(session, tenant_id, action_id), limit, after
        )

    async def _completed(
        self, session: AsyncSession, action: ImprovementAction, made: ActionRead
    ) -> None:
        customers, cursor = await self._to_tell(session, action, EVENT_CUSTOMERS, None)
        payload = ActionCompleted(
            action=made,
            public_summary=action.public_summary,
            customers=customers,
            next_cursor=cursor,
        )
        await event_service.emit(session, action.tenant_id, EventType.ACTION_COMPLETED, [payload])

    async def _to_tell(
        self, session: AsyncSession, action: ImprovementAction, limit: int, after: UUID | None
    ) -> tuple[list[CustomerToTell], str | None]:
        """The customers who raised it, from the baseline window's start until the action
        was done (until now while it is not), less those opted out of every channel; by
        customer id, read in chunks until the page is full (opt-outs leave gaps)."""
        lo = datetime.fromisoformat(action.baseline["from"])
        hi = action.completed_at or utcnow()
        repo = ActionRepository(session)
        found: list[tuple[UUID, CustomerToTell]] = []
        while len(found) <= limit:
            rows = await repo.customers_who_said(action, lo, hi, after=after, limit=CUSTOMER_CHUNK)
            blocks = await invitation_service.blocks_for(
                session, action.tenant_id, [ref for _, ref, _, _ in rows]
            )
            for customer_id, ref, mentions, last in rows:
                blocked = blocks.get(ref, {})
                if ALL_CHANNELS in blocked:
                    continue
                found.append(
                    (
                        customer_id,
                        CustomerToTell(
                            ref=ref,
                            mentions=mentions,
                            last_mentioned_at=last,
                            blocked_channels=sorted(blocked),
                        ),
                    )
                )
                if len(found) > limit:
                    break
            if len(rows) < CUSTOMER_CHUNK:
                break
            after = rows[-1][0]
        page = found[:limit]
        cursor = encode_cursor(page[-1][0]) if len(found) > limit else None
        return [c for _, c in page], cursor

    async def efforts(
        self, session: AsyncSession, tenant_id: UUID, low_effort_days: float
    ) -> dict[tuple[str, str], Effort]:
        """For the priority matrix: the effort of each theme and touchpoint from its latest
        action with an estimate (not abandoned). An action scoped to a theme gives the
        theme's; one scoped to a touchpoint without a theme, the touchpoint's."""
        out: dict[tuple[str, str], Effort] = {}
        for action in await ActionRepository(session).efforts(tenant_id):
            where = (
                ("theme", action.theme)
                if action.theme is not None
                else ("touchpoint", action.touchpoint)
                if action.touchpoint is not None
                else None
            )
            if where is None or where in out or action.effort_days is None:
                continue
            low = action.effort_days <= low_effort_days
            out[(where[0], where[1])] = Effort(
                level="low" if low else "high", source="action", action_id=action.id
            )
        return out

    @staticmethod
    def _transition(current: str, wanted: str) -> str:
        allowed = {
            "planned": {"planned", "in_progress", "done", "abandoned"},
            "in_progress": {"in_progress", "done", "abandoned"},
            "done": {"done"},
            "abandoned": {"abandoned"},
        }
        if wanted not in allowed[current]:
            raise InvalidRequest.at(
                ("body", "status"),
                "status_transition",
                f"an action that is {current} cannot become {wanted}",
            )
        return wanted

    async def _row(
        self, session: AsyncSession, tenant_id: UUID, action_id: UUID, *, lock: bool = False
    ) -> ImprovementAction:
        action = await ActionRepository(session).get(tenant_id, action_id, lock=lock)
        if action is None:
            raise NotFound("no such action")
        return action

    async def _check_scope(
        self, session: AsyncSession, tenant_id: UUID, scope: ActionScope, metric: ActionMetric
    ) -> None:
        if metric is ActionMetric.THEME_SHARE and scope.theme is None:
            raise InvalidRequest.at(
                ("body", "scope", "theme"),
                "theme_required",
                "`theme_share` measures a theme: name it in `scope.theme`",
            )
        if (
            scope.theme is not None
            and await ThemeRepository(session).get(tenant_id, scope.theme) is None
        ):
            raise InvalidRequest.at(
                ("body", "scope", "theme"),
                "unknown_theme",
                f"no theme {scope.theme!r} in the dictionary",
            )

    async def _zone(self, session: AsyncSession, tenant_id: UUID) -> ZoneInfo:
        _, _, period = await metric_service.period(session, tenant_id, None, None)
        return ZoneInfo(period.timezone)


action = ActionService()
