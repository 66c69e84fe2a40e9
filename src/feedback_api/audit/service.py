from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.repository import AuditRepository
from feedback_api.models import AuditLog


class AuditService:
    async def record(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        action: str,
        target_type: str,
        target_id: str,
        actor_key_id: UUID | None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append an audit entry in the caller's transaction. Pass ids and counts only:
        the audit log outlives erasure, so it must never hold personal data."""
        AuditRepository(session).add(
            AuditLog(
                tenant_id=tenant_id,
                action=action,
                target_type=target_type,
                target_id=target_id,
                actor_key_id=actor_key_id,
                data=data or {},
            )
        )
        await session.flush()

    async def forget_texts(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        target_type: str,
        target_ids: Collection[str],
        fields: Sequence[str],
    ) -> int:
        """Erasure: blank free text (a reviewer's reason) in the entries about these
        targets. The entries themselves stay: who decided what, and when."""
        return await AuditRepository(session).blank(
            tenant_id, target_type, target_ids, dict.fromkeys(fields)
        )


audit = AuditService()
