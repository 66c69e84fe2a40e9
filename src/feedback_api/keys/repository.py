from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.rawsql import driver_connection
from feedback_api.models import ApiKey


class ActiveKey(NamedTuple):
    id: UUID
    tenant_id: UUID
    kind: str
    scopes: list[str]
    last_used_at: datetime | None
    timezone: str
    trusted: bool
    rate_limits: dict[str, Any]
    allowed_origins: list[str]


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find_active_by_hash(self, key_hash: str) -> ActiveKey | None:
        # Runs on every request: straight on asyncpg (see kit.rawsql).
        conn = await driver_connection(self.session)
        row = await conn.fetchrow(
            "SELECT k.id, k.tenant_id, k.kind, k.scopes, k.last_used_at, t.timezone, k.trusted,"
            " t.rate_limits::text AS rate_limits, k.allowed_origins"
            " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
            " WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
            key_hash,
        )
        if row is None:
            return None
        limits = row["rate_limits"]
        return ActiveKey(
            id=row["id"],
            tenant_id=row["tenant_id"],
            kind=row["kind"],
            scopes=row["scopes"],
            last_used_at=row["last_used_at"],
            timezone=row["timezone"],
            trusted=row["trusted"],
            rate_limits=json.loads(limits) if limits != "{}" else {},
            allowed_origins=row["allowed_origins"],
        )

    async def touch(self, key_id: UUID) -> None:
        # SKIP LOCKED: a burst of requests on one key must not queue behind each other
        # just to record last use; whoever gets the row updates it, the others move on.
        await self.session.execute(
            text(
                "UPDATE api_keys SET last_used_at = now() WHERE id = ("
                " SELECT id FROM api_keys WHERE id = :id"
                " AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')"
                " FOR UPDATE SKIP LOCKED)"
            ),
            {"id": key_id},
        )

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)
        return key

    async def list_page(
        self, tenant_id: UUID, *, limit: int, after: tuple[datetime, UUID] | None
    ) -> list[ApiKey]:
        stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(tuple_(ApiKey.created_at, ApiKey.id) < tuple_(*after))
        stmt = stmt.order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def get_for_update(self, tenant_id: UUID, key_id: UUID) -> ApiKey | None:
        stmt = (
            select(ApiKey)
            .where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def origin_listed(self, origin: str) -> bool:
        # Across tenants, like find_active_by_hash: a CORS preflight carries no key, so the
        # tenant is not known yet. The predicate repeats the partial GIN index's condition
        # (ix_api_keys_allowed_origins), which a flood of preflights then cannot turn into
        # scans of the whole table.
        listed = await self.session.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE kind = 'publishable'"
                " AND revoked_at IS NULL AND allowed_origins @> ARRAY[CAST(:origin AS text)])"
            ),
            {"origin": origin},
        )
        return bool(listed)

    async def revoke(self, tenant_id: UUID, key_id: UUID) -> ApiKey | None:
        stmt = (
            update(ApiKey)
            .where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
            .values(revoked_at=text("coalesce(revoked_at, now())"))
            .returning(ApiKey)
        )
        return (await self.session.scalars(stmt)).one_or_none()
