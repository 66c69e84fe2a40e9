from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import ImprovementAction


class ActionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, tenant_id: UUID, values: dict[str, Any]) -> ImprovementAction:
        action = ImprovementAction(tenant_id=tenant_id, **values)
        self.session.add(action)
        await self.session.flush()
        await self.session.refresh(action)
        return action

    async def get(
        self, tenant_id: UUID, action_id: UUID, *, lock: bool = False
    ) -> ImprovementAction | None:
        stmt = select(ImprovementAction).where(
            ImprovementAction.tenant_id == tenant_id, ImprovementAction.id == action_id
        )
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def page(
        self,
        tenant_id: UUID,
        *,
        status: str | None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> Sequence[ImprovementAction]:
        """Newest first."""
        stmt = select(ImprovementAction).where(ImprovementAction.tenant_id == tenant_id)
        if status is not None:
            stmt = stmt.where(ImprovementAction.status == status)
        if after is not None:
            stmt = stmt.where(
                tuple_(ImprovementAction.created_at, ImprovementAction.id) < tuple_(*after)
            )
        stmt = stmt.order_by(ImprovementAction.created_at.desc(), ImprovementAction.id.desc())
        return (await self.session.scalars(stmt.limit(limit))).all()

    async def efforts(self, tenant_id: UUID) -> Sequence[ImprovementAction]:
        """The actions that carry an effort estimate and are not abandoned, newest first."""
        stmt = (
            select(ImprovementAction)
            .where(
                ImprovementAction.tenant_id == tenant_id,
                ImprovementAction.effort_days.is_not(None),
                ImprovementAction.status != "abandoned",
            )
            .order_by(ImprovementAction.created_at.desc(), ImprovementAction.id.desc())
        )
        return (await self.session.scalars(stmt)).all()
