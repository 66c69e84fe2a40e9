from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import IdempotencyKey


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def try_lock(self, tenant_id: UUID, api_key_id: UUID, key: str) -> bool:
        """A transaction-scoped advisory lock on (tenant, API key, key): it is released when
        the request's transaction ends, so a crashed request can never leave a key stuck."""
        locked = await self.session.scalar(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"idempotency:{tenant_id}:{api_key_id}:{key}"},
        )
        return bool(locked)

    async def get_live(self, tenant_id: UUID, api_key_id: UUID, key: str) -> IdempotencyKey | None:
        stmt = select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id,
            IdempotencyKey.api_key_id == api_key_id,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at > func.now(),
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def put(self, record: IdempotencyKey) -> None:
        # An expired record for the same key may still exist: replace it.
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.tenant_id == record.tenant_id,
                IdempotencyKey.api_key_id == record.api_key_id,
                IdempotencyKey.key == record.key,
            )
        )
        self.session.add(record)
        await self.session.flush()

    async def forget_bodies_mentioning(self, tenant_id: UUID, values: Sequence[str]) -> int:
        """Delete the records whose stored body holds any of these strings as a value, at
        any depth."""
        if not values:
            return 0
        result = await self.session.execute(
            text(
                "DELETE FROM idempotency_keys k WHERE k.tenant_id = :tenant_id AND EXISTS ("
                "SELECT 1 FROM jsonb_path_query(k.response_body, 'strict $.**') v "
                "WHERE jsonb_typeof(v) = 'string' AND v #>> '{}' = ANY(:values))"
            ),
            {"tenant_id": tenant_id, "values": list(values)},
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_expired(self) -> int:
        result = await self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= func.now())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
