"""The SLA job (`tickets.check_sla`, every minute): warnings, breaches and escalations of
tickets whose warning or due time has passed.

Each warning and breach is marked under the ticket's row lock (the job claims its tickets
with `FOR UPDATE SKIP LOCKED`), which is what makes it happen once however many workers run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import EventType
from feedback_api.jobs.failures import WorkFailureRepository
from feedback_api.kit.poison import describe, isolate
from feedback_api.models import Ticket
from feedback_api.tickets.clocks import CLOCKS
from feedback_api.tickets.repository import TicketRepository
from feedback_api.tickets.rules import Priority, raised
from feedback_api.tickets.schemas import ClockName
from feedback_api.tickets.service.change import TicketChange
from feedback_api.tickets.service.context import TicketContext

SLA_BATCH = 200
# A ticket whose SLA check failed is set aside under this name and looked at again later.
SLA_SOURCE = "tickets.check_sla"
SLA_RETRY = timedelta(hours=1)


class EscalationService:
    async def check_sla(self, session: AsyncSession, now: datetime, limit: int = SLA_BATCH) -> int:
        """Warn about and escalate tickets whose warning or due time has passed. Returns how
        many tickets were looked at.

        A ticket whose check fails (kit.poison finds it) is set aside: recorded in
        work_failures (`tickets.check_sla`) and checked again an hour later, while the
        others of its batch, and every other tenant's, are checked now."""
        repo = TicketRepository(session)
        tickets = await repo.claim_sla_due(now, limit)
        claimed = [(t.tenant_id, t.id) for t in tickets]
        contexts: dict[UUID, TicketContext] = {}
        first: list[Ticket] | None = tickets

        async def work(part: Sequence[tuple[UUID, UUID]]) -> None:
            nonlocal first
            # The whole batch as claimed; a retry of a part reads it afresh, because the
            # savepoint that rolled back expired what it had changed.
            batch, first = first or await repo.by_keys(part), None
            for ticket in batch:
                if ticket.tenant_id not in contexts:
                    contexts[ticket.tenant_id] = await TicketContext.load(session, ticket.tenant_id)
                await _check(TicketChange(session, contexts[ticket.tenant_id], ticket, now))

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


async def _check(change: TicketChange) -> None:
    """Each clock in turn: its warning if due, then its breach and the escalation."""
    clocks, now = change.clocks, change.now
    for name in CLOCKS:
        if clocks.warning_due(name, now):
            clocks.mark_warned(name, now)
            data = _json({"clock": name.value, "due_at": clocks.due_at(name)})
            await change.record(EventType.TICKET_SLA_WARNING, "sla_warning", data=data)
        if clocks.breach_due(name, now):
            clocks.mark_breached(name, at=now)
            data = _json({"clock": name.value, "due_at": clocks.due_at(name)})
            await change.record(EventType.TICKET_SLA_BREACHED, "sla_breached", data=data)
            await _escalate(change, name)
    clocks.reschedule()
    change.ticket.updated_at = now


async def _escalate(change: TicketChange, clock: ClockName) -> None:
    """Per the policy: one step more urgent and/or the escalation team. The clocks keep
    their targets: escalation changes who works the ticket, not the promise measured."""
    ticket, policy = change.ticket, change.clocks.policy
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
    data = {"clock": clock.value, "level": ticket.escalation_level, **changes}
    await change.record(EventType.TICKET_ESCALATED, "escalated", data=data)


def _json(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


escalation = EscalationService()
