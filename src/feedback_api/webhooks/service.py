from __future__ import annotations

import asyncio
import base64
import codecs
import collections
import contextlib
import email.utils
import ipaddress
import json
import random
import secrets
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from feedback_api.config import Settings
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import InvalidRequest, NotFound
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.pagination import paginate
from feedback_api.kit.time import utcnow
from feedback_api.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from feedback_api.webhooks.repository import WebhookRepository
from feedback_api.webhooks.schemas import (
    WebhookAttemptRead,
    WebhookDeliveryRead,
    WebhookEndpointRead,
)
from feedback_api.webhooks.ssrf import BlockedAddress, guarded_client, is_forbidden

DELIVERIES = Counter(
    "feedback_webhook_deliveries_total", "Webhook delivery attempts by outcome.", ["outcome"]
)
DELIVERY_SECONDS = Histogram(
    "feedback_webhook_delivery_seconds",
    "Time for a receiver to answer a webhook delivery.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
DELIVERY_LAG = Histogram(
    "feedback_webhook_lag_seconds",
    "From the event to its successful delivery.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300, 3600),
)
DEFERRALS = Counter(
    "feedback_webhook_deferrals_total",
    "Deliveries put off for a moment, not attempted: over their endpoint's or tenant's share "
    "of the send slots, or no slot free in time.",
    ["reason"],
)

DELIVER = "webhooks.deliver"
# Deliveries per job, sent concurrently: the bookkeeping of a batch costs about what one
# delivery's did. Small enough that a batch of slow receivers fits the job lease (60 s).
BATCH_SIZE = 32
# Requests in flight per process, across all jobs. Measured (bench/webhooks.py): 16 gave
# 410 deliveries/s on one worker, 64 gave 122 (more connections, more event-loop churn).
SEND_CONCURRENCY = 16
# Fair shares of those slots: at most this many sends in flight (or waiting for a slot) per
# endpoint and per tenant, so one slow receiver, or one tenant's many, cannot take them all.
# Per process: each worker (and each API process running one) counts its own, so with N
# workers an endpoint can have up to N * ENDPOINT_SHARE sends in flight.
ENDPOINT_SHARE = 4
TENANT_SHARE = 8
# A delivery over its share is deferred, not waited for (a waiting job would hold one of the
# worker's job slots, and enough of them would keep other tenants' jobs from being claimed):
# it stays pending, is not counted as an attempt, and is due again this many seconds later
# (uniformly drawn), in a new job.
DEFER_SECONDS = (1.0, 2.0)
# A job sends its batch through the shares it got, one delivery after another per share, but
# starts new sends only this long after it began and defers the rest. So a job takes at most
# this + a wait for a slot + one attempt (each at most the deadline, 25 s): within the
# worker's 60 s lease.
LANE_SECONDS = 5.0
# What is read of an answer; the rest is never read (the connection is closed instead).
MAX_ANSWER_BYTES = 1024


@dataclass(slots=True)
class _Shares:
    """The process's send slots and who holds shares of them, one per event loop (tests run
    several loops). `take` and `give_back` never await, so they need no lock."""

    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SEND_CONCURRENCY))
    endpoints: collections.Counter[UUID] = field(default_factory=collections.Counter)
    tenants: collections.Counter[UUID] = field(default_factory=collections.Counter)

    def take(self, endpoint: WebhookEndpoint) -> bool:
        if (
            self.endpoints[endpoint.id] >= ENDPOINT_SHARE
            or self.tenants[endpoint.tenant_id] >= TENANT_SHARE
        ):
            return False
        self.endpoints[endpoint.id] += 1
        self.tenants[endpoint.tenant_id] += 1
        return True

    def give_back(self, endpoint: WebhookEndpoint) -> None:
        for counter, key in ((self.endpoints, endpoint.id), (self.tenants, endpoint.tenant_id)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]


_all_shares: dict[int, _Shares] = {}


def _shares() -> _Shares:
    loop = id(asyncio.get_running_loop())
    shares = _all_shares.get(loop)
    if shares is None:
        shares = _all_shares[loop] = _Shares()
    return shares


# Wait after the n-th failed attempt; the first attempt is immediate: 10 attempts in all,
# the last about 3 days after the first.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = 1 + len(RETRY_SCHEDULE)
DISABLE_AFTER = timedelta(days=5)
ROTATION_OVERLAP = timedelta(hours=24)
MAX_RETRY_AFTER = 86400


_clients: dict[bool, httpx.AsyncClient] = {}


def _client(allow_private: bool) -> httpx.AsyncClient:
    """One pooled client per process (and setting): building a TLS context per delivery
    costs more than the delivery."""
    client = _clients.get(allow_private)
    if client is None or client.is_closed:
        client = _clients[allow_private] = guarded_client(allow_private=allow_private)
    return client


@dataclass(slots=True)
class _Item:
    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    event: Event


@dataclass(slots=True)
class _Sent:
    status: int | None = None
    error: str | None = None
    text: str | None = None
    latency_ms: int = 0
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


async def _read_head(response: httpx.Response) -> bytes:
    """The first MAX_ANSWER_BYTES of the body as received (we ask for no compression), in
    chunks of at most what one socket read returns: an endless body costs nothing."""
    head = bytearray()
    chunks = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            head += chunk[: MAX_ANSWER_BYTES - len(head)]
            if len(head) >= MAX_ANSWER_BYTES:
                break
    return bytes(head)


def _decode(head: bytes, charset: str | None) -> str:
    try:
        decoder = codecs.getincrementaldecoder(charset or "utf-8")(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # not final: a character cut by the limit is dropped, not replaced; NUL cannot be stored
    return decoder.decode(head, final=False).replace("\x00", "")


def _due(payload: dict[str, Any]) -> datetime | None:
    """The `next_attempt_at` a delivery job was scheduled for (None: queued before jobs
    carried it)."""
    value = payload.get("due")
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def matches(filters: list[str], event_type: str) -> bool:
    if not filters:
        return True
    return any(
        event_type.startswith(f[:-1]) if f.endswith(".*") else event_type == f for f in filters
    )


def check_url(url: str, settings: Settings) -> None:
    """Refuse, when saving, URLs that could never be delivered to (the connect-time check
    in ssrf.py is the one that matters: DNS can change after this)."""
    parsed = httpx.URL(url)
    problems = []
    if parsed.scheme != "https" and not (parsed.scheme == "http" and settings.webhooks_allow_http):
        problems.append("only https URLs are allowed")
    if parsed.userinfo:
        problems.append("credentials in the URL are not allowed; verify our signature instead")
    try:
        address = ipaddress.ip_address(parsed.host.strip("[]"))
    except ValueError:
        address = None
    if address is not None and is_forbidden(address) and not settings.webhooks_allow_private:
        problems.append("private, loopback, link-local and metadata addresses are not allowed")
    local_name = parsed.host == "localhost" or parsed.host.endswith(".localhost")
    if local_name and not settings.webhooks_allow_private:
        problems.append("localhost is not allowed")
    if problems:
        raise InvalidRequest(
            "; ".join(problems),
            errors=[InvalidRequest.error(("body", "url"), "url_not_allowed", p) for p in problems],
        )


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max((when - utcnow()).total_seconds(), 0), MAX_RETRY_AFTER)


def delivery_read(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> WebhookDeliveryRead:
    return WebhookDeliveryRead(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempt_count=delivery.attempts,
        last_status_code=delivery.last_status_code,
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        recent_attempts=[WebhookAttemptRead.model_validate(a) for a in attempts],
    )


class WebhookService:
    # endpoints
    async def create(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        url: str,
        description: str | None,
        event_types: list[str],
        enabled: bool,
        settings: Settings,
    ) -> WebhookEndpoint:
        check_url(url, settings)
        return await WebhookRepository(session).add(
            WebhookEndpoint(
                tenant_id=tenant_id,
                url=url,
                description=description,
                event_types=event_types,
                enabled=enabled,
                secret=new_secret(),
            )
        )

    async def get(
        self, session: AsyncSession, tenant_id: UUID, endpoint_id: UUID
    ) -> WebhookEndpoint:
        endpoint = await WebhookRepository(session).get(tenant_id, endpoint_id)
        if endpoint is None:
            raise NotFound("no such webhook endpoint")
        return endpoint

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[WebhookEndpoint], str | None]:
        rows = await WebhookRepository(session).list_page(tenant_id, limit=limit + 1, after=after)
        return paginate(rows, limit, lambda e: (e.created_at, e.id))

    async def update(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        endpoint_id: UUID,
        values: dict[str, Any],
        settings: Settings,
    ) -> WebhookEndpoint:
        if "url" in values:
            values["url"] = str(values["url"])
            check_url(values["url"], settings)
        if values.get("enabled") is True:
            values |= {"disabled_reason": None, "disabled_at": None, "failing_since": None}
        if not values:
            return await self.get(session, tenant_id, endpoint_id)
        endpoint = await WebhookRepository(session).update(
            tenant_id, endpoint_id, {**values, "updated_at": utcnow()}
        )
        if endpoint is None:
            raise NotFound("no such webhook endpoint")
        return endpoint

    async def delete(self, session: AsyncSession, tenant_id: UUID, endpoint_id: UUID) -> None:
        if not await WebhookRepository(session).delete(tenant_id, endpoint_id):
            raise NotFound("no such webhook endpoint")

    async def rotate_secret(
        self, session: AsyncSession, tenant_id: UUID, endpoint_id: UUID
    ) -> tuple[str, datetime]:
        endpoint = await self.get(session, tenant_id, endpoint_id)
        secret, expires = new_secret(), utcnow() + ROTATION_OVERLAP
        await WebhookRepository(session).update(
            tenant_id,
            endpoint_id,
            {
                "secret": secret,
                "previous_secret": endpoint.secret,
                "previous_secret_expires_at": expires,
                "updated_at": utcnow(),
            },
        )
        return secret, expires

    async def send_test(
        self, session: AsyncSession, tenant_id: UUID, endpoint_id: UUID
    ) -> WebhookDeliveryRead:
        endpoint = await self.get(session, tenant_id, endpoint_id)
        test: dict[str, object] = {
            "endpoint_id": str(endpoint.id),
            "message": "a test from feedback-api",
        }
        event = await event_service.record(session, tenant_id, EventType.WEBHOOK_TEST, test)
        (delivery,) = await self._create_deliveries(session, endpoint, [event])
        return delivery_read(delivery, [])

    # deliveries
    async def deliveries_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        endpoint_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[WebhookDeliveryRead], str | None]:
        await self.get(session, tenant_id, endpoint_id)
        repo = WebhookRepository(session)
        rows = await repo.deliveries_page(tenant_id, endpoint_id, limit=limit + 1, after=after)
        rows, cursor = paginate(rows, limit, lambda d: (d.created_at, d.id))
        attempts = await repo.recent_attempts(tenant_id, [d.id for d in rows])
        return [delivery_read(d, attempts[d.id]) for d in rows], cursor

    async def retry(
        self, session: AsyncSession, tenant_id: UUID, delivery_id: UUID
    ) -> WebhookDeliveryRead:
        repo = WebhookRepository(session)
        delivery = await repo.get_delivery(tenant_id, delivery_id)
        if delivery is None:
            raise NotFound("no such webhook delivery")
        # A new `next_attempt_at` replaces any scheduled attempt: the job scheduled for the
        # old one finds the delivery no longer due then and does nothing (see `deliver`).
        due = utcnow()
        await repo.update_delivery(
            delivery, {"status": "pending", "next_attempt_at": due, "updated_at": due}
        )
        await job_service.enqueue(
            session,
            DELIVER,
            tenant_id=tenant_id,
            payload={"delivery_ids": [str(delivery.id)], "due": due.isoformat(), "manual": True},
            max_attempts=3,
        )
        delivery = await repo.get_delivery(tenant_id, delivery_id)
        assert delivery is not None
        return delivery_read(
            delivery, (await repo.recent_attempts(tenant_id, [delivery.id]))[delivery.id]
        )

    async def forget_answers(
        self, session: AsyncSession, tenant_id: UUID, event_ids: Sequence[UUID]
    ) -> int:
        """Erasure: forget the receivers' answers to the deliveries of these events (the
        payloads themselves are read from the events at sending, so they are scrubbed
        there)."""
        return await WebhookRepository(session).forget_answers(tenant_id, event_ids)

    async def _create_deliveries(
        self, session: AsyncSession, endpoint: WebhookEndpoint, events: list[Event]
    ) -> list[WebhookDelivery]:
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

    async def dispatch(self, session: AsyncSession) -> int:
        """Turn new events into deliveries for every enabled endpoint that wants them.

        Each endpoint keeps a cursor in the event log, advanced in the same transaction that
        creates the deliveries, and is locked while it is worked on, so any number of
        workers create each delivery exactly once."""
        repo = WebhookRepository(session)
        created = 0
        for endpoint in await repo.claim_endpoints_with_news(limit=20):
            events = await repo.events_after_cursor(endpoint, limit=500)
            wanted = [
                e
                for e in events
                if e.type != EventType.WEBHOOK_TEST and matches(endpoint.event_types, e.type)
            ]
            if wanted:
                created += len(await self._create_deliveries(session, endpoint, wanted))
            await repo.move_cursor(endpoint, events[-1])
        return created

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
        repo = WebhookRepository(session)
        ids = [UUID(i) for i in payload["delivery_ids"]]
        due = _due(payload)
        found = await repo.deliveries_with_context(job_tenant, ids)
        orphans: list[WebhookDelivery] = []
        sendable: list[_Item] = []
        for delivery, endpoint, event in found:
            if delivery.status != "pending":
                continue
            if due is not None and delivery.next_attempt_at != due:
                continue  # stale: a manual retry (or a newer job) took this delivery over
            if endpoint is None or not endpoint.enabled or event is None:
                orphans.append(delivery)
                continue
            sendable.append(_Item(delivery, endpoint, event))
        results, deferred = await self._send_batch(sendable, settings)
        # Nothing is written before sending: a transaction that has written holds back event
        # visibility for every tenant while it is open (see events/repository).
        now = utcnow()
        for delivery in orphans:
            await repo.update_delivery(
                delivery, {"status": "failed", "next_attempt_at": None, "updated_at": now}
            )
        await self._defer(session, job_tenant, deferred, now)
        if not results:
            return
        await repo.add_attempts(
            [
                WebhookAttempt(
                    tenant_id=job_tenant,
                    delivery_id=item.delivery.id,
                    status_code=r.status,
                    error=r.error,
                    latency_ms=r.latency_ms,
                    response_body=r.text,
                )
                for item, r in results
            ]
        )
        succeeded: dict[tuple[int | None, datetime | None], list[UUID]] = {}
        for item, r in results:
            if r.ok:
                key = (r.status, item.delivery.next_attempt_at)
                succeeded.setdefault(key, []).append(item.delivery.id)
        for (status, token), delivery_ids in succeeded.items():
            settled = await repo.update_deliveries_if_due(
                job_tenant,
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
                    await repo.count_attempt(job_tenant, delivery_id, status, now)
        recovered = {
            item.endpoint.id for item, r in results if r.ok and item.endpoint.failing_since
        }
        for endpoint_id in recovered:
            await repo.update(job_tenant, endpoint_id, {"failing_since": None})
        for item, result in results:
            if not result.ok:
                await self._failed(session, item.delivery, item.endpoint, result, now)

    async def _send_batch(
        self, items: list[_Item], settings: Settings
    ) -> tuple[list[tuple[_Item, _Sent]], list[_Item]]:
        """Send what the fair shares allow, and say what was sent and what is deferred.

        Each share taken is a lane through this batch's deliveries for its endpoint: it
        sends them one after another (a healthy receiver gets the whole batch quickly),
        starting new sends only within LANE_SECONDS. What no lane got to is deferred, as is
        a delivery that found no send slot within the deadline."""
        shares = _shares()
        queues: dict[UUID, collections.deque[_Item]] = {}
        for item in items:
            queues.setdefault(item.endpoint.id, collections.deque()).append(item)
        started = time.monotonic()
        sent: list[tuple[_Item, _Sent]] = []
        busy: list[_Item] = []

        async def lane(queue: collections.deque[_Item], endpoint: WebhookEndpoint) -> None:
            try:
                while queue and time.monotonic() - started < LANE_SECONDS:
                    item = queue.popleft()
                    result = await self._send(item, shares.slots, settings)
                    if result is None:
                        busy.append(item)
                        return
                    sent.append((item, result))
            finally:
                shares.give_back(endpoint)

        async with asyncio.TaskGroup() as lanes:
            for queue in queues.values():
                endpoint = queue[0].endpoint
                for _ in range(len(queue)):
                    if not shares.take(endpoint):
                        break
                    lanes.create_task(lane(queue, endpoint))
        over_share = [item for queue in queues.values() for item in queue]
        if over_share:
            DEFERRALS.labels("share").inc(len(over_share))
        if busy:
            DEFERRALS.labels("busy").inc(len(busy))
        return sent, over_share + busy

    async def _send(
        self, item: _Item, slots: asyncio.Semaphore, settings: Settings
    ) -> _Sent | None:
        """One attempt, once a send slot is free (None: none was within the deadline)."""
        deadline = settings.webhooks_timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                await slots.acquire()
        except TimeoutError:
            return None
        try:
            return await self._attempt(item, deadline, settings)
        finally:
            slots.release()

    async def _attempt(self, item: _Item, deadline: float, settings: Settings) -> _Sent:
        delivery, endpoint, event = item.delivery, item.endpoint, item.event
        # Signed now, as it leaves: receivers reject timestamps more than minutes old.
        now = utcnow()
        body = json.dumps(
            {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.data},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        signatures = [Webhook(endpoint.secret).sign(str(delivery.id), now, body)]
        if endpoint.previous_secret and (endpoint.previous_secret_expires_at or now) > now:
            signatures.append(Webhook(endpoint.previous_secret).sign(str(delivery.id), now, body))
        headers = {
            "content-type": "application/json",
            "accept-encoding": "identity",  # what we read of the answer is what was sent
            "webhook-id": str(delivery.id),
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(signatures),
        }
        sent = _Sent()
        started = time.perf_counter()
        client = _client(settings.webhooks_allow_private)
        try:
            # One deadline for the whole exchange; httpx's own timeouts apply per phase (a
            # receiver trickling a byte at a time would never trip them).
            async with (
                asyncio.timeout(deadline),
                client.stream(
                    "POST", endpoint.url, content=body.encode(), headers=headers, timeout=deadline
                ) as response,
            ):
                head = await _read_head(response)
                sent.status = response.status_code
                sent.text = _decode(head, response.charset_encoding)
                if sent.status in (429, 503):
                    sent.retry_after = retry_after_seconds(response)
        except BlockedAddress as exc:
            sent.error = str(exc)
        except (TimeoutError, httpx.TimeoutException):
            sent.error = f"no complete answer within {deadline:g} s"
        except httpx.HTTPError as exc:
            sent.error = f"{type(exc).__name__}: {exc}"[:500]
        if sent.error is not None:
            sent.status = sent.text = sent.retry_after = None
        elapsed = time.perf_counter() - started
        sent.latency_ms = int(elapsed * 1000)
        DELIVERY_SECONDS.observe(elapsed)
        if sent.ok:
            DELIVERIES.labels("success").inc()
            DELIVERY_LAG.observe((utcnow() - event.occurred_at).total_seconds())
        else:
            DELIVERIES.labels("failure").inc()
        return sent

    async def _defer(
        self, session: AsyncSession, tenant_id: UUID, items: list[_Item], now: datetime
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
        sent: _Sent,
        now: datetime,
    ) -> None:
        repo = WebhookRepository(session)
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": WebhookDelivery.attempts + 1,
            "last_status_code": sent.status,
            "updated_at": now,
        }

        async def settle(state: dict[str, Any]) -> bool:
            """The outcome becomes the delivery's state if it is still due when this attempt
            was (else a manual retry replaced this chain: the attempt is only counted)."""
            token = delivery.next_attempt_at
            if await repo.update_deliveries_if_due(
                delivery.tenant_id, token, [delivery.id], {**values, **state}
            ):
                return True
            await repo.count_attempt(delivery.tenant_id, delivery.id, sent.status, now)
            return False

        reason = None
        if sent.status == 410:
            reason = "the receiver answered 410 Gone"
        elif now - (endpoint.failing_since or now) >= DISABLE_AFTER:
            reason = f"every delivery failed for {DISABLE_AFTER.days} days"
        if reason is not None or not endpoint.enabled:
            if reason is not None and endpoint.enabled:
                await self._disable(session, endpoint, reason, now)
                endpoint.enabled = False  # later failures of this batch see it
            await settle({"status": "failed", "next_attempt_at": None})
            return
        if endpoint.failing_since is None:
            await repo.update(endpoint.tenant_id, endpoint.id, {"failing_since": now})
            endpoint.failing_since = now
        if attempts >= MAX_ATTEMPTS:
            await settle({"status": "failed", "next_attempt_at": None})
            return
        delay = RETRY_SCHEDULE[attempts - 1] * random.uniform(0.9, 1.1)
        if sent.retry_after is not None:
            delay = max(sent.retry_after, 1.0)
        next_at = now + timedelta(seconds=delay)
        if not await settle({"next_attempt_at": next_at}):
            return
        await job_service.enqueue(
            session,
            DELIVER,
            tenant_id=endpoint.tenant_id,
            payload={"delivery_ids": [str(delivery.id)], "due": next_at.isoformat()},
            run_at=next_at,
            max_attempts=3,
        )

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


webhook = WebhookService()
