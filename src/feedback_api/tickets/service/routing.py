"""Tickets from responses: the rules run over freshly stored responses (the
`responses_stored` hook), and a match opens a ticket, attaches to the customer's active one
at that touchpoint, or reopens one resolved recently (a repeat complaint)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import EventType
from feedback_api.kit.time import utcnow
from feedback_api.models import TicketRule
from feedback_api.responses.hooks import StoredResponse
from feedback_api.tickets import rules as rule_logic
from feedback_api.tickets.repository import TicketRepository
from feedback_api.tickets.rules import Priority
from feedback_api.tickets.schemas import RuleConditions
from feedback_api.tickets.service.change import TicketChange
from feedback_api.tickets.service.context import TicketContext
from feedback_api.tickets.states import ACTIVE, Status

# Imports of history (a year of old answers) must not flood the team with tickets: only
# responses that happened recently open or touch one.
AUTO_TICKET_MAX_AGE = timedelta(days=7)

# What the rules read of a stored response: the responses domain's own record of it.
Complaint = StoredResponse


#: Where `matches_a_rule` leaves what it matched for `on_stored` (same transaction).
_MATCHED = "tickets.matched"


async def matches_a_rule(
    session: AsyncSession, tenant_id: UUID, stored: Sequence[StoredResponse]
) -> bool:
    """The subscriber's gate (kit.hooks): whether any of these responses matches a rule.
    Most answers match none (every promoter, with the default rules): they then cost the
    rules' one read, no savepoint."""
    candidates = [c for c in stored if _may_open(c, utcnow())]
    matched = await routing.match(session, tenant_id, candidates) if candidates else []
    session.info[_MATCHED] = (tenant_id, [c.response_id for c in stored], matched)
    return bool(matched)


async def on_stored(
    session: AsyncSession, tenant_id: UUID, stored: Sequence[StoredResponse]
) -> None:
    """The `responses_stored` subscriber (connected in feedback_api.assembly)."""
    gated = session.info.pop(_MATCHED, None)
    if gated is not None and gated[:2] == (tenant_id, [c.response_id for c in stored]):
        await routing.route(session, tenant_id, gated[2])
    else:
        await routing.on_responses(session, tenant_id, stored)


def may_open_a_ticket(stored: StoredResponse) -> bool:
    """Which stored responses `on_stored` needs: a customer's, recent enough, with a new
    score. (Anonymous feedback has nobody to follow up with; an edited comment under the
    same score changes nothing for the loop.)"""
    return stored.rescored and _may_open(stored, utcnow())


def _may_open(stored: StoredResponse, now: datetime) -> bool:
    return stored.customer_id is not None and stored.occurred_at >= now - AUTO_TICKET_MAX_AGE


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


def _facts(c: Complaint, customer_attributes: dict[str, Any]) -> rule_logic.Facts:
    return rule_logic.Facts(
        kind=c.kind,
        score=c.score,
        channel=c.channel,
        touchpoint=c.touchpoint,
        tags=frozenset(c.tags),
        comment=c.comment,
        agent_ref=c.agent_ref,
        location_ref=c.location_ref,
        customer_attributes=customer_attributes,
    )


class RoutingService:
    async def on_responses(
        self, session: AsyncSession, tenant_id: UUID, complaints: Sequence[Complaint]
    ) -> None:
        """Run the rules over freshly stored responses, in the caller's transaction: a
        ticket exists the moment the response is acknowledged."""
        candidates = [c for c in complaints if _may_open(c, utcnow())]
        if candidates:
            await self.route(session, tenant_id, await self.match(session, tenant_id, candidates))

    async def route(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        matched: list[tuple[Complaint, TicketRule]],
    ) -> None:
        """Open, attach to or reopen the tickets of these matches."""
        if not matched:
            return
        now = utcnow()
        ctx = await TicketContext.load(session, tenant_id)
        ctx.refs |= {
            c.customer_id: c.customer_ref for c, _ in matched if c.customer_id and c.customer_ref
        }
        # One lock order for every transaction: no deadlock between concurrent batches.
        matched.sort(key=lambda m: (str(m[0].customer_id), m[0].touchpoint or ""))
        run = _Routing(session, ctx, now)
        for complaint, rule in matched:
            await run.route(complaint, rule)

    async def match(
        self, session: AsyncSession, tenant_id: UUID, candidates: Sequence[Complaint]
    ) -> list[tuple[Complaint, TicketRule]]:
        """Each complaint with the first enabled rule it matches (those matching none left
        out)."""
        repo = TicketRepository(session)
        rows = {r.id: r for r in await repo.rules(tenant_id) if r.enabled}
        if not rows:
            return []
        rules = [_rule(r) for r in rows.values()]
        attributes: dict[UUID, dict[str, Any]] = {}
        if any(rule.conditions.customer_attributes for rule in rules):
            attributes = await repo.customer_attributes(
                tenant_id, {c.customer_id for c in candidates if c.customer_id}
            )
        matched: list[tuple[Complaint, TicketRule]] = []
        for c in candidates:
            assert c.customer_id is not None
            hit = rule_logic.first_match(rules, _facts(c, attributes.get(c.customer_id, {})))
            if hit is not None and hit.id is not None:
                matched.append((c, rows[hit.id]))
        return matched


@dataclass(frozen=True, slots=True)
class _Routing:
    """Complaints of one batch on their way to tickets, in the storing transaction."""

    session: AsyncSession
    ctx: TicketContext
    now: datetime

    async def route(self, c: Complaint, rule: TicketRule) -> None:
        assert c.customer_id is not None
        repo = TicketRepository(self.session)
        priority = Priority(rule.priority)
        # A few rounds at most: a concurrent request may open the ticket between our look and
        # our insert (then we attach to theirs), and in a rare second race resolve it again.
        since = self.now - timedelta(days=self.ctx.settings.reopen_days)
        for _ in range(3):
            found = await repo.lock_open_or_recent(
                self.ctx.tenant_id, c.customer_id, c.touchpoint, since
            )
            if found is not None:
                change = TicketChange(self.session, self.ctx, found, self.now)
                if Status(found.status) in ACTIVE:
                    await _attach(change, c, priority)
                else:
                    await _repeat_complaint(change, c)
                return
            if await self._open(c, rule, priority):
                return
        # A subscriber of responses_stored: the failure sets this complaint aside for a job
        # (kit/hooks.py); the response itself is kept.
        raise RuntimeError("a ticket kept changing under a new complaint")

    async def _open(self, c: Complaint, rule: TicketRule, priority: Priority) -> bool:
        """Open a ticket for this complaint; False if the customer has an active one."""
        ctx = self.ctx
        policy = ctx.policies[rule.sla_policy_id] if rule.sla_policy_id else ctx.default_policy
        change = await TicketChange.open(
            self.session,
            ctx,
            policy,
            priority,
            self.now,
            actor=None,
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
        if change is None:
            return False
        await TicketRepository(self.session).link(
            ctx.tenant_id, change.ticket.id, c.response_id, "trigger"
        )
        data = {"rule": rule.name, "response_id": str(c.response_id)}
        await change.record(EventType.TICKET_CREATED, "created", data=data)
        return True


async def _attach(change: TicketChange, c: Complaint, priority: Priority) -> None:
    """A new complaint on an active ticket: linked, and a more urgent one raises it."""
    ticket = change.ticket
    await TicketRepository(change.session).link(
        ticket.tenant_id, ticket.id, c.response_id, "attached"
    )
    data: dict[str, Any] = {"response_id": str(c.response_id), "score": c.score}
    if rule_logic.PRIORITY_ORDER.index(priority) > rule_logic.PRIORITY_ORDER.index(
        Priority(ticket.priority)
    ):
        data["priority"] = {"from": ticket.priority, "to": priority.value}
        change.set_priority(priority)
    ticket.updated_at = change.now
    await change.record(EventType.TICKET_UPDATED, "response_attached", body=c.comment, data=data)


async def _repeat_complaint(change: TicketChange, c: Complaint) -> None:
    """A complaint after a recent resolution: the ticket reopens."""
    ticket = change.ticket
    await TicketRepository(change.session).link(
        ticket.tenant_id, ticket.id, c.response_id, "repeat"
    )
    ticket.repeat_count += 1
    data = {"response_id": str(c.response_id), "score": c.score}
    await change.entry("repeat_complaint", body=c.comment, data=data)
    entry = await change.move(Status.REOPENED, reason="repeat_complaint")
    await change.emit(EventType.TICKET_REOPENED, entry)


routing = RoutingService()
