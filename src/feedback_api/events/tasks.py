from __future__ import annotations

from datetime import timedelta

from feedback_api.events.repository import EventRepository
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.time import utcnow
from feedback_api.worker_context import JobContext

PURGE_JOB = "events.purge"
# Events deleted per statement (one transaction each, a fraction of a second), and per run:
# a backlog larger than that (the first purge after a long pause) is left to a follow-up
# job, so that no run outlives its lease by much.
PURGE_BATCH = 10_000
PURGE_BATCHES_PER_RUN = 100


async def purge_expired_events(ctx: JobContext) -> None:
    """Retention: events older than FEEDBACK_EVENTS_RETENTION_DAYS go, in batches, each
    committed by `ctx.checkpoint()` (a repeat after a crash only finds fewer to delete)."""
    cutoff = utcnow() - timedelta(days=ctx.settings.events_retention_days)
    repo = EventRepository(ctx.session)
    for run in range(PURGE_BATCHES_PER_RUN):
        if await repo.delete_created_before(cutoff, PURGE_BATCH) < PURGE_BATCH:
            return  # the last batch commits with the job's completion
        if run < PURGE_BATCHES_PER_RUN - 1:
            await ctx.checkpoint()
    await job_service.enqueue(ctx.session, PURGE_JOB)
