"""One change to one ticket, and the steps every path that changes tickets shares: timeline
entries, events, status moves, clocks, priorities.

A change happens under the ticket's row lock (`TicketChange.lock`), or right after the
insert of a new ticket (`TicketChange.open`), so API calls, the rules and the SLA job never
interleave on one ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import IllegalTransition, NotFound
from feedback_api.kit.ids import new_id
from feedback_api.models import SlaPolicy, Ticket, TicketEntry
from feedback_api.tickets.clocks import SlaClocks
from feedback_api.tickets.repository import TicketRepository
from feedback_api.tickets.rules import Priority
from feedback_api.tickets.schemas import TicketEventData, TicketRead, TimelineEntryRead
from feedback_api.tickets.service.context import TicketContext
from feedback_api.tickets.states import PAUSED, Status, allowed_from, can_move


@dataclass(slots=True)
class TicketChange:
    """The session, the tenant's context, the ticket, the instant every entry, clock and
    timestamp of the change uses, and who acts: an API key, or None for the system (the
    rules, the SLA job)."""

    session: AsyncSession
    ctx: TicketContext
    ticket: Ticket
    now: datetime
    actor: UUID | None = None

    @classmethod
    async def lock(
        cls,
        session: AsyncSession,
        ctx: TicketContext,
        ticket_id: UUID,
        now: datetime,
        *,
        actor: UUID | None,
    ) -> TicketChange:
        ticket = await TicketRepository(session).lock(ctx.tenant_id, ticket_id)
        if ticket is None:
            raise NotFound("no such ticket")
        return cls(session, ctx, ticket, now, actor)

    @classmethod
    async def open(
        cls,
        session: AsyncSession,
        ctx: TicketContext,
        policy: SlaPolicy,
        priority: Priority,
        now: datetime,
        *,
        actor: UUID | None,
        **fields: Any,
    ) -> TicketChange | None:
        """Insert a new ticket with both clocks running; None if its customer has an
        active one at its touchpoint (the partial unique index says so, race-free)."""
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
        ctx.clocks(ticket).start(now)
        values = {
            c.key: getattr(ticket, c.key)
            for c in Ticket.__table__.columns
            if getattr(ticket, c.key, None) is not None
        }
        inserted = await TicketRepository(session).insert_ticket(values)
        return None if inserted is None else cls(session, ctx, inserted, now, actor)

    @property
    def clocks(self) -> SlaClocks:
        return self.ctx.clocks(self.ticket)

    # --- the timeline and events ---------------------------------------------------------
    async def entry(
        self,
        type_: str,
        *,
        author: str | None = None,
        body: str | None = None,
        data: dict[str, Any] | None = None,
        system: bool = False,
    ) -> TicketEntry:
        """A timeline entry by the change's actor (`system`: by nobody, e.g. a breach the
        system notices while a person acts)."""
        entry = TicketEntry(
            tenant_id=self.ticket.tenant_id,
            id=new_id(),
            ticket_id=self.ticket.id,
            type=type_,
            actor_key_id=None if system else self.actor,
            author=author,
            body=body,
            data=data or {},
            created_at=self.now,
        )
        await TicketRepository(self.session).add(entry)
        return entry

    async def emit(self, type_: EventType, entry: TicketEntry | None = None) -> None:
        """The event, carrying the ticket as it is now and the entry that caused it."""
        await self.session.flush()
        read = await self.view()
        data = TicketEventData(
            **read.model_dump(),
            entry=TimelineEntryRead.model_validate(entry) if entry is not None else None,
        )
        await event_service.emit(self.session, self.ctx.tenant_id, type_, [data])

    async def record(
        self, event: EventType, type_: str, *, system: bool = False, **entry: Any
    ) -> TicketEntry:
        """A timeline entry and the event it causes."""
        made = await self.entry(type_, system=system, **entry)
        await self.emit(event, made)
        return made

    async def view(self) -> TicketRead:
        """The ticket as the API shows it (its customer's ref is looked up once)."""
        ctx, ticket = self.ctx, self.ticket
        if ticket.customer_id is not None and ticket.customer_id not in ctx.refs:
            ctx.refs |= await TicketRepository(self.session).customer_refs(
                ctx.tenant_id, [ticket.customer_id]
            )
        ref = ctx.refs.get(ticket.customer_id) if ticket.customer_id else None
        return ctx.read(ticket, ref)

    # --- status, clocks, priority --------------------------------------------------------
    async def move(self, target: Status, *, reason: str | None = None) -> TicketEntry:
        """Move the ticket to `target` (a 409 if the status machine forbids it), with what
        the move does to the clocks and timestamps; returns the timeline entry."""
        ticket, now = self.ticket, self.now
        current = Status(ticket.status)
        if not can_move(current, target):
            raise IllegalTransition(
                f"a ticket cannot go from {current.value} to {target.value}; from "
                f"{current.value} it may go to: {', '.join(allowed_from(current)) or 'nowhere'}"
            )
        if current in PAUSED:
            self.clocks.resume(now)
        if target in PAUSED:
            self.clocks.pause(now)
        elif target is Status.ACKNOWLEDGED:
            ticket.acknowledged_at = ticket.acknowledged_at or now
        elif target is Status.RESOLVED:
            # The resolution summary goes to the customer: it answers them if nobody had.
            self.clocks.stop(now)
            ticket.resolved_at = now
        elif target is Status.CLOSED:
            ticket.closed_at = now
        elif target is Status.REOPENED:
            self.clocks.restart(now)
            ticket.reopened_at = now
            ticket.reopened_count += 1
            ticket.resolved_at = None
            ticket.closed_at = None
        ticket.status = target.value
        ticket.updated_at = now
        data = {"from": current.value, "to": target.value}
        if reason:
            data["reason"] = reason
        entry = await self.entry("status_changed", data=data)
        if target is Status.RESOLVED:
            await self.mark_late_breaches()
        return entry

    async def mark_late_breaches(self) -> None:
        """A clock stopped over budget before the SLA job noticed still counts as breached."""
        clocks = self.clocks
        for name, stopped_at in clocks.late():
            clocks.mark_breached(name, at=stopped_at)
            await self.record(
                EventType.TICKET_SLA_BREACHED,
                "sla_breached",
                data={"clock": name.value},
                system=True,
            )
        clocks.reschedule()

    def set_priority(self, priority: Priority) -> None:
        """Clocks still counting take the new priority's targets."""
        self.ticket.priority = priority.value
        self.clocks.reprice(priority.value)
