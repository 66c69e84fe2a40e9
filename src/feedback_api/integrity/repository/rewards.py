"""Reward grants: which responses earned a `reward.eligible`, one per customer per interval."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import Customer, Response, RewardGrant


class Grant(NamedTuple):
    """A reward just granted; the score is deliberately not among its fields."""

    response_id: UUID
    customer: str | None  # the customer's external ref
    invitation_id: UUID | None
    survey: str | None
    touchpoint: str | None
    channel: str
    occurred_at: datetime


# Candidates: the batch's valid responses of identified customers since rewards were turned
# on whose customer has no grant within the interval; the first of each customer's (or all,
# with no limit) are granted, and what was granted is returned.
_GRANT = text(
    """
    WITH cand AS (
        SELECT r.id, r.customer_id, c.external_ref, r.invitation_id, r.survey,
               r.touchpoint, r.channel, r.occurred_at,
               row_number() OVER (PARTITION BY r.customer_id
                                  ORDER BY r.occurred_at, r.id) AS k
        FROM responses r
        JOIN customers c ON c.tenant_id = r.tenant_id AND c.id = r.customer_id
        WHERE r.tenant_id = :tenant_id AND r.id = ANY(:ids) AND NOT r.excluded
          AND r.deleted_at IS NULL AND r.received_at >= :since
          AND NOT EXISTS (
              SELECT 1 FROM reward_grants g
              WHERE g.tenant_id = r.tenant_id AND g.customer_id = r.customer_id
                AND CAST(:limited AS boolean)
                AND g.granted_at > now() - CAST(:interval AS interval))
    ), granted AS (
        INSERT INTO reward_grants (tenant_id, response_id, customer_id)
        SELECT :tenant_id, id, customer_id FROM cand
        WHERE k = 1 OR NOT CAST(:limited AS boolean)
        ON CONFLICT DO NOTHING
        RETURNING response_id
    )
    SELECT cand.id, cand.external_ref, cand.invitation_id, cand.survey,
           cand.touchpoint, cand.channel, cand.occurred_at
    FROM cand JOIN granted ON granted.response_id = cand.id
    ORDER BY cand.occurred_at, cand.id
    """
)


class RewardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grant(
        self,
        tenant_id: UUID,
        ids: Collection[UUID],
        since: datetime | None,
        interval: timedelta,
    ) -> list[Grant]:
        """Record and return the rewards these responses earn: not excluded, of an
        identified customer, received since rewards were turned on, and the customer's
        first reward within `interval` (0: no limit). Customers are locked first so that
        two workers cannot both grant one customer's reward."""
        customers = select(Response.customer_id).where(
            Response.tenant_id == tenant_id,
            Response.id.in_(ids),
            Response.customer_id.is_not(None),
        )
        await self.session.execute(
            select(Customer.id)
            .where(Customer.tenant_id == tenant_id, Customer.id.in_(customers))
            .order_by(Customer.id)
            .with_for_update()
        )
        rows = await self.session.execute(
            _GRANT,
            {
                "tenant_id": tenant_id,
                "ids": list(ids),
                "since": since or datetime.min.replace(tzinfo=UTC),
                "limited": interval > timedelta(0),
                "interval": interval,
            },
        )
        return [Grant(*row) for row in rows.all()]

    async def forget(self, tenant_id: UUID, response_ids: Collection[UUID]) -> None:
        """A grant only limits the customer's next reward; an erased customer has none."""
        await self.session.execute(
            delete(RewardGrant).where(
                RewardGrant.tenant_id == tenant_id, RewardGrant.response_id.in_(response_ids)
            )
        )
