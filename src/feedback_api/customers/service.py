from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.customers.repository import CustomerRepository
from feedback_api.exceptions import NotFound
from feedback_api.kit.pagination import paginate
from feedback_api.models import Customer


class CustomerService:
    async def upsert(
        self, session: AsyncSession, tenant_id: UUID, external_ref: str, values: dict[str, Any]
    ) -> tuple[Customer, bool]:
        return await CustomerRepository(session).upsert(tenant_id, external_ref, values)

    async def get(self, session: AsyncSession, tenant_id: UUID, external_ref: str) -> Customer:
        customer = await CustomerRepository(session).get_by_ref(tenant_id, external_ref)
        if customer is None:
            raise NotFound(f"no customer with external_ref {external_ref!r}")
        return customer

    async def ensure(
        self, session: AsyncSession, tenant_id: UUID, refs: Collection[str]
    ) -> dict[str, UUID]:
        """Ids for these refs, creating bare customers for the ones not seen before.

        One statement looks up and inserts; a ref another request created meanwhile is
        read again."""
        if not refs:
            return {}
        repo = CustomerRepository(session)
        ids = await repo.ensure_ids(tenant_id, refs)
        raced = [r for r in refs if r not in ids]
        if raced:  # committed by a concurrent request after our statement began
            ids |= await repo.ids_by_ref(tenant_id, raced)
        return ids

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        email: str | None,
        attributes: dict[str, str],
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[Customer], str | None]:
        rows = await CustomerRepository(session).list_page(
            tenant_id, email=email, attributes=attributes, limit=limit + 1, after=after
        )
        return paginate(rows, limit, lambda c: (c.created_at, c.id))

    async def by_refs(
        self, session: AsyncSession, tenant_id: UUID, refs: Collection[str]
    ) -> dict[str, Customer]:
        """The customers with these refs (unknown refs left out), in one query."""
        if not refs:
            return {}
        return await CustomerRepository(session).by_refs(tenant_id, refs)

    async def refs_by_id(
        self, session: AsyncSession, tenant_id: UUID, customer_ids: Collection[UUID]
    ) -> dict[UUID, str]:
        """The external refs of these customers (gone ones left out), in one query."""
        if not customer_ids:
            return {}
        return await CustomerRepository(session).refs_by_id(tenant_id, customer_ids)

    async def find(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        customer_id: UUID | None = None,
        email: str | None = None,
        phone: str | None = None,
    ) -> Customer | None:
        """A customer by id, else by e-mail address, else by phone number (the oldest)."""
        repo = CustomerRepository(session)
        if customer_id is not None:
            return await repo.by_id(tenant_id, customer_id)
        return await repo.by_contact(tenant_id, email=email, phone=phone)

    async def oldest_first(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        since: datetime | None,
        until: datetime | None,
        email: str | None,
        phone: str | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Customer]:
        """Customers by creation, oldest first, after a keyset position."""
        return await CustomerRepository(session).oldest_first(
            tenant_id, since=since, until=until, email=email, phone=phone, after=after, limit=limit
        )

    async def delete(self, session: AsyncSession, tenant_id: UUID, customer_id: UUID) -> None:
        await CustomerRepository(session).delete(tenant_id, customer_id)


customer = CustomerService()
