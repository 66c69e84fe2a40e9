from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.integrity.service import integrity as integrity_service
from feedback_api.kit.time import utcnow
from feedback_api.worker_context import JobContext


async def screen(session: AsyncSession, settings: Settings) -> int:
    """Each worker tick: screen new responses (duplicates, bursts, texts, incentives)."""
    return await integrity_service.screen(session)


async def patterns(ctx: JobContext) -> None:
    """Every 15 minutes (job `integrity.patterns`): solicitation and spikes, one tenant per
    transaction (a long transaction would hold back event visibility for everyone)."""
    now = utcnow()
    for tenant_id in await integrity_service.pattern_tenants(ctx.session, now):
        await integrity_service.patterns_of(ctx.session, tenant_id, now)
        await ctx.checkpoint()
