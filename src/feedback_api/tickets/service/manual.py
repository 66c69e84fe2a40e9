"""Tickets worked by people through the API: opened by hand, updated (status, priority,
assignment, resolution), notes and replies, and the customer's answer to the follow-up."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.customers.service import customer as customer_service
from feedback_api.events.catalogue import EventType
from feedback_api.exceptions import (
    IllegalTransition,
    InvalidRequest,
    TicketExists,
    TicketNotResolved,
)
from feedback_api.kit.time import utcnow
from feedback_api.models import Ticket, TicketEntry
from feedback_api.tickets.repository import TicketRepository
from feedback_api.tickets.rules import Priority
from feedback_api.tickets.schemas import ClockName, TicketCreate, TicketRead, TimelineEntryRead
from feedback_api.tickets.service.change import TicketChange
from feedback_api.tickets.service.context import TicketContext
from feedback_api.tickets.states import Status

STATUS_EVENTS = {
    Status.RESOLVED: EventType.TICKET_RESOLVED,
    Status.CLOSED: EventType.TICKET_CLOSED,
    Status.REOPENED: EventType.TICKET_REOPENED,
}  # any other move is `ticket.updated`


class ManualService:
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
        ctx = await TicketContext.load(session, tenant_id)
        customer_id = None
        if body.customer is not None:
            ids = await customer_service.ensure(session, tenant_id, [body.customer])
            customer_id = ids[body.customer]
        policy = ctx.policy_by_key(body.sla_policy, ["body", "sla_policy"])
        change = await TicketChange.open(
            session,
            ctx,
            policy,
            body.priority,
            now,
            actor=actor,
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
        if change is None:
            assert customer_id is not None
            repo = TicketRepository(session)
            existing = await repo.lock_active(tenant_id, customer_id, body.touchpoint)
            raise TicketExists(
                "this customer already has an active ticket at this touchpoint"
                + (f": {existing.id}" if existing else "")
            )
        await change.record(EventType.TICKET_CREATED, "created", body=body.description)
        return await change.view()

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
        ctx = await TicketContext.load(session, tenant_id)
        change = await TicketChange.lock(session, ctx, ticket_id, now, actor=actor)
        ticket = change.ticket
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
            events.append((EventType.TICKET_ASSIGNED, await change.entry("assigned", data=data)))
        if "priority" in values and values["priority"] != ticket.priority:
            data = {"from": ticket.priority, "to": values["priority"]}
            change.set_priority(Priority(values["priority"]))
            entry = await change.entry("priority_changed", data=data)
            events.append((EventType.TICKET_UPDATED, entry))
        if "status" in values and values["status"] != ticket.status:
            target = Status(values["status"])
            if target is Status.RESOLVED:
                _require_resolution(ticket)
            entry = await change.move(target)
            events.append((STATUS_EVENTS.get(target, EventType.TICKET_UPDATED), entry))
        ticket.updated_at = change.now
        if not events and values:
            events.append((EventType.TICKET_UPDATED, None))
        for type_, cause in events:
            await change.emit(type_, cause)
        await session.flush()
        return await change.view()

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
        ctx = await TicketContext.load(session, tenant_id)
        change = await TicketChange.lock(session, ctx, ticket_id, now, actor=actor)
        ticket = change.ticket
        ticket.updated_at = change.now
        if not reply:
            return TimelineEntryRead.model_validate(
                await change.entry("note", author=author, body=body)
            )
        if ticket.status == Status.CLOSED.value:
            raise IllegalTransition("the ticket is closed; reopen it to reply")
        first = ticket.first_replied_at is None
        entry = await change.entry("reply", author=author, body=body, data={"first": first})
        if first:
            ticket.first_replied_at = change.now
            change.clocks.stop(change.now, ClockName.FIRST_RESPONSE)
            await change.mark_late_breaches()
        await change.emit(EventType.TICKET_REPLIED, entry)
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
        ctx = await TicketContext.load(session, tenant_id)
        repo = TicketRepository(session)
        change = await TicketChange.lock(session, ctx, ticket_id, now, actor=actor)
        ticket = change.ticket
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
        ticket.follow_up_at = change.now
        ticket.updated_at = change.now
        data: dict[str, Any] = {"solved": solved}
        if response_id is not None:
            data["response_id"] = str(response_id)
        entry = await change.entry("follow_up", body=comment, data=data)
        if solved:
            await change.emit(EventType.TICKET_UPDATED, entry)
        else:
            moved = await change.move(Status.REOPENED, reason="not_solved")
            await change.emit(EventType.TICKET_REOPENED, moved)
        return await change.view()


def _require_resolution(ticket: Ticket) -> None:
    missing = [name for name in ("root_cause", "resolution_summary") if not getattr(ticket, name)]
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


manual = ManualService()
