from __future__ import annotations

import asyncio
import base64
import email.utils
import ipaddress
import json
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
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

DELIVER = "webhooks.deliver"
# Deliveries per job, sent concurrently: the bookkeeping of a batch costs about what one
# delivery's did. Small enough that a batch of slow receivers fits the job lease (60 s).
BATCH_SIZE = 32
# Requests in flight per process, across all jobs. Measured (bench/webhooks.py): 16 gave
# 410 deliveries/s on one worker, 64 gave 122 (more connections, more event-loop churn).
SEND_CONCURRENCY = 16
_send_slots: dict[int, asyncio.Semaphore] = {}


def _slots() -> asyncio.Semaphore:
    """The process-wide send limit, one per event loop (tests run several loops)."""
    loop = id(asyncio.get_running_loop())
    slots = _send_slots.get(loop)
    if slots is None:
        slots = _send_slots[loop] = asyncio.Semaphore(SEND_CONCURRENCY)
    return slots


# Wait after the n-th failed attempt; the first attempt is immediate: 10 attempts in all,
# the last about 3 days after the first.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = 1 + len(RETRY_SCHEDULE)
DISABLE_AFTER = timedelta(days=5)
ROTATION_OVERLAP = timedelta(hours=24)
TIMEOUT_SECONDS = 15.0
MAX_RETRY_AFTER = 86400


_clients: dict[bool, httpx.AsyncClient] = {}


def _client(allow_private: bool) -> httpx.AsyncClient:
    """One pooled client per process (and setting): building a TLS context per delivery
    costs more than the delivery."""
    client = _clients.get(allow_private)
    if client is None or client.is_closed:
        client = _clients[allow_private] = guarded_client(
            allow_private=allow_private, timeout=TIMEOUT_SECONDS
        )
    return client


@dataclass(slots=True)
class _Sent:
    status: int | None = None
    error: str | None = None
    text: str | None = None
    latency_ms: int = 0
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


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
            errors=[
                {"loc": ["body", "url"], "code": "url_not_allowed", "message": p} for p in problems
            ],
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
        await repo.update_delivery(
            delivery, {"status": "pending", "next_attempt_at": utcnow(), "updated_at": utcnow()}
        )
        await job_service.enqueue(
            session,
            DELIVER,
            tenant_id=tenant_id,
            payload={"delivery_ids": [str(delivery.id)], "manual": True},
            max_attempts=3,
        )
        delivery = await repo.get_delivery(tenant_id, delivery_id)
        assert delivery is not None
        return delivery_read(
            delivery, (await repo.recent_attempts(tenant_id, [delivery.id]))[delivery.id]
        )

    async def _create_deliveries(
        self, session: AsyncSession, endpoint: WebhookEndpoint, events: list[Event]
    ) -> list[WebhookDelivery]:
        deliveries = [
            WebhookDelivery(
                tenant_id=endpoint.tenant_id,
                endpoint_id=endpoint.id,
                event_id=e.id,
                event_type=e.type,
                next_attempt_at=utcnow(),
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
                {"delivery_ids": ids[i : i + BATCH_SIZE]} for i in range(0, len(ids), BATCH_SIZE)
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
        """One attempt for each delivery of a batch, sent concurrently. Everything learnt
        (attempts, delivery states, next tries, disabled endpoints) commits with the job."""
        if job_tenant is None:
            return
        repo = WebhookRepository(session)
        ids = [UUID(i) for i in payload["delivery_ids"]]
        found = await repo.deliveries_with_context(job_tenant, ids)
        now = utcnow()
        sendable: list[tuple[WebhookDelivery, WebhookEndpoint, Event]] = []
        for delivery, endpoint, event in found:
            if delivery.status != "pending":
                continue
            if endpoint is None or not endpoint.enabled or event is None:
                await repo.update_delivery(
                    delivery, {"status": "failed", "next_attempt_at": None, "updated_at": now}
                )
                continue
            sendable.append((delivery, endpoint, event))
        if not sendable:
            return
        limit = _slots()

        async def send(item: tuple[WebhookDelivery, WebhookEndpoint, Event]) -> _Sent:
            async with limit:
                return await self._send(*item, now=now, settings=settings)

        results = await asyncio.gather(*[send(item) for item in sendable])
        await repo.add_attempts(
            [
                WebhookAttempt(
                    tenant_id=job_tenant,
                    delivery_id=d.id,
                    status_code=r.status,
                    error=r.error,
                    latency_ms=r.latency_ms,
                    response_body=r.text,
                )
                for (d, _, _), r in zip(sendable, results, strict=True)
            ]
        )
        succeeded = [(d, e, r) for (d, e, _), r in zip(sendable, results, strict=True) if r.ok]
        if succeeded:
            await repo.mark_succeeded(job_tenant, [(d.id, r.status) for d, _, r in succeeded], now)
            recovered = {e.id for _, e, _ in succeeded if e.failing_since is not None}
            for endpoint_id in recovered:
                await repo.update(job_tenant, endpoint_id, {"failing_since": None})
        for (delivery, endpoint, _), result in zip(sendable, results, strict=True):
            if not result.ok:
                await self._failed(session, delivery, endpoint, result, now)

    async def _send(
        self,
        delivery: WebhookDelivery,
        endpoint: WebhookEndpoint,
        event: Event,
        *,
        now: datetime,
        settings: Settings,
    ) -> _Sent:
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
            "webhook-id": str(delivery.id),
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(signatures),
        }
        sent = _Sent()
        started = time.perf_counter()
        try:
            response = await _client(settings.webhooks_allow_private).post(
                endpoint.url, content=body.encode(), headers=headers, timeout=TIMEOUT_SECONDS
            )
            sent.status, sent.text = response.status_code, response.text[:1024]
            if sent.status in (429, 503):
                sent.retry_after = retry_after_seconds(response)
        except BlockedAddress as exc:
            sent.error = str(exc)
        except httpx.TimeoutException:
            sent.error = f"no answer within {TIMEOUT_SECONDS:g} s"
        except httpx.HTTPError as exc:
            sent.error = f"{type(exc).__name__}: {exc}"[:500]
        elapsed = time.perf_counter() - started
        sent.latency_ms = int(elapsed * 1000)
        DELIVERY_SECONDS.observe(elapsed)
        if sent.ok:
            DELIVERIES.labels("success").inc()
            DELIVERY_LAG.observe((utcnow() - event.occurred_at).total_seconds())
        else:
            DELIVERIES.labels("failure").inc()
        return sent

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
            "attempts": attempts,
            "last_status_code": sent.status,
            "updated_at": now,
        }
        reason = None
        if sent.status == 410:
            reason = "the receiver answered 410 Gone"
        elif now - (endpoint.failing_since or now) >= DISABLE_AFTER:
            reason = f"every delivery failed for {DISABLE_AFTER.days} days"
        if reason is not None or not endpoint.enabled:
            if reason is not None and endpoint.enabled:
                await self._disable(session, endpoint, reason, now)
                endpoint.enabled = False  # later failures of this batch see it
            await repo.update_delivery(
                delivery, {**values, "status": "failed", "next_attempt_at": None}
            )
            return
        if endpoint.failing_since is None:
            await repo.update(endpoint.tenant_id, endpoint.id, {"failing_since": now})
            endpoint.failing_since = now
        if attempts >= MAX_ATTEMPTS:
            await repo.update_delivery(
                delivery, {**values, "status": "failed", "next_attempt_at": None}
            )
            return
        delay = RETRY_SCHEDULE[attempts - 1] * random.uniform(0.9, 1.1)
        if sent.retry_after is not None:
            delay = max(sent.retry_after, 1.0)
        next_at = now + timedelta(seconds=delay)
        await repo.update_delivery(delivery, {**values, "next_attempt_at": next_at})
        await job_service.enqueue(
            session,
            DELIVER,
            tenant_id=endpoint.tenant_id,
            payload={"delivery_ids": [str(delivery.id)]},
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
