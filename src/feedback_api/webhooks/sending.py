"""The wire side of webhook delivery: signed POSTs through the process's send slots, shared
fairly between endpoints and tenants, each with one total deadline and a capped answer.

`send_batch` is all `delivery` needs: it says what was sent (and what came back) and what
must be deferred. It writes nothing; what the answers mean is `delivery`'s business.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import email.utils
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import cast
from uuid import UUID

import httpx
from prometheus_client import Counter, Histogram
from standardwebhooks.webhooks import Webhook

from feedback_api.config import Settings
from feedback_api.kit.time import utcnow
from feedback_api.models import Event, WebhookDelivery, WebhookEndpoint
from feedback_api.webhooks.ssrf import BlockedAddress, guarded_client

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

# Requests in flight per process, across all jobs. Measured (bench/webhooks.py): 16 gave
# 410 deliveries/s on one worker, 64 gave 122 (more connections, more event-loop churn).
SEND_CONCURRENCY = 16
# Fair shares of those slots: at most this many sends in flight (or waiting for a slot) per
# endpoint and per tenant, so one slow receiver, or one tenant's many, cannot take them all.
# Per process: each worker (and each API process running one) counts its own, so with N
# workers an endpoint can have up to N * ENDPOINT_SHARE sends in flight.
ENDPOINT_SHARE = 4
TENANT_SHARE = 8
# A job sends its batch through the shares it got, one delivery after another per share, but
# starts new sends only this long after it began and defers the rest. So a job takes at most
# this + a wait for a slot + one attempt (each at most the deadline, 25 s): within the
# worker's 60 s lease.
LANE_SECONDS = 5.0
# What is read of an answer; the rest is never read (the connection is closed instead).
MAX_ANSWER_BYTES = 1024
MAX_RETRY_AFTER = 86400


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


_clients: dict[bool, httpx.AsyncClient] = {}


def _client(allow_private: bool) -> httpx.AsyncClient:
    """One pooled client per process (and setting): building a TLS context per delivery
    costs more than the delivery."""
    client = _clients.get(allow_private)
    if client is None or client.is_closed:
        client = _clients[allow_private] = guarded_client(allow_private=allow_private)
    return client


@dataclass(slots=True)
class Outgoing:
    """A delivery about to be sent, with what sending it needs."""

    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    event: Event
    # Another payload format's body and headers (webhooks/formats.py); None: Standard
    # Webhooks, signed as it leaves.
    shaped: tuple[str, dict[str, str]] | None = None


@dataclass(slots=True)
class Sent:
    """What one attempt learnt: an HTTP status and the head of the answer, or an error."""

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


async def send_batch(
    items: list[Outgoing], settings: Settings
) -> tuple[list[tuple[Outgoing, Sent]], list[Outgoing]]:
    """Send what the fair shares allow, and say what was sent and what is deferred.

    Each share taken is a lane through this batch's deliveries for its endpoint: it
    sends them one after another (a healthy receiver gets the whole batch quickly),
    starting new sends only within LANE_SECONDS. What no lane got to is deferred, as is
    a delivery that found no send slot within the deadline."""
    shares = _shares()
    queues: dict[UUID, collections.deque[Outgoing]] = {}
    for item in items:
        queues.setdefault(item.endpoint.id, collections.deque()).append(item)
    started = time.monotonic()
    sent: list[tuple[Outgoing, Sent]] = []
    busy: list[Outgoing] = []

    async def lane(queue: collections.deque[Outgoing], endpoint: WebhookEndpoint) -> None:
        try:
            while queue and time.monotonic() - started < LANE_SECONDS:
                item = queue.popleft()
                result = await _send(item, shares.slots, settings)
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


async def _send(item: Outgoing, slots: asyncio.Semaphore, settings: Settings) -> Sent | None:
    """One attempt, once a send slot is free (None: none was within the deadline)."""
    deadline = settings.webhooks_timeout_seconds
    try:
        async with asyncio.timeout(deadline):
            await slots.acquire()
    except TimeoutError:
        return None
    try:
        return await _attempt(item, deadline, settings)
    finally:
        slots.release()


def _signed(item: Outgoing) -> tuple[str, dict[str, str]]:
    """The body and the Standard Webhooks headers, signed now, as it leaves (receivers
    reject timestamps more than minutes old); by both secrets while a rotation overlaps."""
    if item.shaped is not None:
        body, signed = item.shaped
        return body, {"content-type": "application/json", "accept-encoding": "identity", **signed}
    delivery, endpoint, event = item.delivery, item.endpoint, item.event
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
    return body, headers


async def _attempt(item: Outgoing, deadline: float, settings: Settings) -> Sent:
    body, headers = _signed(item)
    sent = Sent()
    started = time.perf_counter()
    client = _client(settings.webhooks_allow_private)
    try:
        # One deadline for the whole exchange; httpx's own timeouts apply per phase (a
        # receiver trickling a byte at a time would never trip them).
        async with (
            asyncio.timeout(deadline),
            client.stream(
                "POST", item.endpoint.url, content=body.encode(), headers=headers, timeout=deadline
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
        DELIVERY_LAG.observe((utcnow() - item.event.occurred_at).total_seconds())
    else:
        DELIVERIES.labels("failure").inc()
    return sent
