from __future__ import annotations

from uuid import UUID

from feedback_api.responses.hooks import StoredResponse, responses_stored
from feedback_api.responses.repository import ResponseRepository
from feedback_api.worker_context import JobContext


async def replay_hook(ctx: JobContext) -> None:
    """`responses.replay_hook`: run a subscriber that failed in the storing transaction
    again, over the responses as they are now. Failing again, the job retries and ends dead
    (the queue's rules); it never fires the other subscribers a second time."""
    tenant_id = ctx.job.tenant_id
    name = str(ctx.job.payload["subscriber"])
    subscriber = responses_stored.subscriber(name)
    if tenant_id is None or subscriber is None:
        return  # a subscriber removed since: nothing to run
    ids = [UUID(str(i)) for i in ctx.job.payload["response_ids"]]
    rows = await ResponseRepository(ctx.session).with_refs(tenant_id, ids)
    items = [StoredResponse.of(r, ref) for r, ref in rows]
    if items:
        await subscriber(ctx.session, tenant_id, items)
