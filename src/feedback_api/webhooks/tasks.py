from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.webhooks.delivery import delivery as delivery_service
from feedback_api.worker_context import JobContext


async def deliver(ctx: JobContext) -> None:
    """Send one delivery attempt (job kind `webhooks.deliver`)."""
    await delivery_service.deliver(ctx.session, ctx.job.tenant_id, ctx.job.payload, ctx.settings)


async def dispatch(session: AsyncSession, settings: Settings) -> int:
    """Each worker tick: create deliveries for new events."""
    return await delivery_service.dispatch(session)
