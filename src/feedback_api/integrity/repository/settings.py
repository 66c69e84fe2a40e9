"""Each tenant's integrity settings (one row, created with defaults on first use)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import IntegritySettings


class SettingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: UUID) -> IntegritySettings | None:
        stmt = select(IntegritySettings).where(IntegritySettings.tenant_id == tenant_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def create(self, tenant_id: UUID) -> IntegritySettings:
        """The defaults; a concurrent first use may have created them already."""
        await self.session.execute(
            insert(IntegritySettings).values(tenant_id=tenant_id).on_conflict_do_nothing()
        )
        stmt = select(IntegritySettings).where(IntegritySettings.tenant_id == tenant_id)
        return (await self.session.scalars(stmt)).one()

    async def salt(self, tenant_id: UUID) -> bytes | None:
        """Just the salt, on the public ingest path (None: no settings yet)."""
        stmt = select(IntegritySettings.salt).where(IntegritySettings.tenant_id == tenant_id)
        return (await self.session.scalars(stmt)).one_or_none()
