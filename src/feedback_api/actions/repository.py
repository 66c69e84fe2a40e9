from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, and_, exists, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import Customer, ImprovementAction, Response, ResponseTheme


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

    async def customers_who_said(
        self,
        action: ImprovementAction,
        lo: datetime,
        hi: datetime,
        *,
        after: UUID | None,
        limit: int,
    ) -> Sequence[Row[UUID, str, int, datetime]]:
        """The customers with a valid response in the action's scope in [lo, hi) that
        mentions its theme (without a theme: that has a comment), by customer id: id, ref,
        how many such responses, the latest one's time. Erased customers are gone from
        `customers`, so they are not among them."""
        r, c = Response, Customer
        where = [
            r.tenant_id == action.tenant_id,
            r.customer_id.is_not(None),
            r.deleted_at.is_(None),
            r.excluded.is_(False),
            r.occurred_at >= lo,
            r.occurred_at < hi,
        ]
        for name in ("touchpoint", "channel", "location_ref"):
            value = getattr(action, name)
            if value is not None:
                where.append(getattr(r, name) == value)
        for name, value in sorted((action.attributes or {}).items()):
            where.append(c.attributes[name].astext == value)
        if action.theme is not None:
            rt = ResponseTheme
            where.append(
                exists().where(
                    rt.tenant_id == r.tenant_id,
                    rt.response_id == r.id,
                    rt.theme_key == action.theme,
                )
            )
        else:
            where.append(func.length(func.btrim(r.comment)) > 0)
        if after is not None:
            where.append(c.id > after)
        stmt = (
            select(c.id, c.external_ref, func.count(), func.max(r.occurred_at).label("last"))
            .join(c, and_(c.tenant_id == r.tenant_id, c.id == r.customer_id))
            .where(*where)
            .group_by(c.id, c.external_ref)
            .order_by(c.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).all()
