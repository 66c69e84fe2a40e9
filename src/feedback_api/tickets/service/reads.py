"""Reading tickets and their timelines, as the API lists them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import NotFound
from feedback_api.kit.pagination import paginate
from feedback_api.tickets.repository import TicketRepository
from feedback_api.tickets.schemas import TicketFilters, TicketRead, TimelineEntryRead
from feedback_api.tickets.service.context import TicketContext


class ReadService:
    async def get(self, session: AsyncSession, tenant_id: UUID, ticket_id: UUID) -> TicketRead:
        row = await TicketRepository(session).get(tenant_id, ticket_id)
        if row is None:
            raise NotFound("no such ticket")
        ticket, ref = row
        return (await TicketContext.load(session, tenant_id)).read(ticket, ref)

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        filters: TicketFilters,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[TicketRead], str | None]:
        ctx = await TicketContext.load(session, tenant_id)
        rows = await TicketRepository(session).page(
            tenant_id, filters, limit=limit + 1, after=after
        )
        reads = [ctx.read(t, ref) for t, ref in rows]
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


reads = ReadService()
