"""Webhooks in Delighted's shape, for receivers written for Delighted: an endpoint with
`format: delighted` gets `{"event_type", "event_id", "event_data"}` with the person
expanded, signed as Delighted signed them: `X-Delighted-Webhook-Signature: sha256=<hex
HMAC-SHA256 of the raw body>`, keyed with the endpoint's secret (the whole `whsec_…`
string, as the receiver stores it)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.compat.delighted import people
from feedback_api.compat.delighted.schemas import SurveyResponse
from feedback_api.customers.service import customer as customer_service
from feedback_api.events.catalogue import EventType
from feedback_api.models import Customer, Event
from feedback_api.webhooks.formats import WebhookFormat

logger = structlog.get_logger("feedback_api.compat.delighted")

#: Our event type → Delighted's.
EVENT_TYPES = {
    EventType.RESPONSE_CREATED.value: "survey_response.created",
    EventType.RESPONSE_UPDATED.value: "survey_response.updated",
    EventType.CUSTOMER_UNSUBSCRIBED.value: "unsubscribe.created",
}


def wants(event: Event) -> bool:
    """Delighted's unsubscribes were of e-mail: an opt-out of SMS alone is not one."""
    if event.type == EventType.CUSTOMER_UNSUBSCRIBED:
        return event.data.get("channel") in ("*", "email")
    return event.type in EVENT_TYPES


def _unix(value: Any) -> int | None:
    return int(datetime.fromisoformat(value).timestamp()) if isinstance(value, str) else None


def _ref(event: Event) -> str | None:
    key = "external_ref" if event.type == EventType.CUSTOMER_UNSUBSCRIBED else "customer"
    ref = event.data.get(key)
    return ref if isinstance(ref, str) else None


def _data(event: Event, customer: Customer | None) -> dict[str, Any]:
    data = event.data
    person = people.person(customer).model_dump() if customer is not None else None
    if event.type == EventType.CUSTOMER_UNSUBSCRIBED:
        return {
            "person_id": person["id"] if person else None,
            "email": person["email"] if person else None,
            "name": person["name"] if person else None,
            "unsubscribed_at": _unix(data.get("unsubscribed_at")),
            "person": person,
        }
    if event.type in (EventType.RESPONSE_CREATED, EventType.RESPONSE_UPDATED):
        return SurveyResponse.model_validate(
            {
                "id": data["id"],
                "person": person,
                "survey_type": data["kind"],
                "score": data["score"],
                "comment": data.get("comment"),
                "created_at": _unix(data["occurred_at"]),
                "updated_at": _unix(data["updated_at"]),
                "person_properties": data.get("attributes") or {},
                "tags": data.get("tags") or [],
            }
        ).model_dump()
    return dict(data)  # webhook.test, sent as it is


async def shape(session: AsyncSession, tenant_id: UUID, events: Sequence[Event]) -> dict[UUID, str]:
    refs = {ref for ref in map(_ref, events) if ref is not None}
    customers = await customer_service.by_refs(session, tenant_id, refs)
    bodies = {}
    for event in events:
        ref = _ref(event)
        try:
            data = _data(event, customers.get(ref) if ref else None)
        except (KeyError, TypeError, ValueError, ValidationError):
            # An event this format cannot read (an older or damaged one): left out, its
            # delivery fails unsent, the others go.
            logger.error("delighted_webhook_unshapeable", event_id=str(event.id), exc_info=True)
            continue
        body = {
            "event_type": EVENT_TYPES.get(event.type, event.type),
            "event_id": str(event.id),
            "event_data": data,
        }
        bodies[event.id] = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return bodies


def sign(secret: str, body: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {"X-Delighted-Webhook-Signature": f"sha256={digest}"}


DELIGHTED = WebhookFormat(event_types=tuple(EVENT_TYPES), wants=wants, shape=shape, sign=sign)
