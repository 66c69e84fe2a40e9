from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.metrics.service import metric as metric_service
from feedback_api.worker_context import JobContext


async def fold(session: AsyncSession, settings: Settings) -> int:
    """Each worker tick: move pending deltas into the rollup."""
    return await metric_service.fold(session)


async def rebuild(ctx: JobContext) -> None:
    """Re-bucket one tenant's rollup in its current time zone (job `metrics.rebuild`), one
    bounded transaction per step. The progress is in the database, so a crash, a lost claim
    or a second job for the same tenant carries on from the last committed step; the last
    step commits with the job's completion."""
    assert ctx.job.tenant_id is not None
    while not await metric_service.rebuild_step(ctx.session, ctx.job.tenant_id):
        await ctx.checkpoint()
