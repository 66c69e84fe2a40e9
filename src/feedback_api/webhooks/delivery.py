"""Webhook delivery, the worker's side: new events become deliveries (`dispatch`), jobs send
them (`deliver`, through `sending`) and record what happened: attempts, successes, retries
on the schedule or as the receiver asked, deferrals, and endpoints disabled when they keep
failing.

One chain per delivery: every delivery job carries the `next_attempt_at` it was scheduled
for (`due`) and acts on a delivery only while that is still its `next_attempt_at`, so a
manual retry or a deferral (which move it) silently retires the job scheduled before.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.time import utcnow
from feedback_api.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from feedback_api.webhooks.formats import STANDARD, format_of
from feedback_api.webhooks.repository import WebhookRepository
from feedback_api.webhooks.schemas import WebhookEndpointRead
from feedback_api.webhooks.sending import Outgoing, Sent, send_batch

DELIVER = "webhooks.deliver"
# Deliveries per job, sent concurrently: the bookkeeping of a batch costs about what one
# delivery's did. Small enough that a batch of slow receivers fits the job lease (60 s).
BATCH_SIZE = 32
# A delivery over its share of the send slots (see `sending`) is deferred, not waited for (a
# waiting job would hold one of the worker's job slots, and enough of them would keep other
# tenants' jobs from being claimed): it stays pending, is not counted as an attempt, and is
# due again this many seconds later (uniformly drawn), in a new job.
DEFER_SECONDS = (1.0, 2.0)
# Wait after the n-th failed attempt; the first attempt is immediate: 10 attempts in all,
# the last about 3 days after the first.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = 1 + len(RETRY_SCHEDULE)
DISABLE_AFTER = timedelta(days=5)
# What a delivery becomes when no attempt is left to make.
GIVEN_UP: dict[str, Any] = {"status": "failed", "next_attempt_at": None}


def matches(filters: list[str], event_type: str) -> bool:
    if not filters:
        return True
    return any(
        event_type.startswith(f[:-1]) if f.endswith(".*") else event_type == f for f in filters
    )


async def _shape(session: AsyncSession, tenant_id: UUID, items: list[Outgoing]) -> list[Outgoing]:
    """Give the deliveries of endpoints with another payload format their body and headers
    (one shaping per format and event). Returns those whose event the format could not
    express (dispatch lets only expressible types through, but an event may be damaged):
    they fail unsent, and the rest of the job goes on."""
    by_format: dict[str, list[Outgoing]] = {}
    for item in items:
        if item.endpoint.format != STANDARD:
            by_format.setdefault(item.endpoint.format, []).append(item)
    unshaped: list[Outgoing] = []
    for name, group in by_format.items():
        shape = format_of(name)
        assert shape is not None
        events = list({item.event.id: item.event for item in group}.values())
        bodies = await shape.shape(session, tenant_id, events)
        for item in group:
            body = bodies.get(item.event.id)
            if body is None:
                unshaped.append(item)
            else:
                item.shaped = (body, shape.sign(item.endpoint.secret, body))
    return unshaped


def _due(payload: dict[str, Any]) -> datetime | None:
    """The `next_attempt_at` a delivery job was scheduled for (None: queued before jobs
    carried it)."""
    value = payload.get("due")
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class DeliveryService:
    # creating deliveries
    async def dispatch(self, session: AsyncSession) -> int:
        """Turn new events into deliveries for every enabled endpoint that wants them.

        Each endpoint keeps a cursor in the event log, advanced in the same transaction that
        creates the deliveries, and is locked while it is worked on, so any number of
        workers create each delivery exactly once."""
        repo = WebhookRepository(session)
        created = 0
        for endpoint in await repo.claim_endpoints_with_news(limit=20):
            events = await repo.events_after_cursor(endpoint, limit=500)
            shape = format_of(endpoint.format)
            wanted = [
                e
                for e in events
                if e.type != EventType.WEBHOOK_TEST
                and matches(endpoint.event_types, e.type)
                and (shape is None or shape.wants(e))
            ]
            if wanted:
                created += len(await self.create(session, endpoint, wanted))
            await repo.move_cursor(endpoint, events[-1])
        return created

    async def create(
        self, session: AsyncSession, endpoint: WebhookEndpoint, events: list[Event]
    ) -> list[WebhookDelivery]:
        """Deliveries of these events to this endpoint, due now, in jobs of BATCH_SIZE."""
        due = utcnow()
        deliveries = [
            WebhookDelivery(
                tenant_id=endpoint.tenant_id,
                endpoint_id=endpoint.id,
                event_id=e.id,
                event_type=e.type,
                next_attempt_at=due,
            )
            for e in events
        ]
        await WebhookRepository(session).add_deliveries(deliveries)
        ids = [str(d.id) for d in deliveries]
        await job_service.enqueue_many(
            session,
            DELIVER,
            tenant_id=endpoint.tenant_id,
            payloads=[
                {"delivery_ids": ids[i : i + BATCH_SIZE], "due": due.isoformat()}
                for i in range(0, len(ids), BATCH_SIZE)
            ],
            max_attempts=3,
        )
        return deliveries

    async def retry_now(self, session: AsyncSession, delivery: WebhookDelivery) -> None:
        """A manual retry: pending again and due now, in a job of its own. The new
        `next_attempt_at` replaces any scheduled attempt: the job scheduled for the old one
        finds the delivery no longer due then and does nothing (see `deliver`)."""
        due = utcnow()
        await WebhookRepository(session).update_delivery(
            delivery, {"status": "pending", "next_attempt_at": due, "updated_at": due}
        )
        await job_service.enqueue(
            session,
            DELIVER,
            tenant_id=delivery.tenant_id,
            payload={"delivery_ids": [str(delivery.id)], "due": due.isoformat(), "manual": True},
            max_attempts=3,
        )

    # the delivery job
    async def deliver(
        self,
        session: AsyncSession,
        job_tenant: UUID | None,
        payload: dict[str, Any],
        settings: Settings,
    ) -> None:
        """One attempt for each delivery of a batch, sent concurrently within the fair shares
        (the rest deferred). Everything learnt (attempts, delivery states, next tries,
        disabled endpoints) commits with the job.

        One chain per delivery: a job sends a delivery only if it is still due when the job
        was scheduled for (its `next_attempt_at` equals the job's `due`), and records the
        outcome as the delivery's state only if that is still so after sending. A manual
        retry moves `next_attempt_at`, so the job it replaced does nothing, and a send
        already under way when it came is counted but leaves the state to the new chain.
        Jobs queued before `due` existed send any pending delivery."""
        if job_tenant is None:
            return
        orphans, sendable = await self._still_due(session, job_tenant, payload)
        results, deferred = await send_batch(sendable, settings)
        # Nothing is written before sending: a transaction that has written holds back event
        # visibility for every tenant while it is open (see events/repository).
        now = utcnow()
        repo = WebhookRepository(session)
        for delivery in orphans:
            await repo.update_delivery(
                delivery, {"status": "failed", "next_attempt_at": None, "updated_at": now}
            )
        await self._defer(session, job_tenant, deferred, now)
        if results:
            await self._record(session, job_tenant, results, now)

    async def _still_due(
        self, session: AsyncSession, tenant_id: UUID, payload: dict[str, Any]
    ) -> tuple[list[WebhookDelivery], list[Outgoing]]:
        """The job's deliveries that are still its to send: the orphans (endpoint gone or
        disabled, event gone), which fail unsent, and the ones to send."""
        ids = [UUID(i) for i in payload["delivery_ids"]]
        due = _due(payload)
        found = await WebhookRepository(session).deliveries_with_context(tenant_id, ids)
        orphans: list[WebhookDelivery] = []
        sendable: list[Outgoing] = []
        for delivery, endpoint, event in found:
            if delivery.status != "pending":
                continue
            if due is not None and delivery.next_attempt_at != due:
                continue  # stale: a manual retry (or a newer job) took this delivery over
            if endpoint is None or not endpoint.enabled or event is None:
                orphans.append(delivery)
                continue
            sendable.append(Outgoing(delivery, endpoint, event))
        unshaped = {id(item) for item in await _shape(session, tenant_id, sendable)}
        orphans += [item.delivery for item in sendable if id(item) in unshaped]
        return orphans, [item for item in sendable if id(item) not in unshaped]

    async def _record(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        results: list[tuple[Outgoing, Sent]],
        now: datetime,
    ) -> None:
        """An attempt row for each send; then the successes settled, the endpoints that
        answered again no longer failing, and each failure retried or given up."""
        repo = WebhookRepository(session)
        await repo.add_attempts(
            [
                WebhookAttempt(
                    tenant_id=tenant_id,
                    delivery_id=item.delivery.id,
                    status_code=r.status,
                    error=r.error,
                    latency_ms=r.latency_ms,
                    response_body=r.text,
                )
                for item, r in results
            ]
        )
        await self._succeeded(repo, tenant_id, [(i, r) for i, r in results if r.ok], now)
        recovered = {
            item.endpoint.id for item, r in results if r.ok and item.endpoint.failing_since
        }
        for endpoint_id in recovered:
            await repo.update(tenant_id, endpoint_id, {"failing_since": None})
        for item, result in results:
            if not result.ok:
                await self._failed(session, item.delivery, item.endpoint, result, now)

    async def _succeeded(
        self,
        repo: WebhookRepository,
        tenant_id: UUID,
        results: list[tuple[Outgoing, Sent]],
        now: datetime,
    ) -> None:
        """Successes, one statement per (status, due token): `succeeded` where the delivery
        is still due when it was sent, else (a newer chain owns it) only counted."""
        succeeded: dict[tuple[int | None, datetime | None], list[UUID]] = {}
        for item, r in results:
            key = (r.status, item.delivery.next_attempt_at)
            succeeded.setdefault(key, []).append(item.delivery.id)
        for (status, token), delivery_ids in succeeded.items():
            settled = await repo.update_deliveries_if_due(
                tenant_id,
                token,
                delivery_ids,
                {
                    "status": "succeeded",
                    "attempts": WebhookDelivery.attempts + 1,
                    "last_status_code": status,
                    "next_attempt_at": None,
                    "updated_at": now,
                },
            )
            for delivery_id in delivery_ids:
                if delivery_id not in settled:
                    await repo.count_attempt(tenant_id, delivery_id, status, now)

    async def _defer(
        self, session: AsyncSession, tenant_id: UUID, items: list[Outgoing], now: datetime
    ) -> None:
        """Deliveries not sent by this job: still pending, not an attempt, due again in a
        moment in one new job (unless a manual retry took one over meanwhile)."""
        if not items:
            return
        repo = WebhookRepository(session)
        due = now + timedelta(seconds=random.uniform(*DEFER_SECONDS))
        by_token: dict[datetime | None, list[UUID]] = {}
        for item in items:
            by_token.setdefault(item.delivery.next_attempt_at, []).append(item.delivery.id)
        kept: set[UUID] = set()
        for token, delivery_ids in by_token.items():
            kept |= await repo.update_deliveries_if_due(
                tenant_id, token, delivery_ids, {"next_attempt_at": due, "updated_at": now}
            )
        if not kept:
            return
        await job_service.enqueue(
            session,
            DELIVER,
            tenant_id=tenant_id,
            payload={
                "delivery_ids": [str(i.delivery.id) for i in items if i.delivery.id in kept],
                "due": due.isoformat(),
            },
            run_at=due,
            max_attempts=3,
        )

    async def _failed(
        self,
        session: AsyncSession,
        delivery: WebhookDelivery,
        endpoint: WebhookEndpoint,
        sent: Sent,
        now: datetime,
    ) -> None:
        """A failed attempt: the endpoint disabled (410 Gone, or failing for DISABLE_AFTER)
        and the delivery given up, or the next attempt scheduled (RETRY_SCHEDULE with
        jitter, or the receiver's Retry-After) until MAX_ATTEMPTS."""
        attempts = delivery.attempts + 1
        reason = None
        if sent.status == 410:
            reason = "the receiver answered 410 Gone"
        elif now - (endpoint.failing_since or now) >= DISABLE_AFTER:
            reason = f"every delivery failed for {DISABLE_AFTER.days} days"
        if reason is not None or not endpoint.enabled:
            if reason is not None and endpoint.enabled:
                await self._disable(session, endpoint, reason, now)
                endpoint.enabled = False  # later failures of this batch see it
            await self._settle(session, delivery, sent, now, GIVEN_UP)
            return
        if endpoint.failing_since is None:
            await WebhookRepository(session).update(
                endpoint.tenant_id, endpoint.id, {"failing_since": now}
            )
            endpoint.failing_since = now
        if attempts >= MAX_ATTEMPTS:
            await self._settle(session, delivery, sent, now, GIVEN_UP)
            return
        delay = RETRY_SCHEDULE[attempts - 1] * random.uniform(0.9, 1.1)
        if sent.retry_after is not None:
            delay = max(sent.retry_after, 1.0)
        next_at = now + timedelta(seconds=delay)
        if not await self._settle(session, delivery, sent, now, {"next_attempt_at": next_at}):
            return
        await job_service.enqueue(
            session,
            DELIVER,
            tenant_id=endpoint.tenant_id,
            payload={"delivery_ids": [str(delivery.id)], "due": next_at.isoformat()},
            run_at=next_at,
            max_attempts=3,
        )

    async def _settle(
        self,
        session: AsyncSession,
        delivery: WebhookDelivery,
        sent: Sent,
        now: datetime,
        state: dict[str, Any],
    ) -> bool:
        """A failed attempt's outcome becomes the delivery's state if it is still due when
        this attempt was (else a manual retry replaced this chain: the attempt is only
        counted, and False says so)."""
        repo = WebhookRepository(session)
        values: dict[str, Any] = {
            "attempts": WebhookDelivery.attempts + 1,
            "last_status_code": sent.status,
            "updated_at": now,
            **state,
        }
        token = delivery.next_attempt_at
        if await repo.update_deliveries_if_due(delivery.tenant_id, token, [delivery.id], values):
            return True
        await repo.count_attempt(delivery.tenant_id, delivery.id, sent.status, now)
        return False

    async def _disable(
        self, session: AsyncSession, endpoint: WebhookEndpoint, reason: str, now: datetime
    ) -> None:
        updated = await WebhookRepository(session).update(
            endpoint.tenant_id,
            endpoint.id,
            {"enabled": False, "disabled_reason": reason, "disabled_at": now, "updated_at": now},
        )
        assert updated is not None
        await event_service.emit(
            session,
            endpoint.tenant_id,
            EventType.WEBHOOK_ENDPOINT_DISABLED,
            [WebhookEndpointRead.model_validate(updated)],
        )


delivery = DeliveryService()
