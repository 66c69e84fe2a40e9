"""Webhook endpoints, as their owners manage them: register, change, rotate secrets, send
a test, read deliveries and retry one. Sending is `delivery`'s (and `sending`'s) business.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import InvalidRequest, NotFound
from feedback_api.kit.pagination import paginate
from feedback_api.kit.time import utcnow
from feedback_api.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from feedback_api.webhooks.delivery import delivery as delivery_service
from feedback_api.webhooks.formats import STANDARD, checked_event_types
from feedback_api.webhooks.repository import WebhookRepository
from feedback_api.webhooks.schemas import WebhookAttemptRead, WebhookDeliveryRead
from feedback_api.webhooks.ssrf import is_forbidden

ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


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
        payload_format: str = STANDARD,
    ) -> WebhookEndpoint:
        check_url(url, settings)
        return await WebhookRepository(session).add(
            WebhookEndpoint(
                tenant_id=tenant_id,
                url=url,
                description=description,
                event_types=checked_event_types(payload_format, event_types),
                enabled=enabled,
                format=payload_format,
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
        if "format" in values or "event_types" in values:
            current = await self.get(session, tenant_id, endpoint_id)
            values["event_types"] = checked_event_types(
                values.get("format", current.format),
                values.get("event_types", current.event_types),
            )
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
        (delivery,) = await delivery_service.create(session, endpoint, [event])
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
        await delivery_service.retry_now(session, delivery)
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


webhook = WebhookService()
