from __future__ import annotations

from zoneinfo import ZoneInfo

from feedback_api.insights import watch
from feedback_api.insights.service import theme as theme_service
from feedback_api.kit.time import utcnow
from feedback_api.worker_context import JobContext


async def reclassify(ctx: JobContext) -> None:
    """Classify one tenant's stored comments with its current dictionary (job
    `insights.reclassify`), one bounded transaction per chunk. The progress is in the
    database, so a crash or a second job carries on from the last committed chunk."""
    assert ctx.job.tenant_id is not None
    while not await theme_service.reclassify_step(ctx.session, ctx.job.tenant_id):
        await ctx.checkpoint()


async def rising(ctx: JobContext) -> None:
    """Hourly (job `insights.rising`): `theme.rising` for the themes that rose last week,
    one tenant per transaction (insights/watch.py)."""
    now = utcnow()
    for tenant_id, zone in await watch.watched_tenants(ctx.session):
        await watch.watch(ctx.session, tenant_id, ZoneInfo(zone), now)
        await ctx.checkpoint()
