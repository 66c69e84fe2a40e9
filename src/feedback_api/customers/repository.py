from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, literal_column, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from feedback_api.kit.ids import new_id
from feedback_api.kit.rawsql import driver_connection
from feedback_api.models import Customer


class CustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self, tenant_id: UUID, external_ref: str, values: dict[str, Any]
    ) -> tuple[Customer, bool]:
        """Insert or replace; returns the row and whether it was created."""
        inserting = insert(Customer).values(
            tenant_id=tenant_id, id=new_id(), external_ref=external_ref, **values
        )
        upsert = inserting.on_conflict_do_update(
            index_elements=[Customer.tenant_id, Customer.external_ref],
            set_={
                **{k: inserting.excluded[k] for k in values},
                "updated_at": literal_column("now()"),
            },
        )
        # xmax = 0 only on a freshly inserted row version: tells created from updated.
        stmt: ReturningInsert[Customer, bool] = upsert.returning(
            Customer, literal_column("xmax = 0").label("created")
        )
        row = (
            await self.session.execute(stmt, execution_options={"populate_existing": True})
        ).one()
        return row[0], bool(row[1])

    async def get_by_ref(self, tenant_id: UUID, external_ref: str) -> Customer | None:
        stmt = select(Customer).where(
            Customer.tenant_id == tenant_id, Customer.external_ref == external_ref
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def refs_by_id(self, tenant_id: UUID, customer_ids: Collection[UUID]) -> dict[UUID, str]:
        stmt = select(Customer.id, Customer.external_ref).where(
            Customer.tenant_id == tenant_id, Customer.id.in_(list(customer_ids))
        )
        return {row[0]: row[1] for row in await self.session.execute(stmt)}

    async def by_refs(self, tenant_id: UUID, refs: Collection[str]) -> dict[str, Customer]:
        stmt = select(Customer).where(
            Customer.tenant_id == tenant_id, Customer.external_ref.in_(list(refs))
        )
        return {c.external_ref: c for c in await self.session.scalars(stmt)}

    async def ids_by_ref(self, tenant_id: UUID, refs: Collection[str]) -> dict[str, UUID]:
        conn = await driver_connection(self.session)  # ingest hot path, see kit.rawsql
        rows = await conn.fetch(
            "SELECT external_ref, id FROM customers"
            " WHERE tenant_id = $1 AND external_ref = ANY($2::text[])",
            tenant_id,
            list(refs),
        )
        return {row[0]: row[1] for row in rows}

    async def ensure_ids(self, tenant_id: UUID, refs: Collection[str]) -> dict[str, UUID]:
        """Ids for these refs, creating bare customers for the new ones, in one round trip
        (the ingest path: a new customer ref with nearly every answer). New refs go in
        sorted, so two requests creating overlapping refs wait on each other in one order.
        A ref a concurrent transaction committed meanwhile is missing from the answer (its
        row is outside this statement's snapshot): ask again for those."""
        refs = sorted(set(refs))
        conn = await driver_connection(self.session)
        rows = await conn.fetch(
            "WITH inserted AS ("
            " INSERT INTO customers (tenant_id, id, external_ref)"
            " SELECT $1, u.id, u.ref FROM unnest($2::uuid[], $3::text[]) AS u(id, ref)"
            " ORDER BY u.ref"
            " ON CONFLICT (tenant_id, external_ref) DO NOTHING"
            " RETURNING external_ref, id)"
            " SELECT external_ref, id FROM inserted"
            " UNION ALL"
            " SELECT external_ref, id FROM customers"
            " WHERE tenant_id = $1 AND external_ref = ANY($3::text[])"
            # A row this statement's snapshot still shows may have been deleted meanwhile
            # (an erasure) and its ref inserted anew just now: the new row wins.
            " AND external_ref NOT IN (SELECT external_ref FROM inserted)",
            tenant_id,
            [new_id() for _ in refs],
            refs,
        )
        return {row[0]: row[1] for row in rows}

    async def list_page(
        self,
        tenant_id: UUID,
        *,
        email: str | None,
        attributes: dict[str, str],
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[Customer]:
        stmt = select(Customer).where(Customer.tenant_id == tenant_id)
        if email is not None:
            stmt = stmt.where(Customer.email == email)
        if attributes:
            # jsonb containment uses the GIN (jsonb_path_ops) index.
            stmt = stmt.where(Customer.attributes.contains(attributes))
        if after is not None:
            stmt = stmt.where(tuple_(Customer.created_at, Customer.id) < tuple_(*after))
        stmt = stmt.order_by(Customer.created_at.desc(), Customer.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def by_contact(
        self, tenant_id: UUID, *, email: str | None, phone: str | None
    ) -> Customer | None:
        """The oldest customer with this e-mail address (or else phone number)."""
        column, value = (Customer.email, email) if email is not None else (Customer.phone, phone)
        if value is None:
            return None
        stmt = (
            select(Customer)
            .where(Customer.tenant_id == tenant_id, column == value)
            .order_by(Customer.created_at, Customer.id)
            .limit(1)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def by_id(self, tenant_id: UUID, customer_id: UUID) -> Customer | None:
        stmt = select(Customer).where(Customer.tenant_id == tenant_id, Customer.id == customer_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def oldest_first(
        self,
        tenant_id: UUID,
        *,
        since: datetime | None,
        until: datetime | None,
        email: str | None,
        phone: str | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Customer]:
        stmt = select(Customer).where(Customer.tenant_id == tenant_id)
        if since is not None:
            stmt = stmt.where(Customer.created_at >= since)
        if until is not None:
            stmt = stmt.where(Customer.created_at <= until)
        if email is not None:
            stmt = stmt.where(Customer.email == email)
        if phone is not None:
            stmt = stmt.where(Customer.phone == phone)
        if after is not None:
            stmt = stmt.where(tuple_(Customer.created_at, Customer.id) > tuple_(*after))
        stmt = stmt.order_by(Customer.created_at, Customer.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def delete(self, tenant_id: UUID, customer_id: UUID) -> None:
        await self.session.execute(
            delete(Customer).where(Customer.tenant_id == tenant_id, Customer.id == customer_id)
        )
