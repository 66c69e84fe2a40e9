from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import and_, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import (
    Customer,
    ImprovementAction,
    IntegrityFlag,
    IntegrityFlagResponse,
    Response,
    ResponseReply,
    Tenant,
    Theme,
    Ticket,
    TicketResponse,
)

#: Tenant-wide staff names (ticket assignees) read per page, at most, from this many of the
#: latest tickets.
MAX_STAFF_NAMES = 1000
RECENT_TICKETS = 5000
#: Customer attributes whose values are names.
NAME_ATTRIBUTES = (
    "name",
    "full_name",
    "first_name",
    "last_name",
    "given_name",
    "family_name",
    "surname",
    "nickname",
    "display_name",
)
PUBLIC_STATUSES = ("in_progress", "done")


class ReviewRow(NamedTuple):
    id: UUID
    kind: str
    score: int
    scale_min: int
    scale_max: int
    comment: str | None
    touchpoint: str | None
    occurred_at: datetime
    customer_id: UUID | None
    agent_ref: str | None
    reply: str | None
    replied_at: datetime | None


class FeedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def published_tenant(self, slug: str) -> Tenant | None:
        """The tenant with this slug if it opted in to public feeds; one query either way,
        so that an unknown slug and a tenant without the opt-in cannot be told apart."""
        stmt = select(Tenant).where(Tenant.slug == slug, Tenant.public_feeds.is_(True))
        return (await self.session.scalars(stmt)).one_or_none()

    async def reviews(
        self,
        tenant_id: UUID,
        *,
        kind: str | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
        with_comment: bool,
    ) -> list[ReviewRow]:
        """Published responses newest first: consented, not deleted, not anonymised by an
        erasure, not linked to a confirmed integrity flag. Nothing else hides one (a
        negative review, an open or dismissed flag)."""
        confirmed = exists().where(
            IntegrityFlagResponse.tenant_id == Response.tenant_id,
            IntegrityFlagResponse.response_id == Response.id,
            IntegrityFlag.tenant_id == IntegrityFlagResponse.tenant_id,
            IntegrityFlag.id == IntegrityFlagResponse.flag_id,
            IntegrityFlag.status == "confirmed",
        )
        stmt = (
            select(
                Response.id,
                Response.kind,
                Response.score,
                Response.scale_min,
                Response.scale_max,
                Response.comment,
                Response.touchpoint,
                Response.occurred_at,
                Response.customer_id,
                Response.agent_ref,
                ResponseReply.body,
                ResponseReply.updated_at,
            )
            .outerjoin(
                ResponseReply,
                and_(
                    ResponseReply.tenant_id == Response.tenant_id,
                    ResponseReply.response_id == Response.id,
                ),
            )
            .where(
                Response.tenant_id == tenant_id,
                # the partial index ix_responses_tenant_id_published
                Response.publish_consent.is_(True),
                Response.deleted_at.is_(None),
                # Erasure blanks request_hash (responses.repository.anonymise_for_customer):
                # an erased customer's response never shows, whatever its consent says.
                Response.request_hash != "",
                ~confirmed,
            )
        )
        if kind is not None:
            stmt = stmt.where(Response.kind == kind)
        if with_comment:
            stmt = stmt.where(func.length(Response.comment) >= 20)
        if after is not None:
            stmt = stmt.where(tuple_(Response.occurred_at, Response.id) < tuple_(*after))
        stmt = stmt.order_by(Response.occurred_at.desc(), Response.id.desc()).limit(limit)
        return [ReviewRow._make(row) for row in await self.session.execute(stmt)]

    async def customer_names(
        self, tenant_id: UUID, customer_ids: Sequence[UUID]
    ) -> dict[UUID, list[str]]:
        """The names of these customers, by customer: the name field and name-like
        attributes."""
        if not customer_ids:
            return {}
        attrs = [Customer.attributes[a].astext for a in NAME_ATTRIBUTES]
        stmt = select(Customer.id, Customer.name, *attrs).where(
            Customer.tenant_id == tenant_id, Customer.id.in_(customer_ids)
        )
        return {row[0]: [v for v in row[1:] if v] for row in await self.session.execute(stmt)}

    async def assignees(
        self, tenant_id: UUID, response_ids: Sequence[UUID]
    ) -> dict[UUID, list[str]]:
        """The assignees of the tickets of these responses, by response."""
        found: dict[UUID, list[str]] = {}
        if not response_ids:
            return found
        stmt = (
            select(TicketResponse.response_id, Ticket.assignee)
            .join(
                TicketResponse,
                and_(
                    TicketResponse.tenant_id == Ticket.tenant_id,
                    TicketResponse.ticket_id == Ticket.id,
                ),
            )
            .where(
                Ticket.tenant_id == tenant_id,
                TicketResponse.response_id.in_(response_ids),
                Ticket.assignee.is_not(None),
            )
        )
        for response_id, assignee in await self.session.execute(stmt):
            if assignee:
                found.setdefault(response_id, []).append(assignee)
        return found

    async def staff_names(self, tenant_id: UUID) -> list[str]:
        """Who works the tenant's tickets: the assignees of its latest tickets (bounded)."""
        # A backward scan of (tenant_id, created_at, id), bounded, rather than every ticket
        # the tenant ever had on every page view.
        recent = (
            select(Ticket.assignee)
            .where(Ticket.tenant_id == tenant_id)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(RECENT_TICKETS)
            .subquery()
        )
        everyone = (
            select(recent.c.assignee)
            .where(recent.c.assignee.is_not(None))
            .distinct()
            .limit(MAX_STAFF_NAMES)
        )
        return [n for n in (await self.session.scalars(everyone)).all() if n]

    async def improvements(
        self, tenant_id: UUID, *, after: tuple[datetime, UUID] | None, limit: int
    ) -> list[ImprovementAction]:
        stmt = select(ImprovementAction).where(
            ImprovementAction.tenant_id == tenant_id,
            ImprovementAction.public.is_(True),
            ImprovementAction.status.in_(PUBLIC_STATUSES),
        )
        if after is not None:
            stmt = stmt.where(
                or_(
                    ImprovementAction.created_at < after[0],
                    and_(ImprovementAction.created_at == after[0], ImprovementAction.id < after[1]),
                )
            )
        stmt = stmt.order_by(
            ImprovementAction.created_at.desc(), ImprovementAction.id.desc()
        ).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def theme_names(self, tenant_id: UUID, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        stmt = select(Theme.key, Theme.names).where(
            Theme.tenant_id == tenant_id, Theme.key.in_(keys)
        )
        return {key: names or {} for key, names in await self.session.execute(stmt)}
