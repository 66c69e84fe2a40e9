from __future__ import annotations

from uuid import UUID

from feedback_api.privacy.service import privacy as privacy_service
from feedback_api.worker_context import JobContext


async def forget_notice(ctx: JobContext) -> None:
    """`privacy.forget_notice`: an erasure's `customer.erased` loses the ref (NOTICE after)."""
    if ctx.job.tenant_id is None:
        return
    event_id = UUID(str(ctx.job.payload["event_id"]))
    await privacy_service.forget_notice(ctx.session, ctx.job.tenant_id, event_id)
