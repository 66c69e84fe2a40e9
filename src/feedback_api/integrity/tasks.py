from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.integrity.service import integrity as integrity_service
from feedback_api.worker_context import JobContext


async def screen(session: AsyncSession) -> int:
    """Each worker tick: screen new responses (duplicates, bursts, texts, incentives)."""
    return await integrity_service.screen(session)


async def patterns(ctx: JobContext) -> None:
    """Every 15 minutes (job `integrity.patterns`): solicitation and spikes."""
    await integrity_service.patterns(ctx.session)
