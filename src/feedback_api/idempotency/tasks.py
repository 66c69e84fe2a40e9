from __future__ import annotations

from feedback_api.idempotency.repository import IdempotencyRepository
from feedback_api.worker_context import JobContext


async def purge_expired_keys(ctx: JobContext) -> None:
    """Idempotency results past their TTL are no longer replayed; drop them."""
    await IdempotencyRepository(ctx.session).delete_expired()
