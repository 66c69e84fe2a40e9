"""A customer's tickets in data-subject requests: the export, and erasure."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.tickets.repository import TicketRepository
from feedback_api.tickets.schemas import ExportedTicket, TimelineEntryRead
from feedback_api.tickets.service.context import TicketContext


class PrivacyService:
    async def export_customer(
        self, session: AsyncSession, tenant_id: UUID, customer_id: UUID
    ) -> list[ExportedTicket]:
        """A data-subject export: the customer's tickets with their whole timelines."""
        repo = TicketRepository(session)
        rows = await repo.all_for_customer(tenant_id, customer_id)
        if not rows:
            return []
        ctx = await TicketContext.load(session, tenant_id)
        timelines: dict[UUID, list[TimelineEntryRead]] = {t.id: [] for t, _ in rows}
        for entry in await repo.all_entries(tenant_id, list(timelines)):
            timelines[entry.ticket_id].append(TimelineEntryRead.model_validate(entry))
        return [
            ExportedTicket(**ctx.read(t, ref).model_dump(), timeline=timelines[t.id])
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


privacy = PrivacyService()
