from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import CATALOGUE, EventType
from feedback_api.events.repository import EventRepository, NewEvent
from feedback_api.exceptions import NotFound
from feedback_api.kit.ids import new_id
from feedback_api.kit.pagination import encode_cursor
from feedback_api.kit.time import utcnow
from feedback_api.models import Event


class EventService:
    async def emit(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        type_: EventType,
        payloads: Sequence[BaseModel],
        *,
        occurred_at: datetime | None = None,
    ) -> None:
        """Record that something happened, in the caller's transaction: the event exists if
        and only if the change it describes was committed."""
        if not payloads:
            return
        when = occurred_at or utcnow()
        version = CATALOGUE[type_].schema_version
        await EventRepository(session).insert_many(
            tenant_id,
            [NewEvent(new_id(), type_.value, version, when, p.model_dump_json()) for p in payloads],
        )

    async def record(
        self, session: AsyncSession, tenant_id: UUID, type_: EventType, data: dict[str, Any]
    ) -> Event:
        """One event, returned as stored (for callers that act on it in the same transaction)."""
        return await EventRepository(session).add(
            Event(
                tenant_id=tenant_id,
                id=new_id(),
                type=type_.value,
                schema_version=CATALOGUE[type_].schema_version,
                occurred_at=utcnow(),
                data=data,
            )
        )

    async def page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        after: tuple[int, UUID] | None,
        type_filter: str | None,
        limit: int,
    ) -> tuple[list[Event], str | None, bool]:
        exact = prefix = None
        if type_filter is not None:
            if type_filter.endswith(".*"):
                prefix = type_filter[:-1]
            else:
                exact = type_filter
        rows = await EventRepository(session).page(
            tenant_id, after=after, type_exact=exact, type_prefix=prefix, limit=limit + 1
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        if rows:
            cursor: str | None = encode_cursor(rows[-1].xid, rows[-1].id)
        else:
            cursor = encode_cursor(*after) if after is not None else None
        return rows, cursor, has_more

    async def get(self, session: AsyncSession, tenant_id: UUID, event_id: UUID) -> Event:
        event = await EventRepository(session).get(tenant_id, event_id)
        if event is None:
            raise NotFound("no such event")
        return event

    async def scrub_customer(self, session: AsyncSession, tenant_id: UUID, ref: str) -> list[UUID]:
        """Erasure: strip personal data from the stored payloads of this customer's events;
        returns the events changed."""
        repo = EventRepository(session)
        responses = await repo.scrub(
            tenant_id,
            "response.",
            "customer",
            ref,
            {
                "customer": None,
                "comment": None,
                "attributes": {},
                "language": None,
                "external_id": None,
            },
        )
        tickets = await repo.scrub(
            tenant_id,
            "ticket.",
            "customer",
            ref,
            {
                "customer": None,
                "subject": None,
                "description": None,
                "resolution_summary": None,
                "follow_up": None,
                "entry": None,
                "response_id": None,
            },
        )
        invitations = await repo.scrub(
            tenant_id,
            "invitation.",
            "customer",
            ref,
            {
                "customer": None,
                "context": {},
                "recipient": None,
                "trigger_ref": None,
                "locale": None,
                "timezone": None,
                # the question in their language and their (closed) links
                "message": None,
                "links": None,
            },
        )
        unsubscribes = await repo.scrub(
            tenant_id, "customer.unsubscribed", "external_ref", ref, {"external_ref": None}
        )
        rewards = await repo.scrub(
            tenant_id, "reward.eligible", "customer", ref, {"customer": None}
        )
        return responses + tickets + invitations + unsubscribes + rewards

    async def blank(
        self, session: AsyncSession, tenant_id: UUID, event_id: UUID, blank: dict[str, Any]
    ) -> bool:
        """Overwrite these fields of one event's payload; False if the event is gone."""
        return await EventRepository(session).blank(tenant_id, event_id, blank)

    async def rewrite(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        type_prefix: str,
        field: str,
        values: Sequence[str],
        change: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> list[UUID]:
        """Erasure: replace the stored payload of each event of these types whose
        data[field] is one of `values` by `change(payload)`; returns the events changed."""
        repo = EventRepository(session)
        changed = []
        for stored in await repo.with_data_in(tenant_id, type_prefix, field, values):
            data = change(dict(stored.data))
            if data != stored.data:
                await repo.set_data(tenant_id, stored.id, data)
                changed.append(stored.id)
        return changed


event = EventService()
