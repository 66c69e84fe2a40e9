"""Autopilot memberships: the one table of its own the Delighted layer keeps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, and_, delete, func, literal_column, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from feedback_api.models import AutopilotMembership, Customer, Invitation

MembershipRow = Row[AutopilotMembership, Customer, Invitation | None]


class AutopilotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def join(
        self,
        tenant_id: UUID,
        platform: str,
        customer_id: UUID,
        properties: dict[str, Any],
        next_at: datetime,
    ) -> tuple[AutopilotMembership, bool]:
        """Add the member, or give an existing one the new properties (their schedule stays).
        Returns the membership, locked, and whether it is new."""
        inserting = insert(AutopilotMembership).values(
            tenant_id=tenant_id,
            platform=platform,
            customer_id=customer_id,
            properties=properties,
            next_at=next_at,
        )
        # One statement that inserts or locks and updates: a member removed between a
        # conflict and a re-read cannot leave us with neither (Postgres retries it inside).
        stmt: ReturningInsert[AutopilotMembership, bool] = inserting.on_conflict_do_update(
            index_elements=[
                AutopilotMembership.tenant_id,
                AutopilotMembership.platform,
                AutopilotMembership.customer_id,
            ],
            set_={"properties": inserting.excluded.properties, "updated_at": func.now()},
        ).returning(AutopilotMembership, literal_column("xmax = 0"))
        row = (
            await self.session.execute(stmt, execution_options={"populate_existing": True})
        ).one()
        return row[0], bool(row[1])

    async def get(
        self, tenant_id: UUID, platform: str, customer_id: UUID, *, for_update: bool = False
    ) -> AutopilotMembership | None:
        stmt = select(AutopilotMembership).where(
            AutopilotMembership.tenant_id == tenant_id,
            AutopilotMembership.platform == platform,
            AutopilotMembership.customer_id == customer_id,
        )
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).first()

    async def leave(self, membership: AutopilotMembership) -> None:
        await self.session.execute(
            delete(AutopilotMembership).where(
                AutopilotMembership.tenant_id == membership.tenant_id,
                AutopilotMembership.platform == membership.platform,
                AutopilotMembership.customer_id == membership.customer_id,
            )
        )

    async def page(
        self,
        tenant_id: UUID,
        platform: str,
        *,
        customer_id: UUID | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> Sequence[MembershipRow]:
        """Members in the order they joined, with their customer and their survey still
        scheduled (if any)."""
        m = AutopilotMembership
        stmt = (
            select(m, Customer, Invitation)
            .join(Customer, and_(Customer.tenant_id == m.tenant_id, Customer.id == m.customer_id))
            .outerjoin(
                Invitation,
                and_(
                    Invitation.tenant_id == m.tenant_id,
                    Invitation.id == m.invitation_id,
                    Invitation.status == "scheduled",
                ),
            )
            .where(m.tenant_id == tenant_id, m.platform == platform)
            .order_by(m.created_at, m.customer_id)
            .limit(limit)
        )
        if customer_id is not None:
            stmt = stmt.where(m.customer_id == customer_id)
        if after is not None:
            stmt = stmt.where(tuple_(m.created_at, m.customer_id) > tuple_(*after))
        return (await self.session.execute(stmt)).all()

    async def claim_due(self, now: datetime, limit: int) -> Sequence[AutopilotMembership]:
        """Members of any tenant whose next survey is due, locked; rows another worker holds
        are skipped."""
        stmt = (
            select(AutopilotMembership)
            .where(AutopilotMembership.next_at <= now)
            .order_by(AutopilotMembership.next_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)  # the locked row's values, not a cache
        )
        return (await self.session.scalars(stmt)).all()

    async def advance(
        self,
        tenant_id: UUID,
        platform: str,
        customer_id: UUID,
        *,
        next_at: datetime,
        invitation_id: UUID | None = None,
    ) -> None:
        """When the member's next round is due (and, with a new round, its invitation)."""
        values: dict[str, Any] = {"next_at": next_at, "updated_at": func.now()}
        if invitation_id is not None:
            values["invitation_id"] = invitation_id
        await self.session.execute(
            update(AutopilotMembership)
            .where(
                AutopilotMembership.tenant_id == tenant_id,
                AutopilotMembership.platform == platform,
                AutopilotMembership.customer_id == customer_id,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
