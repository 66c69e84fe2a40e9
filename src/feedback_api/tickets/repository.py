from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Text, and_, cast, delete, exists, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, array, insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import (
    Customer,
    Response,
    SlaPolicy,
    Tenant,
    Ticket,
    TicketEntry,
    TicketResponse,
    TicketRule,
)
from feedback_api.tickets.schemas import TicketFilters
from feedback_api.tickets.states import ACTIVE, Status

# What erasure takes out of a ticket's timeline entries' `data`: the customer's responses
# and their scores (the rest is the system's: rule names, clocks, statuses, reasons).
REDACTED_ENTRY_DATA = ("response_id", "score")

ACTIVE_VALUES = tuple(s.value for s in ACTIVE)
DONE_VALUES = (Status.RESOLVED.value, Status.CLOSED.value)


# Aggregates per group over tickets opened in [start, end); `{key}` is the grouping column.
STATS_SQL = """
    WITH t AS (
        SELECT {key} AS g, t.*
        FROM tickets t
        WHERE t.tenant_id = :tenant_id AND t.created_at >= :start AND t.created_at < :end
    ), sized AS (
        SELECT t.*, coalesce(
            count(*) OVER (PARTITION BY g) < CAST(:pool_below AS integer), false
        ) AS pooled
        FROM t
    )
    SELECT
        CASE WHEN pooled THEN NULL ELSE g END AS key,
        pooled,
        count(*) AS opened,
        count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved,
        percentile_cont(0.5) WITHIN GROUP (
            ORDER BY extract(epoch FROM first_response_consumed)
        ) FILTER (WHERE first_response_stopped_at IS NOT NULL) AS fr_median,
        percentile_cont(0.9) WITHIN GROUP (
            ORDER BY extract(epoch FROM first_response_consumed)
        ) FILTER (WHERE first_response_stopped_at IS NOT NULL) AS fr_p90,
        percentile_cont(0.5) WITHIN GROUP (
            ORDER BY extract(epoch FROM resolution_consumed)
        ) FILTER (WHERE resolved_at IS NOT NULL) AS res_median,
        percentile_cont(0.9) WITHIN GROUP (
            ORDER BY extract(epoch FROM resolution_consumed)
        ) FILTER (WHERE resolved_at IS NOT NULL) AS res_p90,
        count(*) FILTER (WHERE first_response_stopped_at IS NOT NULL
                         AND first_response_breached_at IS NULL) AS fr_met,
        count(*) FILTER (WHERE first_response_stopped_at IS NOT NULL
                         OR first_response_breached_at IS NOT NULL) AS fr_decided,
        count(*) FILTER (WHERE resolved_at IS NOT NULL
                         AND resolution_breached_at IS NULL) AS res_met,
        count(*) FILTER (WHERE resolved_at IS NOT NULL
                         OR resolution_breached_at IS NOT NULL) AS res_decided,
        count(*) FILTER (WHERE first_response_breached_at IS NOT NULL
                         OR resolution_breached_at IS NOT NULL) AS breached,
        count(*) FILTER (WHERE repeat_count > 0) AS repeats,
        count(*) FILTER (WHERE resolved_at IS NOT NULL OR reopened_count > 0) AS ever_resolved,
        count(*) FILTER (WHERE origin = 'response' AND first_replied_at IS NOT NULL)
            AS contacted,
        count(*) FILTER (WHERE origin = 'response') AS from_responses,
        count(*) FILTER (WHERE follow_up_solved) AS solved,
        count(follow_up_solved) AS followed_up
    FROM sized
    GROUP BY 1, 2
    ORDER BY 2, 1 NULLS LAST
"""


@dataclass(frozen=True, slots=True)
class TicketSettings:
    timezone: str
    reopen_days: int
    min_cell_n: int


TicketRow = tuple[Ticket, str | None]  # the ticket and its customer's external_ref


def _with_ref() -> Any:
    return select(Ticket, Customer.external_ref).outerjoin(
        Customer, and_(Customer.tenant_id == Ticket.tenant_id, Customer.id == Ticket.customer_id)
    )


def _same_case(tenant_id: UUID, customer_id: UUID, touchpoint: str | None) -> list[Any]:
    """Tickets of this customer at this touchpoint (as the unique index sees them)."""
    return [
        Ticket.tenant_id == tenant_id,
        Ticket.customer_id == customer_id,
        func.coalesce(Ticket.touchpoint, "") == (touchpoint or ""),
    ]


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def settings(self, tenant_id: UUID) -> TicketSettings | None:
        row = (
            await self.session.execute(
                select(Tenant.timezone, Tenant.ticket_reopen_days, Tenant.metrics_min_cell_n).where(
                    Tenant.id == tenant_id
                )
            )
        ).first()
        return TicketSettings(row[0], row[1], row[2]) if row else None

    async def settings_and_policies(
        self, tenant_id: UUID
    ) -> tuple[TicketSettings | None, list[SlaPolicy]]:
        """`settings` and `policies` in one round trip (every ticket a response opens
        needs both)."""
        stmt = (
            select(Tenant.timezone, Tenant.ticket_reopen_days, Tenant.metrics_min_cell_n, SlaPolicy)
            .select_from(Tenant)
            .outerjoin(SlaPolicy, SlaPolicy.tenant_id == Tenant.id)
            .where(Tenant.id == tenant_id)
            .order_by(SlaPolicy.key)
        )
        rows = (await self.session.execute(stmt)).all()
        if not rows:
            return None, []
        first = rows[0]
        policies = [row[3] for row in rows if row[3] is not None]
        return TicketSettings(first[0], first[1], first[2]), policies

    # --- policies ---
    async def policies(self, tenant_id: UUID) -> list[SlaPolicy]:
        stmt = select(SlaPolicy).where(SlaPolicy.tenant_id == tenant_id).order_by(SlaPolicy.key)
        return list((await self.session.scalars(stmt)).all())

    async def policy_by_key(self, tenant_id: UUID, key: str) -> SlaPolicy | None:
        stmt = select(SlaPolicy).where(SlaPolicy.tenant_id == tenant_id, SlaPolicy.key == key)
        return (await self.session.scalars(stmt)).one_or_none()

    async def clear_default(self, tenant_id: UUID) -> None:
        await self.session.execute(
            update(SlaPolicy)
            .where(SlaPolicy.tenant_id == tenant_id, SlaPolicy.is_default)
            .values(is_default=False)
        )

    async def policy_in_use(self, tenant_id: UUID, policy_id: UUID) -> bool:
        rules = exists().where(
            TicketRule.tenant_id == tenant_id, TicketRule.sla_policy_id == policy_id
        )
        tickets = exists().where(Ticket.tenant_id == tenant_id, Ticket.sla_policy_id == policy_id)
        return bool(await self.session.scalar(select(or_(rules, tickets))))

    # --- rules ---
    async def rules(self, tenant_id: UUID) -> list[TicketRule]:
        stmt = (
            select(TicketRule)
            .where(TicketRule.tenant_id == tenant_id)
            .order_by(TicketRule.position, TicketRule.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def rule(self, tenant_id: UUID, rule_id: UUID) -> TicketRule | None:
        stmt = select(TicketRule).where(TicketRule.tenant_id == tenant_id, TicketRule.id == rule_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def delete_rule(self, tenant_id: UUID, rule_id: UUID) -> bool:
        result = await self.session.execute(
            delete(TicketRule)
            .where(TicketRule.tenant_id == tenant_id, TicketRule.id == rule_id)
            .returning(TicketRule.id)
        )
        return result.first() is not None

    # --- generic ---
    async def add(self, obj: Any) -> None:
        self.session.add(obj)
        await self.session.flush()

    async def delete_obj(self, obj: Any) -> None:
        await self.session.delete(obj)
        await self.session.flush()

    # --- customers and responses (read-only lookups) ---
    async def customer_attributes(
        self, tenant_id: UUID, customer_ids: Collection[UUID]
    ) -> dict[UUID, dict[str, Any]]:
        if not customer_ids:
            return {}
        stmt = select(Customer.id, Customer.attributes).where(
            Customer.tenant_id == tenant_id, Customer.id.in_(customer_ids)
        )
        return {row[0]: row[1] for row in await self.session.execute(stmt)}

    async def customer_refs(
        self, tenant_id: UUID, customer_ids: Collection[UUID]
    ) -> dict[UUID, str]:
        if not customer_ids:
            return {}
        stmt = select(Customer.id, Customer.external_ref).where(
            Customer.tenant_id == tenant_id, Customer.id.in_(customer_ids)
        )
        return {row[0]: row[1] for row in await self.session.execute(stmt)}

    async def response_exists(self, tenant_id: UUID, response_id: UUID) -> bool:
        stmt = select(
            exists().where(
                Response.tenant_id == tenant_id,
                Response.id == response_id,
                Response.deleted_at.is_(None),
            )
        )
        return bool(await self.session.scalar(stmt))

    # --- tickets ---
    async def insert_ticket(self, values: dict[str, Any]) -> Ticket | None:
        """Insert unless the customer already has an active ticket at this touchpoint (the
        partial unique index); None then. Waits for a concurrent insert to settle."""
        stmt = insert(Ticket).values(**values).on_conflict_do_nothing().returning(Ticket)
        return (await self.session.scalars(stmt)).one_or_none()

    async def lock(self, tenant_id: UUID, ticket_id: UUID) -> Ticket | None:
        stmt = (
            select(Ticket)
            .where(Ticket.tenant_id == tenant_id, Ticket.id == ticket_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def lock_active(
        self, tenant_id: UUID, customer_id: UUID, touchpoint: str | None
    ) -> Ticket | None:
        stmt = (
            select(Ticket)
            .where(
                *_same_case(tenant_id, customer_id, touchpoint),
                Ticket.status.in_(ACTIVE_VALUES),
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def lock_open_or_recent(
        self, tenant_id: UUID, customer_id: UUID, touchpoint: str | None, since: datetime
    ) -> Ticket | None:
        """The customer's active ticket at this touchpoint, else the one resolved most
        recently since `since`; locked. One query on the hot path of every complaint."""
        active = Ticket.status.in_(ACTIVE_VALUES)
        stmt = (
            select(Ticket)
            .where(
                *_same_case(tenant_id, customer_id, touchpoint),
                or_(active, and_(Ticket.status.in_(DONE_VALUES), Ticket.resolved_at >= since)),
            )
            .order_by(active.desc(), Ticket.resolved_at.desc())
            .limit(1)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def get(self, tenant_id: UUID, ticket_id: UUID) -> TicketRow | None:
        stmt = _with_ref().where(Ticket.tenant_id == tenant_id, Ticket.id == ticket_id)
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row else None

    async def page(
        self,
        tenant_id: UUID,
        filters: TicketFilters,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[TicketRow]:
        stmt = _with_ref().where(Ticket.tenant_id == tenant_id)
        for column, value in (
            (Ticket.status, filters.status),
            (Ticket.priority, filters.priority),
            (Ticket.team, filters.team),
            (Ticket.assignee, filters.assignee),
            (Ticket.touchpoint, filters.touchpoint),
            (Customer.external_ref, filters.customer),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if filters.breached is not None:
            breached = or_(
                Ticket.first_response_breached_at.is_not(None),
                Ticket.resolution_breached_at.is_not(None),
            )
            stmt = stmt.where(breached if filters.breached else ~breached)
        if filters.due_before is not None:
            stmt = stmt.where(
                or_(
                    Ticket.first_response_due_at < filters.due_before,
                    Ticket.resolution_due_at < filters.due_before,
                )
            )
        if after is not None:
            stmt = stmt.where(tuple_(Ticket.created_at, Ticket.id) < tuple_(*after))
        stmt = stmt.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
        return [(r[0], r[1]) for r in await self.session.execute(stmt)]

    async def all_for_customer(self, tenant_id: UUID, customer_id: UUID) -> list[TicketRow]:
        stmt = (
            _with_ref()
            .where(Ticket.tenant_id == tenant_id, Ticket.customer_id == customer_id)
            .order_by(Ticket.created_at, Ticket.id)
        )
        return [(r[0], r[1]) for r in await self.session.execute(stmt)]

    async def claim_sla_due(self, now: datetime, limit: int) -> list[Ticket]:
        """Tickets with a warning or a breach due, locked; other workers skip them."""
        stmt = (
            select(Ticket)
            .where(Ticket.next_sla_check_at <= now)
            .order_by(Ticket.next_sla_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def by_keys(self, keys: Sequence[tuple[UUID, UUID]]) -> list[Ticket]:
        """Tickets by (tenant_id, id), read afresh, in the order given."""
        stmt = (
            select(Ticket)
            .where(tuple_(Ticket.tenant_id, Ticket.id).in_(keys))
            .execution_options(populate_existing=True)
        )
        found = {(t.tenant_id, t.id): t for t in await self.session.scalars(stmt)}
        return [found[k] for k in keys if k in found]

    async def postpone_sla_check(self, tenant_id: UUID, ticket_id: UUID, when: datetime) -> None:
        await self.session.execute(
            update(Ticket)
            .where(Ticket.tenant_id == tenant_id, Ticket.id == ticket_id)
            .values(next_sla_check_at=when)
            .execution_options(synchronize_session=False)
        )

    async def for_customer(self, tenant_id: UUID, customer_id: UUID) -> list[UUID]:
        stmt = select(Ticket.id).where(
            Ticket.tenant_id == tenant_id, Ticket.customer_id == customer_id
        )
        return list((await self.session.scalars(stmt)).all())

    async def redact(
        self, tenant_id: UUID, ticket_ids: Sequence[UUID], response_ids: Collection[UUID]
    ) -> None:
        """Erasure: drop free text (it may name the customer) but keep the numbers; and the
        links to the customer's responses (a ticket gathers one customer's complaints, so
        its links would tie their anonymous scores together). The same goes for the ids and
        scores its timeline recorded."""
        if response_ids:
            await self.session.execute(
                delete(TicketResponse).where(
                    TicketResponse.tenant_id == tenant_id,
                    TicketResponse.response_id.in_(response_ids),
                )
            )
        if not ticket_ids:
            return
        await self.session.execute(
            update(Ticket)
            .where(Ticket.tenant_id == tenant_id, Ticket.id.in_(ticket_ids))
            .values(
                customer_id=None,
                subject=None,
                description=None,
                resolution_summary=None,
                follow_up_comment=None,
                response_id=None,
            )
        )
        await self.session.execute(
            delete(TicketResponse).where(
                TicketResponse.tenant_id == tenant_id, TicketResponse.ticket_id.in_(ticket_ids)
            )
        )
        await self.session.execute(
            update(TicketEntry)
            .where(TicketEntry.tenant_id == tenant_id, TicketEntry.ticket_id.in_(ticket_ids))
            .values(
                body=None,
                author=None,
                data=TicketEntry.data.op("-")(
                    cast(array(REDACTED_ENTRY_DATA), ARRAY(Text))  # jsonb - text[]
                ),
            )
        )

    # --- links and timeline ---
    async def link(self, tenant_id: UUID, ticket_id: UUID, response_id: UUID, role: str) -> None:
        await self.session.execute(
            insert(TicketResponse)
            .values(tenant_id=tenant_id, ticket_id=ticket_id, response_id=response_id, role=role)
            .on_conflict_do_nothing()
        )

    async def all_entries(self, tenant_id: UUID, ticket_ids: Sequence[UUID]) -> list[TicketEntry]:
        stmt = (
            select(TicketEntry)
            .where(TicketEntry.tenant_id == tenant_id, TicketEntry.ticket_id.in_(ticket_ids))
            .order_by(TicketEntry.created_at, TicketEntry.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def entries_page(
        self,
        tenant_id: UUID,
        ticket_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[TicketEntry]:
        stmt = select(TicketEntry).where(
            TicketEntry.tenant_id == tenant_id, TicketEntry.ticket_id == ticket_id
        )
        if after is not None:
            stmt = stmt.where(tuple_(TicketEntry.created_at, TicketEntry.id) > tuple_(*after))
        stmt = stmt.order_by(TicketEntry.created_at, TicketEntry.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    # --- statistics ---
    async def stats(
        self,
        tenant_id: UUID,
        start: datetime,
        end: datetime,
        *,
        group: str | None,
        pool_below: int | None,
    ) -> list[dict[str, Any]]:
        """Aggregates per group over tickets opened in [start, end). With `pool_below`,
        groups smaller than that are pooled into one row with `pooled` true."""
        key = f"t.{group}" if group else "NULL::text"  # group is from a closed enum
        result = await self.session.execute(
            text(STATS_SQL.format(key=key)),
            {"tenant_id": tenant_id, "start": start, "end": end, "pool_below": pool_below},
        )
        return [dict(row._mapping) for row in result]
