"""Idempotency-Key handling for create requests.

A retry with the same key replays the first result; the same key with another body is a
422; a retry while the first is still running is a 409. The first result is stored in the
same transaction as the work it describes, so both are kept or neither is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import IdempotencyInFlight, IdempotencyKeyMismatch
from feedback_api.idempotency.repository import IdempotencyRepository
from feedback_api.kit.time import utcnow
from feedback_api.models import IdempotencyKey


@dataclass(frozen=True, slots=True)
class StoredResult:
    status: int
    body: Any


class IdempotencyService:
    async def begin(
        self, session: AsyncSession, tenant_id: UUID, api_key_id: UUID, key: str, request_hash: str
    ) -> StoredResult | None:
        """Claim the key for this transaction; return the stored result of a replay.

        Keys are scoped per API key: the same value sent with another API key is another
        request (a key pulled out of an app cannot block or read a backend's retries)."""
        repo = IdempotencyRepository(session)
        if not await repo.try_lock(tenant_id, api_key_id, key):
            raise IdempotencyInFlight("retry after the first request with this key has finished")
        record = await repo.get_live(tenant_id, api_key_id, key)
        if record is None:
            return None
        if record.request_hash != request_hash:
            raise IdempotencyKeyMismatch(
                "this Idempotency-Key was first used with another request; use a new key"
            )
        return StoredResult(record.response_status, record.response_body)

    async def complete(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        api_key_id: UUID,
        key: str,
        *,
        method: str,
        path: str,
        request_hash: str,
        result: StoredResult,
        ttl: timedelta,
    ) -> None:
        await IdempotencyRepository(session).put(
            IdempotencyKey(
                tenant_id=tenant_id,
                api_key_id=api_key_id,
                key=key,
                request_method=method,
                request_path=path,
                request_hash=request_hash,
                response_status=result.status,
                response_body=result.body,
                expires_at=utcnow() + ttl,
            )
        )

    async def forget_customer(
        self, session: AsyncSession, tenant_id: UUID, ref: str, response_ids: Sequence[UUID]
    ) -> int:
        """Erasure: drop stored results that show this customer or any of their responses,
        anywhere in the body (a batch's items too). The record goes whole, its
        `request_hash` (an unkeyed hash of what was sent) with it; a retry with its key
        after the erasure is simply answered afresh."""
        return await IdempotencyRepository(session).forget_bodies_mentioning(
            tenant_id, [ref, *(str(i) for i in response_ids)]
        )


idempotency = IdempotencyService()
