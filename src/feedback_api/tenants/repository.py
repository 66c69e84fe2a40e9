from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import exists, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.ids import new_id
from feedback_api.models import Tenant


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, *, name: str, slug: str, timezone: str, locale: str) -> Tenant | None:
        """Insert, or return None when the slug is taken."""
        stmt = (
            insert(Tenant)
            .values(id=new_id(), name=name, slug=slug, timezone=timezone, locale=locale)
            .on_conflict_do_nothing(index_elements=["slug"])
            .returning(Tenant)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def get(self, tenant_id: UUID) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def any_exists(self) -> bool:
        return bool(await self.session.scalar(select(exists().select_from(Tenant))))

    async def list_page(self, *, limit: int, after: tuple[datetime, UUID] | None) -> list[Tenant]:
        stmt = select(Tenant)
        if after is not None:
            stmt = stmt.where(tuple_(Tenant.created_at, Tenant.id) < tuple_(*after))
        stmt = stmt.order_by(Tenant.created_at.desc(), Tenant.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def update(self, tenant_id: UUID, values: dict[str, Any]) -> Tenant | None:
        stmt = (
            update(Tenant)
            .where(Tenant.id == tenant_id)
            .values(**values)
            .returning(Tenant)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()
