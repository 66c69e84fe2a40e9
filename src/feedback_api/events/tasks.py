from __future__ import annotations

from datetime import timedelta

from feedback_api.events.repository import EventRepository
from feedback_api.kit.time import utcnow
from feedback_api.worker_context import JobContext


async def purge_expired_events(ctx: JobContext) -> None:
    """Retention: events older than FEEDBACK_EVENTS_RETENTION_DAYS go."""
    cutoff = utcnow() - timedelta(days=ctx.settings.events_retention_days)
    await EventRepository(ctx.session).delete_created_before(cutoff)
