from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import AuditLog


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, entry: AuditLog) -> None:
        self.session.add(entry)

    async def blank(
        self,
        tenant_id: UUID,
        target_type: str,
        target_ids: Collection[str],
        blank: dict[str, Any],
    ) -> int:
        if not target_ids:
            return 0
        result = await self.session.execute(
            update(AuditLog)
            .where(
                AuditLog.tenant_id == tenant_id,
                AuditLog.target_type == target_type,
                AuditLog.target_id.in_(target_ids),
            )
            .values(data=AuditLog.data.op("||")(blank))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
