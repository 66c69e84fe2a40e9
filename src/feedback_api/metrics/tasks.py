from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.jobs.errors import RetryLater
from feedback_api.metrics.service import metric as metric_service
from feedback_api.worker_context import JobContext


async def fold(session: AsyncSession) -> int:
    """Each worker tick: move pending deltas into the rollup."""
    return await metric_service.fold(session)


async def rebuild(ctx: JobContext) -> None:
    """Re-bucket one tenant's rollup in its current time zone (job `metrics.rebuild`)."""
    assert ctx.job.tenant_id is not None
    if not await metric_service.rebuild(ctx.session, ctx.job.tenant_id):
        raise RetryLater("the rollup is being folded or rebuilt", 5)
