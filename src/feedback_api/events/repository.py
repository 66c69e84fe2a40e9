from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.rawsql import driver_connection
from feedback_api.models import Event


class NewEvent(NamedTuple):
    id: UUID
    type: str
    schema_version: int
    occurred_at: datetime
    data: str  # JSON object


INSERT_MANY = """
INSERT INTO events (tenant_id, id, type, schema_version, occurred_at, data)
SELECT $1, u.id, u.type, u.schema_version, u.occurred_at, u.data::jsonb
FROM unnest($2::uuid[], $3::text[], $4::int2[], $5::timestamptz[], $6::text[])
    AS u(id, type, schema_version, occurred_at, data)
"""

# The settled horizon: the oldest transaction that could still add an event. Every xid
# below the snapshot's xmax has ended, or is in its in-progress list (xip); of those, a
# transaction of another database of the same server can write no row here, so it does
# not count (a long write in another database, say a reporting job or another service on a
# shared cluster, would otherwise hold every tenant's events and webhooks back). A running
# xid that pg_stat_activity does not place in another database (a prepared transaction, a
# transaction that ended meanwhile, a session this role may not inspect) counts, so the
# horizon is never later than the snapshot's own xmin rule; the reader's own xid counts
# too, as it does in xmin. pg_stat_activity shows a 32-bit xid: xids running at once are
# within 2^31 of each other, so the low 32 bits name one of them.
HORIZON = """least(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
     WHERE (x::text::bigint % 4294967296)::text NOT IN (
         SELECT a.backend_xid::text FROM pg_stat_activity AS a
         WHERE a.backend_xid IS NOT NULL AND a.datname IS DISTINCT FROM current_database())),
    pg_current_xact_id_if_assigned()::text::bigint,
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"""
# Only events of transactions below the horizon: those can no longer be joined by an event
# with a smaller (xid, id), so a cursor never skips one.
SETTLED = text(f"events.xid < {HORIZON}")


PURGE = text(
    "DELETE FROM events WHERE ctid = ANY(ARRAY(SELECT ctid FROM events "
    "WHERE created_at < :cutoff ORDER BY created_at LIMIT :limit)) AND created_at < :cutoff"
)


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_many(self, tenant_id: UUID, events: Sequence[NewEvent]) -> None:
        # On the ingest hot path: straight on asyncpg, in the session's transaction.
        conn = await driver_connection(self.session)
        await conn.execute(INSERT_MANY, tenant_id, *zip(*events, strict=True))

    async def add(self, event: Event) -> Event:
        self.session.add(event)
        await self.session.flush()
        await self.session.refresh(event)
        return event

    async def page(
        self,
        tenant_id: UUID,
        *,
        after: tuple[int, UUID] | None,
        type_exact: str | None,
        type_prefix: str | None,
        limit: int,
    ) -> list[Event]:
        stmt = select(Event).where(Event.tenant_id == tenant_id, SETTLED)
        if after is not None:
            stmt = stmt.where(tuple_(Event.xid, Event.id) > tuple_(*after))
        if type_exact is not None:
            stmt = stmt.where(Event.type == type_exact)
        if type_prefix is not None:
            stmt = stmt.where(Event.type.startswith(type_prefix, autoescape=True))
        stmt = stmt.order_by(Event.xid, Event.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def get(self, tenant_id: UUID, event_id: UUID) -> Event | None:
        stmt = select(Event).where(Event.tenant_id == tenant_id, Event.id == event_id, SETTLED)
        return (await self.session.scalars(stmt)).one_or_none()

    async def scrub(
        self, tenant_id: UUID, type_prefix: str, field: str, value: str, blank: dict[str, Any]
    ) -> list[UUID]:
        """Overwrite personal fields in the payloads of events of these types whose
        data[field] = value; returns the events changed."""
        stmt = (
            update(Event)
            .where(
                Event.tenant_id == tenant_id,
                Event.type.startswith(type_prefix, autoescape=True),
                Event.data[field].astext == value,
            )
            .values(data=Event.data.op("||")(blank))
            .returning(Event.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def with_data_in(
        self, tenant_id: UUID, type_prefix: str, field: str, values: Sequence[str]
    ) -> list[Event]:
        """Events of these types whose data[field] is one of `values`, locked."""
        if not values:
            return []
        stmt = (
            select(Event)
            .where(
                Event.tenant_id == tenant_id,
                Event.type.startswith(type_prefix, autoescape=True),
                Event.data[field].astext.in_(values),
            )
            .with_for_update()
        )
        return list((await self.session.scalars(stmt)).all())

    async def blank(self, tenant_id: UUID, event_id: UUID, blank: dict[str, Any]) -> bool:
        stmt = (
            update(Event)
            .where(Event.tenant_id == tenant_id, Event.id == event_id)
            .values(data=Event.data.op("||")(blank))
            .returning(Event.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def set_data(self, tenant_id: UUID, event_id: UUID, data: dict[str, Any]) -> None:
        await self.session.execute(
            update(Event)
            .where(Event.tenant_id == tenant_id, Event.id == event_id)
            .values(data=data)
            .execution_options(synchronize_session=False)
        )

    async def delete_created_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` events created before `cutoff`, oldest first; returns how
        many. Call again while it returns `limit`. The batch is found by the created_at index
        and deleted by ctid (a TID scan: the cost of a batch does not grow with the table,
        where a join on the key hashed the whole table). An event updated meanwhile (a
        scrub) has moved and is left to a later batch or run."""
        result = await self.session.execute(PURGE, {"cutoff": cutoff, "limit": limit})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
