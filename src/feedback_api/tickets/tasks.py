from __future__ import annotations

from feedback_api.kit.time import utcnow
from feedback_api.tickets.service import SLA_BATCH
from feedback_api.tickets.service import ticket as ticket_service
from feedback_api.worker_context import JobContext

MAX_BATCHES = 50


async def check_sla(ctx: JobContext) -> None:
    """Every minute (job `tickets.check_sla`): SLA warnings, breaches and escalations.
    Each batch commits on its own (a checkpoint) with its tickets' new state, so a crash
    repeats no batch that committed, and no transaction runs long."""
    now = utcnow()
    for _ in range(MAX_BATCHES):  # the rest waits for the next minute's job
        done = await ticket_service.check_sla(ctx.session, now)
        if done < SLA_BATCH:
            return
        await ctx.checkpoint()
