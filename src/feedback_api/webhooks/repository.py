from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, exists, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.repository import SETTLED
from feedback_api.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # endpoints
    async def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        self.session.add(endpoint)
        await self.session.flush()
        await self.session.refresh(endpoint)
        return endpoint

    async def get(self, tenant_id: UUID, endpoint_id: UUID) -> WebhookEndpoint | None:
        stmt = select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_page(
        self, tenant_id: UUID, *, limit: int, after: tuple[datetime, UUID] | None
    ) -> list[WebhookEndpoint]:
        stmt = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(
                tuple_(WebhookEndpoint.created_at, WebhookEndpoint.id) < tuple_(*after)
            )
        stmt = stmt.order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
        return list((await self.session.scalars(stmt.limit(limit))).all())

    async def update(
        self, tenant_id: UUID, endpoint_id: UUID, values: dict[str, Any]
    ) -> WebhookEndpoint | None:
        stmt = (
            update(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id)
            .values(**values)
            .returning(WebhookEndpoint)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def delete(self, tenant_id: UUID, endpoint_id: UUID) -> bool:
        result = await self.session.execute(
            delete(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id)
            .returning(WebhookEndpoint.id)
        )
        return result.first() is not None

    # dispatch
    async def claim_endpoints_with_news(self, limit: int) -> list[WebhookEndpoint]:
        """Lock up to `limit` enabled endpoints with undispatched events, the furthest behind
        first (cursors are positions in the one event log, comparable across tenants), so
        no endpoint waits behind others however many there are. Locked ones are skipped:
        another worker is on them."""
        news = exists().where(
            Event.tenant_id == WebhookEndpoint.tenant_id,
            tuple_(Event.xid, Event.id)
            > tuple_(WebhookEndpoint.cursor_xid, WebhookEndpoint.cursor_event_id),
            SETTLED,
        )
        stmt = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.enabled, news)
            .order_by(WebhookEndpoint.cursor_xid, WebhookEndpoint.cursor_event_id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookEndpoint)
        )
        return list((await self.session.scalars(stmt)).all())

    async def events_after_cursor(self, endpoint: WebhookEndpoint, limit: int) -> list[Event]:
        stmt = (
            select(Event)
            .where(
                Event.tenant_id == endpoint.tenant_id,
                tuple_(Event.xid, Event.id) > tuple_(endpoint.cursor_xid, endpoint.cursor_event_id),
                SETTLED,
            )
            .order_by(Event.xid, Event.id)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def move_cursor(self, endpoint: WebhookEndpoint, event: Event) -> None:
        await self.session.execute(
            update(WebhookEndpoint)
            .where(
                WebhookEndpoint.tenant_id == endpoint.tenant_id,
                WebhookEndpoint.id == endpoint.id,
            )
            .values(cursor_xid=event.xid, cursor_event_id=event.id)
        )

    # deliveries
    async def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        self.session.add_all(deliveries)
        await self.session.flush()

    async def get_delivery(self, tenant_id: UUID, delivery_id: UUID) -> WebhookDelivery | None:
        stmt = select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def deliveries_with_context(
        self, tenant_id: UUID, delivery_ids: Sequence[UUID]
    ) -> list[tuple[WebhookDelivery, WebhookEndpoint | None, Event | None]]:
        """Deliveries with their endpoint and event, in one query (the hot path of sending)."""
        stmt = (
            select(WebhookDelivery, WebhookEndpoint, Event)
            .outerjoin(
                WebhookEndpoint,
                (WebhookEndpoint.tenant_id == WebhookDelivery.tenant_id)
                & (WebhookEndpoint.id == WebhookDelivery.endpoint_id),
            )
            .outerjoin(
                Event,
                (Event.tenant_id == WebhookDelivery.tenant_id)
                & (Event.id == WebhookDelivery.event_id),
            )
            .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id.in_(delivery_ids))
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        )
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]

    async def update_deliveries_if_due(
        self,
        tenant_id: UUID,
        due: datetime | None,
        delivery_ids: Sequence[UUID],
        values: dict[str, Any],
    ) -> set[UUID]:
        """Update the deliveries that are still due at `due` (their `next_attempt_at`), and
        say which: one whose `next_attempt_at` moved on (a manual retry) belongs to the
        newer chain, which decides its state."""
        if not delivery_ids:
            return set()
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.tenant_id == tenant_id,
                WebhookDelivery.id.in_(delivery_ids),
                WebhookDelivery.next_attempt_at.is_not_distinct_from(due),
            )
            .values(**values)
            .returning(WebhookDelivery.id)
        )
        return set(result.scalars().all())

    async def count_attempt(
        self, tenant_id: UUID, delivery_id: UUID, status: int | None, now: datetime
    ) -> None:
        """An attempt whose chain was replaced meanwhile: counted, the state left alone."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id)
            .values(attempts=WebhookDelivery.attempts + 1, last_status_code=status, updated_at=now)
        )

    async def add_attempts(self, attempts: Sequence[WebhookAttempt]) -> None:
        self.session.add_all(attempts)
        await self.session.flush()

    async def update_delivery(self, delivery: WebhookDelivery, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.tenant_id == delivery.tenant_id,
                WebhookDelivery.id == delivery.id,
            )
            .values(**values)
        )

    async def forget_answers(self, tenant_id: UUID, event_ids: Sequence[UUID]) -> int:
        """Drop what receivers answered to the deliveries of these events (an answer may
        echo the payload)."""
        if not event_ids:
            return 0
        deliveries = select(WebhookDelivery.id).where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.event_id.in_(event_ids)
        )
        result = await self.session.execute(
            update(WebhookAttempt)
            .where(
                WebhookAttempt.tenant_id == tenant_id,
                WebhookAttempt.delivery_id.in_(deliveries),
                WebhookAttempt.response_body.is_not(None),
            )
            .values(response_body=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def deliveries_page(
        self,
        tenant_id: UUID,
        endpoint_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[WebhookDelivery]:
        stmt = select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.endpoint_id == endpoint_id
        )
        if after is not None:
            stmt = stmt.where(
                tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < tuple_(*after)
            )
        stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        return list((await self.session.scalars(stmt.limit(limit))).all())

    async def recent_attempts(
        self, tenant_id: UUID, delivery_ids: Sequence[UUID], per_delivery: int = 10
    ) -> dict[UUID, list[WebhookAttempt]]:
        stmt = (
            select(WebhookAttempt)
            .where(
                WebhookAttempt.tenant_id == tenant_id,
                WebhookAttempt.delivery_id.in_(delivery_ids),
            )
            .order_by(WebhookAttempt.attempted_at.desc())
        )
        found: dict[UUID, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
        for attempt in await self.session.scalars(stmt):
            bucket = found[attempt.delivery_id]
            if len(bucket) < per_delivery:
                bucket.append(attempt)
        return found
