"""The closed loop: rules open tickets from unhappy responses, teams work them through the API,
SLA clocks run on business hours, the worker warns and escalates, and a repeat complaint
reopens the ticket.

Every change to a ticket takes its row lock first (`SELECT … FOR UPDATE`), so API calls, the
rules and the escalation job never interleave on one ticket; warnings and breaches are marked
under that lock, which is what makes them happen exactly once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.customers.service import customer as customer_service
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import (
    Conflict,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    PolicyInUse,
    PolicyKeyTaken,
    TicketExists,
    TicketNotResolved,
)
from feedback_api.jobs.failures import WorkFailureRepository
from feedback_api.kit.ids import new_id
from feedback_api.kit.pagination import paginate
from feedback_api.kit.poison import describe, isolate
from feedback_api.kit.time import utcnow
from feedback_api.metrics.service import PeriodBound
from feedback_api.metrics.service import metric as metric_service
from feedback_api.models import SlaPolicy, Ticket, TicketEntry, TicketRule
from feedback_api.responses.hooks import StoredResponse
from feedback_api.tickets import rules as rule_logic
from feedback_api.tickets.clocks import (
    CLOCKS,
    budget_for,
    calendar_of,
    clock_of,
    clock_read,
    put_clock,
    schedule_check,
)
from feedback_api.tickets.repository import TicketRepository, TicketSettings
from feedback_api.tickets.rules import Priority, raised
from feedback_api.tickets.schemas import (
    ClockName,
    Escalation,
    ExportedTicket,
    FollowUpRead,
    RuleAction,
    RuleConditions,
    SlaPolicyCreate,
    SlaPolicyRead,
    SlaPolicyUpdate,
    StatsBy,
    TicketCreate,
    TicketEventData,
    TicketFilters,
    TicketRead,
    TicketRuleCreate,
    TicketRuleRead,
    TicketRuleUpdate,
    TicketStats,
    TicketStatsGroup,
    TimelineEntryRead,
)
from feedback_api.tickets.sla import BusinessCalendar, Clock, due_at
from feedback_api.tickets.states import ACTIVE, PAUSED, Status, allowed_from, can_move

# Imports of history (a year of old answers) must not flood the team with tickets: only
# responses that happened recently open or touch one.
AUTO_TICKET_MAX_AGE = timedelta(days=7)
SLA_BATCH = 200
# A ticket whose SLA check failed is set aside under this name and looked at again later.
SLA_SOURCE = "tickets.check_sla"
SLA_RETRY = timedelta(hours=1)

DEFAULT_TARGETS: dict[str, dict[str, int]] = {
    "urgent": {"first_response_minutes": 60, "resolution_minutes": 8 * 60},
    "high": {"first_response_minutes": 4 * 60, "resolution_minutes": 24 * 60},
    "normal": {"first_response_minutes": 24 * 60, "resolution_minutes": 72 * 60},
    "low": {"first_response_minutes": 72 * 60, "resolution_minutes": 7 * 24 * 60},
}


# What the rules read of a stored response: the responses domain's own record of it.
Complaint = StoredResponse


async def on_stored(
    session: AsyncSession, tenant_id: UUID, stored: Sequence[StoredResponse]
) -> None:
    """The `responses_stored` subscriber (connected in feedback_api.assembly)."""
    await ticket.on_responses(session, tenant_id, stored)


def may_open_a_ticket(stored: StoredResponse) -> bool:
    """Which stored responses `on_stored` needs: a customer's, recent enough. (Anonymous
    feedback has nobody to follow up with.)"""
    return stored.customer_id is not None and stored.occurred_at >= utcnow() - AUTO_TICKET_MAX_AGE


@dataclass(slots=True)
class _Context:
    tenant_id: UUID
    settings: TicketSettings
    policies: dict[UUID, SlaPolicy]
    calendars: dict[UUID, BusinessCalendar | None] = field(default_factory=dict)
    refs: dict[UUID, str] = field(default_factory=dict)  # customer id → external_ref

    @property
    def default_policy(self) -> SlaPolicy:
        for policy in self.policies.values():
            if policy.is_default:
                return policy
        raise NotFound("this tenant has no default SLA policy")  # prevented by the API

    def policy_by_key(self, key: str | None, loc: list[str | int]) -> SlaPolicy:
        if key is None:
            return self.default_policy
        for policy in self.policies.values():
            if policy.key == key:
                return policy
        raise InvalidRequest.at(
            loc, "unknown_policy", "no such SLA policy", detail=f"no SLA policy with key {key!r}"
        )

    def calendar(self, policy_id: UUID) -> BusinessCalendar | None:
        if policy_id not in self.calendars:
            self.calendars[policy_id] = calendar_of(
                self.policies[policy_id], self.settings.timezone
            )
        return self.calendars[policy_id]


def _policy_read(policy: SlaPolicy) -> SlaPolicyRead:
    return SlaPolicyRead(
        id=policy.id,
        key=policy.key,
        name=policy.name,
        targets=policy.targets,  # type: ignore[arg-type]
        business_hours=policy.business_hours,  # type: ignore[arg-type]
        warn_at_percent=policy.warn_at_percent,
        escalation=Escalation(
            raise_priority=policy.escalate_raise_priority, team=policy.escalation_team
        ),
        is_default=policy.is_default,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


def _check_reachable(policy: SlaPolicy, tenant_timezone: str) -> None:
    """Every target must be reachable on the policy's hours: otherwise each new ticket on it
    would fail, and with it the response that opened it."""
    calendar = calendar_of(policy, tenant_timezone)
    if calendar is None:
        return
    longest = max(
        timedelta(minutes=minutes)
        for target in policy.targets.values()
        for minutes in target.values()
    )
    try:
        due_at(utcnow(), longest, calendar)
    except ValueError:
        raise InvalidRequest.at(
            ("body", "business_hours"),
            "targets_unreachable",
            "more open hours, or shorter targets",
            detail="these business hours cannot meet the longest target within three years",
        ) from None


def _rule(row: TicketRule) -> rule_logic.Rule:
    c = RuleConditions.model_validate(row.conditions)
    conditions = rule_logic.Conditions(
        kinds=frozenset(k.value for k in c.kinds),
        score_min=c.score_min,
        score_max=c.score_max,
        channels=frozenset(ch.value for ch in c.channels),
        touchpoints=frozenset(c.touchpoints),
        tags_any=frozenset(c.tags_any),
        keywords_any=tuple(c.keywords_any),
        agent_refs=frozenset(c.agent_refs),
        location_refs=frozenset(c.location_refs),
        customer_attributes=dict(c.customer_attributes),
    )
    action = rule_logic.Action(Priority(row.priority), row.team, row.assignee)
    return rule_logic.Rule(row.name, row.position, conditions, action, row.enabled, row.id)


class TicketService:
    # --- context -------------------------------------------------------------------------
    async def _context(self, session: AsyncSession, tenant_id: UUID) -> _Context:
        repo = TicketRepository(session)
        settings = await repo.settings(tenant_id)
        if settings is None:
            raise NotFound("no such tenant")
        policies = {p.id: p for p in await repo.policies(tenant_id)}
        return _Context(tenant_id, settings, policies)

    async def seed_defaults(self, session: AsyncSession, tenant_id: UUID) -> None:
        """A new tenant's loop works out of the box: one 24/7 policy and the default rules."""
        repo = TicketRepository(session)
        await repo.add(
            SlaPolicy(
                tenant_id=tenant_id,
                key="standard",
                name="Standard",
                is_default=True,
                targets=DEFAULT_TARGETS,
            )
        )
        for rule in rule_logic.DEFAULT_RULES:
            conditions = RuleConditions(
                kinds=sorted(rule.conditions.kinds),  # type: ignore[arg-type]
                score_min=rule.conditions.score_min,
                score_max=rule.conditions.score_max,
            )
            await repo.add(
                TicketRule(
                    tenant_id=tenant_id,
                    name=rule.name,
                    position=rule.position,
                    conditions=conditions.model_dump(mode="json", exclude_defaults=True),
                    priority=rule.action.priority.value,
                )
            )

    # --- SLA policies ----------------------------------------------------------------------
    async def list_policies(self, session: AsyncSession, tenant_id: UUID) -> list[SlaPolicyRead]:
        return [_policy_read(p) for p in await TicketRepository(session).policies(tenant_id)]

    async def _policy(self, session: AsyncSession, tenant_id: UUID, key: str) -> SlaPolicy:
        policy = await TicketRepository(session).policy_by_key(tenant_id, key)
        if policy is None:
            raise NotFound("no such SLA policy")
        return policy

    async def get_policy(self, session: AsyncSession, tenant_id: UUID, key: str) -> SlaPolicyRead:
        return _policy_read(await self._policy(session, tenant_id, key))

    async def create_policy(
        self, session: AsyncSession, tenant_id: UUID, body: SlaPolicyCreate
    ) -> SlaPolicyRead:
        repo = TicketRepository(session)
        settings = await repo.settings(tenant_id)
        assert settings is not None  # the caller's key belongs to the tenant
        policy = SlaPolicy(
            tenant_id=tenant_id,
            key=body.key,
            name=body.name,
            is_default=body.is_default,
            targets=body.targets.model_dump(),
            business_hours=body.business_hours.model_dump(mode="json")
            if body.business_hours
            else None,
            warn_at_percent=body.warn_at_percent,
            escalate_raise_priority=body.escalation.raise_priority,
            escalation_team=body.escalation.team,
        )
        _check_reachable(policy, settings.timezone)
        try:
            async with session.begin_nested():
                if body.is_default:
                    await repo.clear_default(tenant_id)
                await repo.add(policy)
        except IntegrityError:
            # the unique key, or a concurrent change of the default
            raise PolicyKeyTaken(
                f"an SLA policy with key {body.key!r} exists, or another request changed the "
                "default at the same time"
            ) from None
        await session.refresh(policy)
        return _policy_read(policy)

    async def update_policy(
        self, session: AsyncSession, tenant_id: UUID, key: str, body: SlaPolicyUpdate
    ) -> SlaPolicyRead:
        """Changes apply to tickets from now on: running clocks keep their targets, and
        pick up new business hours when they next start or resume."""
        values = body.model_dump(mode="json", exclude_unset=True)
        # Objects given are replaced as a whole, their omitted fields taking their defaults
        # (`exclude_unset` would leave them out of the nested dicts too).
        for name in ("targets", "business_hours", "escalation"):
            given = getattr(body, name)
            if name in values and given is not None:
                values[name] = given.model_dump(mode="json")
        policy = await self._policy(session, tenant_id, key)
        repo = TicketRepository(session)
        settings = await repo.settings(tenant_id)
        assert settings is not None
        make_default = values.pop("is_default", None)
        if "escalation" in values:
            escalation = values.pop("escalation")
            policy.escalate_raise_priority = escalation["raise_priority"]
            policy.escalation_team = escalation["team"]
        for name, value in values.items():
            setattr(policy, name, value)
        policy.updated_at = utcnow()
        _check_reachable(policy, settings.timezone)
        try:
            async with session.begin_nested():
                if make_default and not policy.is_default:
                    await repo.clear_default(tenant_id)
                    policy.is_default = True
                await session.flush()
        except IntegrityError:
            raise Conflict("another request changed the default policy at the same time") from None
        await session.refresh(policy)  # the bulk update of the default expired it
        return _policy_read(policy)

    async def delete_policy(self, session: AsyncSession, tenant_id: UUID, key: str) -> None:
        policy = await self._policy(session, tenant_id, key)
        repo = TicketRepository(session)
        if policy.is_default:
            raise PolicyInUse("the default policy cannot be deleted; make another the default")
        if await repo.policy_in_use(tenant_id, policy.id):
            raise PolicyInUse("rules or tickets use this policy")
        await repo.delete_obj(policy)

    # --- rules -----------------------------------------------------------------------------
    def _rule_read(self, rule: TicketRule, ctx: _Context) -> TicketRuleRead:
        policy = ctx.policies.get(rule.sla_policy_id) if rule.sla_policy_id else None
        return TicketRuleRead(
            id=rule.id,
            name=rule.name,
            position=rule.position,
            enabled=rule.enabled,
            conditions=RuleConditions.model_validate(rule.conditions),
            action=RuleAction(
                priority=Priority(rule.priority),
                team=rule.team,
                assignee=rule.assignee,
                sla_policy=policy.key if policy else None,
            ),
            created_at=rule.created_at,
            updated_at=rule.updated_at,
        )

    async def list_rules(self, session: AsyncSession, tenant_id: UUID) -> list[TicketRuleRead]:
        ctx = await self._context(session, tenant_id)
        rules = await TicketRepository(session).rules(tenant_id)
        return [self._rule_read(r, ctx) for r in rules]

    async def _rule(self, session: AsyncSession, tenant_id: UUID, rule_id: UUID) -> TicketRule:
        rule = await TicketRepository(session).rule(tenant_id, rule_id)
        if rule is None:
            raise NotFound("no such ticket rule")
        return rule

    async def get_rule(
        self, session: AsyncSession, tenant_id: UUID, rule_id: UUID
    ) -> TicketRuleRead:
        rule = await self._rule(session, tenant_id, rule_id)
        return self._rule_read(rule, await self._context(session, tenant_id))

    def _apply_rule_fields(
        self, rule: TicketRule, body: TicketRuleCreate | TicketRuleUpdate, ctx: _Context
    ) -> None:
        """The fields the body sets (all of them for a new rule)."""
        sent = (
            type(body).model_fields if isinstance(body, TicketRuleCreate) else body.model_fields_set
        )
        for name in ("name", "position", "enabled"):
            if name in sent:
                setattr(rule, name, getattr(body, name))
        if "conditions" in sent and body.conditions is not None:
            rule.conditions = body.conditions.model_dump(mode="json", exclude_defaults=True)
        if "action" in sent and (action := body.action) is not None:
            rule.priority = action.priority.value
            rule.team = action.team
            rule.assignee = action.assignee
            rule.sla_policy_id = (
                ctx.policy_by_key(action.sla_policy, ["body", "action", "sla_policy"]).id
                if action.sla_policy
                else None
            )

    async def create_rule(
        self, session: AsyncSession, tenant_id: UUID, body: TicketRuleCreate
    ) -> TicketRuleRead:
        ctx = await self._context(session, tenant_id)
        rule = TicketRule(tenant_id=tenant_id, conditions={})
        self._apply_rule_fields(rule, body, ctx)
        await TicketRepository(session).add(rule)
        await session.refresh(rule)
        return self._rule_read(rule, ctx)

    async def update_rule(
        self, session: AsyncSession, tenant_id: UUID, rule_id: UUID, body: TicketRuleUpdate
    ) -> TicketRuleRead:
        ctx = await self._context(session, tenant_id)
        rule = await self._rule(session, tenant_id, rule_id)
        self._apply_rule_fields(rule, body, ctx)
        rule.updated_at = utcnow()
        await session.flush()
        return self._rule_read(rule, ctx)

    async def delete_rule(self, session: AsyncSession, tenant_id: UUID, rule_id: UUID) -> None:
        if not await TicketRepository(session).delete_rule(tenant_id, rule_id):
            raise NotFound("no such ticket rule")

    # --- reading tickets -----------------------------------------------------------------
    def _read(self, ticket: Ticket, ref: str | None, ctx: _Context) -> TicketRead:
        now = utcnow()
        calendar = ctx.calendar(ticket.sla_policy_id)
        follow_up = None
        if ticket.follow_up_solved is not None and ticket.follow_up_at is not None:
            follow_up = FollowUpRead(
                solved=ticket.follow_up_solved,
                comment=ticket.follow_up_comment,
                recorded_at=ticket.follow_up_at,
            )
        return TicketRead(
            id=ticket.id,
            status=Status(ticket.status),
            priority=Priority(ticket.priority),
            team=ticket.team,
            assignee=ticket.assignee,
            customer=ref,
            touchpoint=ticket.touchpoint,
            channel=ticket.channel,
            agent_ref=ticket.agent_ref,
            location_ref=ticket.location_ref,
            subject=ticket.subject,
            description=ticket.description,
            origin=ticket.origin,
            response_id=ticket.response_id,
            rule_id=ticket.rule_id,
            sla_policy=ctx.policies[ticket.sla_policy_id].key,
            first_response=clock_read(ticket, ClockName.FIRST_RESPONSE, now, calendar),
            resolution=clock_read(ticket, ClockName.RESOLUTION, now, calendar),
            breached=ticket.first_response_breached_at is not None
            or ticket.resolution_breached_at is not None,
            escalation_level=ticket.escalation_level,
            repeat_count=ticket.repeat_count,
            reopened_count=ticket.reopened_count,
            root_cause=ticket.root_cause,
            resolution_summary=ticket.resolution_summary,
            follow_up=follow_up,
            acknowledged_at=ticket.acknowledged_at,
            resolved_at=ticket.resolved_at,
            closed_at=ticket.closed_at,
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
        )

    async def get(self, session: AsyncSession, tenant_id: UUID, ticket_id: UUID) -> TicketRead:
        row = await TicketRepository(session).get(tenant_id, ticket_id)
        if row is None:
            raise NotFound("no such ticket")
        return self._read(row[0], row[1], await self._context(session, tenant_id))

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        filters: TicketFilters,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[TicketRead], str | None]:
        ctx = await self._context(session, tenant_id)
        rows = await TicketRepository(session).page(
            tenant_id, filters, limit=limit + 1, after=after
        )
        reads = [self._read(t, ref, ctx) for t, ref in rows]
        return paginate(reads, limit, lambda r: (r.created_at, r.id))

    async def timeline_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        ticket_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[TimelineEntryRead], str | None]:
        repo = TicketRepository(session)
        if await repo.get(tenant_id, ticket_id) is None:
            raise NotFound("no such ticket")
        entries = await repo.entries_page(tenant_id, ticket_id, limit=limit + 1, after=after)
        reads = [TimelineEntryRead.model_validate(e) for e in entries]
        return paginate(reads, limit, lambda r: (r.created_at, r.id))

    # --- shared mutation helpers ---------------------------------------------------------
    async def _locked(self, session: AsyncSession, tenant_id: UUID, ticket_id: UUID) -> Ticket:
        ticket = await TicketRepository(session).lock(tenant_id, ticket_id)
        if ticket is None:
            raise NotFound("no such ticket")
        return ticket

    async def _entry(
        self,
        session: AsyncSession,
        ticket: Ticket,
        type_: str,
        now: datetime,
        *,
        actor: UUID | None = None,
        author: str | None = None,
        body: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> TicketEntry:
        entry = TicketEntry(
            tenant_id=ticket.tenant_id,
            id=new_id(),
            ticket_id=ticket.id,
            type=type_,
            actor_key_id=actor,
            author=author,
            body=body,
            data=data or {},
            created_at=now,
        )
        await TicketRepository(session).add(entry)
        return entry

    async def _view(self, session: AsyncSession, ctx: _Context, ticket: Ticket) -> TicketRead:
        """The ticket as the API shows it, after a change (the customer's ref is cached)."""
        if ticket.customer_id is not None and ticket.customer_id not in ctx.refs:
            ctx.refs |= await TicketRepository(session).customer_refs(
                ctx.tenant_id, [ticket.customer_id]
            )
        ref = ctx.refs.get(ticket.customer_id) if ticket.customer_id else None
        return self._read(ticket, ref, ctx)

    async def _emit(
        self,
        session: AsyncSession,
        ctx: _Context,
        ticket: Ticket,
        type_: EventType,
        entry: TicketEntry | None = None,
    ) -> None:
        await session.flush()
        read = await self._view(session, ctx, ticket)
        data = TicketEventData(
            **read.model_dump(),
            entry=TimelineEntryRead.model_validate(entry) if entry is not None else None,
        )
        await event_service.emit(session, ctx.tenant_id, type_, [data])

    def _reclock(
        self,
        ticket: Ticket,
        ctx: _Context,
        change: Literal["pause", "resume", "stop", "restart"],
        now: datetime,
    ) -> None:
        """Pause, resume, stop or restart both clocks; `change` says which."""
        policy = ctx.policies[ticket.sla_policy_id]
        calendar = ctx.calendar(policy.id)
        for name in CLOCKS:
            clock = clock_of(ticket, name)
            if change == "pause":
                clock = clock.pause(now, calendar)
            elif change == "resume":
                clock = clock.resume(now)
            elif change == "stop":
                clock = clock.stop(now, calendar) if clock.stopped_at is None else clock
            elif change == "restart" and name is ClockName.RESOLUTION:
                clock = Clock(clock.budget, clock.consumed, now, None)
            put_clock(ticket, name, clock, calendar, policy.warn_at_percent)

    async def _mark_late_breaches(
        self, session: AsyncSession, ctx: _Context, ticket: Ticket, now: datetime
    ) -> None:
        """A clock stopped over budget before the SLA job noticed still counts as breached."""
        for name in CLOCKS:
            clock = clock_of(ticket, name)
            late = clock.stopped_at is not None and clock.consumed > clock.budget
            if late and getattr(ticket, f"{name}_breached_at") is None:
                setattr(ticket, f"{name}_breached_at", clock.stopped_at)
                entry = await self._entry(
                    session, ticket, "sla_breached", now, data={"clock": name.value}
                )
                await self._emit(session, ctx, ticket, EventType.TICKET_SLA_BREACHED, entry)
        schedule_check(ticket)

    async def _move(
        self,
        session: AsyncSession,
        ctx: _Context,
        ticket: Ticket,
        target: Status,
        now: datetime,
        *,
        actor: UUID | None,
        reason: str | None = None,
    ) -> TicketEntry:
        current = Status(ticket.status)
        if not can_move(current, target):
            raise IllegalTransition(
                f"a ticket cannot go from {current.value} to {target.value}; from "
                f"{current.value} it may go to: {', '.join(allowed_from(current)) or 'nowhere'}"
            )
        if current in PAUSED:
            self._reclock(ticket, ctx, "resume", now)
        if target in PAUSED:
            self._reclock(ticket, ctx, "pause", now)
        elif target is Status.ACKNOWLEDGED:
            ticket.acknowledged_at = ticket.acknowledged_at or now
        elif target is Status.RESOLVED:
            # The resolution summary goes to the customer: it answers them if nobody had.
            self._reclock(ticket, ctx, "stop", now)
            ticket.resolved_at = now
        elif target is Status.CLOSED:
            ticket.closed_at = now
        elif target is Status.REOPENED:
            self._reclock(ticket, ctx, "restart", now)
            ticket.reopened_at = now
            ticket.reopened_count += 1
            ticket.resolved_at = None
            ticket.closed_at = None
        ticket.status = target.value
        ticket.updated_at = now
        data = {"from": current.value, "to": target.value}
        if reason:
            data["reason"] = reason
        entry = await self._entry(session, ticket, "status_changed", now, actor=actor, data=data)
        if target is Status.RESOLVED:
            await self._mark_late_breaches(session, ctx, ticket, now)
        return entry

    @staticmethod
    def _status_event(target: Status) -> EventType:
        return {
            Status.RESOLVED: EventType.TICKET_RESOLVED,
            Status.CLOSED: EventType.TICKET_CLOSED,
            Status.REOPENED: EventType.TICKET_REOPENED,
        }.get(target, EventType.TICKET_UPDATED)

    def _new_ticket(
        self,
        ctx: _Context,
        policy: SlaPolicy,
        priority: Priority,
        now: datetime,
        **fields: Any,
    ) -> Ticket:
        ticket = Ticket(
            tenant_id=ctx.tenant_id,
            id=new_id(),
            status=Status.OPEN.value,
            priority=priority.value,
            sla_policy_id=policy.id,
            created_at=now,
            updated_at=now,
            **fields,
        )
        calendar = ctx.calendar(policy.id)
        for name in CLOCKS:
            clock = Clock(budget_for(policy, priority.value, name)).start(now)
            put_clock(ticket, name, clock, calendar, policy.warn_at_percent)
        return ticket

    @staticmethod
    def _row_values(ticket: Ticket) -> dict[str, Any]:
        return {
            c.key: getattr(ticket, c.key)
            for c in Ticket.__table__.columns
            if getattr(ticket, c.key, None) is not None
        }

    # --- tickets from responses ----------------------------------------------------------
    async def on_responses(
        self, session: AsyncSession, tenant_id: UUID, complaints: Sequence[Complaint]
    ) -> None:
        """Run the rules over freshly stored responses, in the caller's transaction: a
        ticket exists the moment the response is acknowledged."""
        now = utcnow()
        candidates = [
            c
            for c in complaints
            if c.customer_id is not None and c.occurred_at >= now - AUTO_TICKET_MAX_AGE
        ]
        if not candidates:
            return
        repo = TicketRepository(session)
        rows = {r.id: r for r in await repo.rules(tenant_id) if r.enabled}
        if not rows:
            return
        rules = [_rule(r) for r in rows.values()]
        attributes: dict[UUID, dict[str, Any]] = {}
        if any(rule.conditions.customer_attributes for rule in rules):
            attributes = await repo.customer_attributes(
                tenant_id, {c.customer_id for c in candidates if c.customer_id}
            )
        matched: list[tuple[Complaint, TicketRule]] = []
        for c in candidates:
            assert c.customer_id is not None
            facts = rule_logic.Facts(
                kind=c.kind,
                score=c.score,
                channel=c.channel,
                touchpoint=c.touchpoint,
                tags=frozenset(c.tags),
                comment=c.comment,
                agent_ref=c.agent_ref,
                location_ref=c.location_ref,
                customer_attributes=attributes.get(c.customer_id, {}),
            )
            hit = rule_logic.first_match(rules, facts)
            if hit is not None and hit.id is not None:
                matched.append((c, rows[hit.id]))
        if not matched:
            return
        ctx = await self._context(session, tenant_id)
        ctx.refs |= {
            c.customer_id: c.customer_ref for c, _ in matched if c.customer_id and c.customer_ref
        }
        # One lock order for every transaction: no deadlock between concurrent batches.
        matched.sort(key=lambda m: (str(m[0].customer_id), m[0].touchpoint or ""))
        for complaint, rule in matched:
            await self._route(session, ctx, complaint, rule, now)

    async def _route(
        self, session: AsyncSession, ctx: _Context, c: Complaint, rule: TicketRule, now: datetime
    ) -> None:
        assert c.customer_id is not None
        repo = TicketRepository(session)
        priority = Priority(rule.priority)
        # A few rounds at most: a concurrent request may open the ticket between our look and
        # our insert (then we attach to theirs), and in a rare second race resolve it again.
        since = now - timedelta(days=ctx.settings.reopen_days)
        for _ in range(3):
            found = await repo.lock_open_or_recent(
                ctx.tenant_id, c.customer_id, c.touchpoint, since
            )
            if found is not None and Status(found.status) in ACTIVE:
                await self._attach(session, ctx, found, c, priority, now)
                return
            if found is not None:
                await self._repeat_complaint(session, ctx, found, c, now)
                return
            if await self._open_from(session, ctx, c, rule, priority, now):
                return
        # A subscriber of responses_stored: the failure sets this complaint aside for a job
        # (kit/hooks.py); the response itself is kept.
        raise RuntimeError("a ticket kept changing under a new complaint")

    async def _open_from(
        self,
        session: AsyncSession,
        ctx: _Context,
        c: Complaint,
        rule: TicketRule,
        priority: Priority,
        now: datetime,
    ) -> bool:
        """Open a ticket for this complaint; False if the customer has an active one."""
        policy = ctx.policies[rule.sla_policy_id] if rule.sla_policy_id else ctx.default_policy
        ticket = self._new_ticket(
            ctx,
            policy,
            priority,
            now,
            team=rule.team,
            assignee=rule.assignee,
            customer_id=c.customer_id,
            touchpoint=c.touchpoint,
            channel=c.channel,
            agent_ref=c.agent_ref,
            location_ref=c.location_ref,
            subject=f"{c.kind.upper()} {c.score}" + (f" at {c.touchpoint}" if c.touchpoint else ""),
            description=c.comment,
            origin="response",
            response_id=c.response_id,
            rule_id=rule.id,
        )
        repo = TicketRepository(session)
        inserted = await repo.insert_ticket(self._row_values(ticket))
        if inserted is None:
            return False
        ticket = inserted
        await repo.link(ctx.tenant_id, ticket.id, c.response_id, "trigger")
        entry = await self._entry(
            session,
            ticket,
            "created",
            now,
            data={"rule": rule.name, "response_id": str(c.response_id)},
        )
        await self._emit(session, ctx, ticket, EventType.TICKET_CREATED, entry)
        return True

    async def _attach(
        self,
        session: AsyncSession,
        ctx: _Context,
        ticket: Ticket,
        c: Complaint,
        priority: Priority,
        now: datetime,
    ) -> None:
        await TicketRepository(session).link(ctx.tenant_id, ticket.id, c.response_id, "attached")
        data: dict[str, Any] = {"response_id": str(c.response_id), "score": c.score}
        if rule_logic.PRIORITY_ORDER.index(priority) > rule_logic.PRIORITY_ORDER.index(
            Priority(ticket.priority)
        ):
            data["priority"] = {"from": ticket.priority, "to": priority.value}
            self._set_priority(ticket, ctx, priority)
        ticket.updated_at = now
        entry = await self._entry(
            session, ticket, "response_attached", now, body=c.comment, data=data
        )
        await self._emit(session, ctx, ticket, EventType.TICKET_UPDATED, entry)

    async def _repeat_complaint(
        self, session: AsyncSession, ctx: _Context, ticket: Ticket, c: Complaint, now: datetime
    ) -> None:
        await TicketRepository(session).link(ctx.tenant_id, ticket.id, c.response_id, "repeat")
        ticket.repeat_count += 1
        await self._entry(
            session,
            ticket,
            "repeat_complaint",
            now,
            body=c.comment,
            data={"response_id": str(c.response_id), "score": c.score},
        )
        entry = await self._move(
            session, ctx, ticket, Status.REOPENED, now, actor=None, reason="repeat_complaint"
        )
        await self._emit(session, ctx, ticket, EventType.TICKET_REOPENED, entry)

    def _set_priority(self, ticket: Ticket, ctx: _Context, priority: Priority) -> None:
        """Clocks still counting take the new priority's targets."""
        policy = ctx.policies[ticket.sla_policy_id]
        calendar = ctx.calendar(policy.id)
        ticket.priority = priority.value
        for name in CLOCKS:
            clock = clock_of(ticket, name)
            if clock.stopped_at is None:
                clock = Clock(
                    budget_for(policy, priority.value, name),
                    clock.consumed,
                    clock.running_since,
                    None,
                )
                put_clock(ticket, name, clock, calendar, policy.warn_at_percent)

    # --- tickets from people ------------------------------------------------------------
    async def create(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        body: TicketCreate,
        *,
        actor: UUID,
    ) -> TicketRead:
        """A ticket opened by hand (a phone complaint, an email to the boss)."""
        now = utcnow()
        ctx = await self._context(session, tenant_id)
        customer_id = None
        if body.customer is not None:
            ids = await customer_service.ensure(session, tenant_id, [body.customer])
            customer_id = ids[body.customer]
        policy = ctx.policy_by_key(body.sla_policy, ["body", "sla_policy"])
        ticket = self._new_ticket(
            ctx,
            policy,
            body.priority,
            now,
            team=body.team,
            assignee=body.assignee,
            customer_id=customer_id,
            touchpoint=body.touchpoint,
            channel=body.channel.value if body.channel else None,
            agent_ref=body.agent_ref,
            location_ref=body.location_ref,
            subject=body.subject,
            description=body.description,
            origin="manual",
            created_by_key_id=actor,
        )
        repo = TicketRepository(session)
        inserted = await repo.insert_ticket(self._row_values(ticket))
        if inserted is None:
            assert customer_id is not None
            existing = await repo.lock_active(tenant_id, customer_id, body.touchpoint)
            raise TicketExists(
                "this customer already has an active ticket at this touchpoint"
                + (f": {existing.id}" if existing else "")
            )
        ticket = inserted
        entry = await self._entry(
            session, ticket, "created", now, actor=actor, body=body.description
        )
        await self._emit(session, ctx, ticket, EventType.TICKET_CREATED, entry)
        return await self._view(session, ctx, ticket)

    async def update(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        ticket_id: UUID,
        values: dict[str, Any],
        *,
        actor: UUID,
    ) -> TicketRead:
        now = utcnow()
        ctx = await self._context(session, tenant_id)
        ticket = await self._locked(session, tenant_id, ticket_id)
        events: list[tuple[EventType, TicketEntry | None]] = []
        for name in ("subject", "root_cause", "resolution_summary"):
            if name in values:
                setattr(ticket, name, values[name])
        assignment = {
            k: values[k]
            for k in ("team", "assignee")
            if k in values and values[k] != getattr(ticket, k)
        }
        if assignment:
            data: dict[str, Any] = {
                k: {"from": getattr(ticket, k), "to": v} for k, v in assignment.items()
            }
            for k, v in assignment.items():
                setattr(ticket, k, v)
            entry = await self._entry(session, ticket, "assigned", now, actor=actor, data=data)
            events.append((EventType.TICKET_ASSIGNED, entry))
        if "priority" in values and values["priority"] != ticket.priority:
            data = {"from": ticket.priority, "to": values["priority"]}
            self._set_priority(ticket, ctx, Priority(values["priority"]))
            entry = await self._entry(
                session, ticket, "priority_changed", now, actor=actor, data=data
            )
            events.append((EventType.TICKET_UPDATED, entry))
        if "status" in values and values["status"] != ticket.status:
            target = Status(values["status"])
            if target is Status.RESOLVED:
                self._require_resolution(ticket)
            entry = await self._move(session, ctx, ticket, target, now, actor=actor)
            events.append((self._status_event(target), entry))
        ticket.updated_at = now
        if not events and values:
            events.append((EventType.TICKET_UPDATED, None))
        for type_, cause in events:
            await self._emit(session, ctx, ticket, type_, cause)
        await session.flush()
        return await self._view(session, ctx, ticket)

    @staticmethod
    def _require_resolution(ticket: Ticket) -> None:
        missing = [
            name for name in ("root_cause", "resolution_summary") if not getattr(ticket, name)
        ]
        if missing:
            raise InvalidRequest(
                "resolving needs a root cause and a resolution summary",
                errors=[
                    InvalidRequest.error(
                        ("body", name), "required_to_resolve", "set it in this request or before"
                    )
                    for name in missing
                ],
            )

    async def add_message(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        ticket_id: UUID,
        body: str,
        author: str | None,
        *,
        reply: bool,
        actor: UUID,
    ) -> TimelineEntryRead:
        """A note (internal: no event, the customer never sees it) or a reply (for the
        customer: `ticket.replied`; the first one stops the first-response clock)."""
        now = utcnow()
        ctx = await self._context(session, tenant_id)
        ticket = await self._locked(session, tenant_id, ticket_id)
        ticket.updated_at = now
        if not reply:
            entry = await self._entry(
                session, ticket, "note", now, actor=actor, author=author, body=body
            )
            return TimelineEntryRead.model_validate(entry)
        if ticket.status == Status.CLOSED.value:
            raise IllegalTransition("the ticket is closed; reopen it to reply")
        first = ticket.first_replied_at is None
        entry = await self._entry(
            session,
            ticket,
            "reply",
            now,
            actor=actor,
            author=author,
            body=body,
            data={"first": first},
        )
        if first:
            ticket.first_replied_at = now
            policy = ctx.policies[ticket.sla_policy_id]
            calendar = ctx.calendar(policy.id)
            clock = clock_of(ticket, ClockName.FIRST_RESPONSE)
            if clock.stopped_at is None:
                put_clock(
                    ticket,
                    ClockName.FIRST_RESPONSE,
                    clock.stop(now, calendar),
                    calendar,
                    policy.warn_at_percent,
                )
            await self._mark_late_breaches(session, ctx, ticket, now)
        await self._emit(session, ctx, ticket, EventType.TICKET_REPLIED, entry)
        return TimelineEntryRead.model_validate(entry)

    async def record_follow_up(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        ticket_id: UUID,
        *,
        solved: bool,
        comment: str | None,
        response_id: UUID | None,
        actor: UUID,
    ) -> TicketRead:
        """The customer's answer to “Is your problem solved?”. “No” reopens the ticket."""
        now = utcnow()
        ctx = await self._context(session, tenant_id)
        repo = TicketRepository(session)
        ticket = await self._locked(session, tenant_id, ticket_id)
        if ticket.status not in (Status.RESOLVED.value, Status.CLOSED.value):
            raise TicketNotResolved("a follow-up is asked after resolution; this ticket is not")
        if response_id is not None:
            if not await repo.response_exists(tenant_id, response_id):
                raise InvalidRequest.at(
                    ("body", "response_id"), "unknown_response", "no such response"
                )
            await repo.link(tenant_id, ticket.id, response_id, "follow_up")
        ticket.follow_up_solved = solved
        ticket.follow_up_comment = comment
        ticket.follow_up_at = now
        ticket.updated_at = now
        data: dict[str, Any] = {"solved": solved}
        if response_id is not None:
            data["response_id"] = str(response_id)
        entry = await self._entry(
            session, ticket, "follow_up", now, actor=actor, body=comment, data=data
        )
        if solved:
            await self._emit(session, ctx, ticket, EventType.TICKET_UPDATED, entry)
        else:
            moved = await self._move(
                session, ctx, ticket, Status.REOPENED, now, actor=actor, reason="not_solved"
            )
            await self._emit(session, ctx, ticket, EventType.TICKET_REOPENED, moved)
        return await self._view(session, ctx, ticket)

    # --- SLA job -----------------------------------------------------------------------------
    async def check_sla(self, session: AsyncSession, now: datetime, limit: int = SLA_BATCH) -> int:
        """Warn about and escalate tickets whose warning or due time has passed. Returns how
        many tickets were looked at; each warning and breach is marked under the row lock,
        so it happens once however many workers run this.

        A ticket whose check fails (kit.poison finds it) is set aside: recorded in
        work_failures (`tickets.check_sla`) and checked again an hour later, while the
        others of its batch, and every other tenant's, are checked now."""
        repo = TicketRepository(session)
        tickets = await repo.claim_sla_due(now, limit)
        claimed = [(t.tenant_id, t.id) for t in tickets]
        contexts: dict[UUID, _Context] = {}
        first: list[Ticket] | None = tickets

        async def work(part: Sequence[tuple[UUID, UUID]]) -> None:
            nonlocal first
            # The whole batch as claimed; a retry of a part reads it afresh, because the
            # savepoint that rolled back expired what it had changed.
            batch, first = first or await repo.by_keys(part), None
            for ticket in batch:
                if ticket.tenant_id not in contexts:
                    contexts[ticket.tenant_id] = await self._context(session, ticket.tenant_id)
                await self._check_ticket(session, contexts[ticket.tenant_id], ticket, now)

        async def set_aside(key: tuple[UUID, UUID], exc: Exception) -> None:
            contexts.clear()  # may hold what a rolled-back savepoint loaded
            error_type, error = describe(exc)
            tenant_id, ticket_id = key
            await WorkFailureRepository(session).record(
                tenant_id, SLA_SOURCE, str(ticket_id), error_type, error
            )
            await repo.postpone_sla_check(tenant_id, ticket_id, now + SLA_RETRY)

        await isolate(session, SLA_SOURCE, claimed, work, set_aside)
        return len(claimed)

    async def _check_ticket(
        self, session: AsyncSession, ctx: _Context, ticket: Ticket, now: datetime
    ) -> None:
        policy = ctx.policies[ticket.sla_policy_id]
        for name in CLOCKS:
            warn_at = getattr(ticket, f"{name}_warn_at")
            if (
                warn_at is not None
                and warn_at <= now
                and getattr(ticket, f"{name}_warned_at") is None
            ):
                setattr(ticket, f"{name}_warned_at", now)
                setattr(ticket, f"{name}_warn_at", None)
                data = {"clock": name.value, "due_at": getattr(ticket, f"{name}_due_at")}
                entry = await self._entry(session, ticket, "sla_warning", now, data=_json(data))
                await self._emit(session, ctx, ticket, EventType.TICKET_SLA_WARNING, entry)
            due = getattr(ticket, f"{name}_due_at")
            if due is not None and due <= now and getattr(ticket, f"{name}_breached_at") is None:
                setattr(ticket, f"{name}_breached_at", now)
                data = {"clock": name.value, "due_at": due}
                entry = await self._entry(session, ticket, "sla_breached", now, data=_json(data))
                await self._emit(session, ctx, ticket, EventType.TICKET_SLA_BREACHED, entry)
                await self._escalate(session, ctx, policy, ticket, name, now)
        schedule_check(ticket)
        ticket.updated_at = now

    async def _escalate(
        self,
        session: AsyncSession,
        ctx: _Context,
        policy: SlaPolicy,
        ticket: Ticket,
        clock: ClockName,
        now: datetime,
    ) -> None:
        """Per the policy: one step more urgent and/or the escalation team. The clocks keep
        their targets: escalation changes who works the ticket, not the promise measured."""
        changes: dict[str, Any] = {}
        if policy.escalate_raise_priority:
            higher = raised(Priority(ticket.priority))
            if higher.value != ticket.priority:
                changes["priority"] = {"from": ticket.priority, "to": higher.value}
                ticket.priority = higher.value
        if policy.escalation_team and policy.escalation_team != ticket.team:
            changes["team"] = {"from": ticket.team, "to": policy.escalation_team}
            ticket.team = policy.escalation_team
        ticket.escalation_level += 1
        entry = await self._entry(
            session,
            ticket,
            "escalated",
            now,
            data={"clock": clock.value, "level": ticket.escalation_level, **changes},
        )
        await self._emit(session, ctx, ticket, EventType.TICKET_ESCALATED, entry)

    # --- privacy ---------------------------------------------------------------------------
    async def export_customer(
        self, session: AsyncSession, tenant_id: UUID, customer_id: UUID
    ) -> list[ExportedTicket]:
        """A data-subject export: the customer's tickets with their whole timelines."""
        repo = TicketRepository(session)
        rows = await repo.all_for_customer(tenant_id, customer_id)
        if not rows:
            return []
        ctx = await self._context(session, tenant_id)
        timelines: dict[UUID, list[TimelineEntryRead]] = {t.id: [] for t, _ in rows}
        for entry in await repo.all_entries(tenant_id, list(timelines)):
            timelines[entry.ticket_id].append(TimelineEntryRead.model_validate(entry))
        return [
            ExportedTicket(**self._read(t, ref, ctx).model_dump(), timeline=timelines[t.id])
            for t, ref in rows
        ]

    async def forget_customer(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        customer_id: UUID,
        response_ids: Collection[UUID],
    ) -> list[UUID]:
        """Erasure: the customer's tickets stay (the numbers), their free text and their
        links to the customer's (now anonymous) responses go. Returns the tickets."""
        repo = TicketRepository(session)
        ids = await repo.for_customer(tenant_id, customer_id)
        await repo.redact(tenant_id, ids, response_ids)
        return ids

    # --- statistics --------------------------------------------------------------------------
    async def stats(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        start: PeriodBound,
        end: PeriodBound,
        by: StatsBy | None,
    ) -> TicketStats:
        lo, hi, period = await metric_service.period(session, tenant_id, start, end)
        settings = await TicketRepository(session).settings(tenant_id)
        assert settings is not None  # the period lookup found the tenant
        min_n = settings.min_cell_n if by is StatsBy.AGENT_REF else None
        rows = await TicketRepository(session).stats(
            tenant_id, lo, hi, group=by.value if by else None, pool_below=min_n
        )
        return TicketStats(
            period=period, by=by, min_n=min_n, groups=[_stats_group(r, min_n) for r in rows]
        )


SHOWN_WHEN_SUPPRESSED = frozenset({"key", "other", "suppressed", "opened"})


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _stats_group(row: dict[str, Any], min_n: int | None) -> TicketStatsGroup:
    pooled = bool(row["pooled"])
    if pooled and min_n is not None and row["opened"] < min_n:
        withheld = dict.fromkeys(set(TicketStatsGroup.model_fields) - SHOWN_WHEN_SUPPRESSED)
        return TicketStatsGroup.model_validate(
            {**withheld, "key": None, "other": True, "suppressed": True, "opened": row["opened"]}
        )
    return TicketStatsGroup(
        key=row["key"],
        other=pooled,
        opened=row["opened"],
        resolved=row["resolved"],
        first_response_median_seconds=_seconds(row["fr_median"]),
        first_response_p90_seconds=_seconds(row["fr_p90"]),
        resolution_median_seconds=_seconds(row["res_median"]),
        resolution_p90_seconds=_seconds(row["res_p90"]),
        first_response_within_sla_pct=_pct(row["fr_met"], row["fr_decided"]),
        resolution_within_sla_pct=_pct(row["res_met"], row["res_decided"]),
        breached=row["breached"],
        repeat_complaint_pct=_pct(row["repeats"], row["ever_resolved"]),
        contacted_pct=_pct(row["contacted"], row["from_responses"]),
        follow_up_solved_pct=_pct(row["solved"], row["followed_up"]),
    )


def _json(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


ticket = TicketService()
