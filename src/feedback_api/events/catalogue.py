"""Every event type the service emits, in one place. Later features add theirs here.

`data` is always the resource as the API shows it at that moment (for `*.deleted`, as it was
just before). `schema_version` rises when a type's `data` changes incompatibly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# A filter on event types: one type (`response.created`) or a family (`ticket.*`).
EVENT_TYPE_FILTER_PATTERN = r"^[a-z_]+\.([a-z_]+|\*)$"


class EventType(StrEnum):
    RESPONSE_CREATED = "response.created"
    RESPONSE_UPDATED = "response.updated"
    RESPONSE_DELETED = "response.deleted"
    CUSTOMER_ERASED = "customer.erased"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"
    WEBHOOK_TEST = "webhook.test"


@dataclass(frozen=True, slots=True)
class EventSpec:
    schema_version: int
    description: str


CATALOGUE: dict[EventType, EventSpec] = {
    EventType.RESPONSE_CREATED: EventSpec(1, "A response was stored. `data`: the response."),
    EventType.RESPONSE_UPDATED: EventSpec(
        1, "A response's tags or attributes changed. `data`: the response after the change."
    ),
    EventType.RESPONSE_DELETED: EventSpec(
        1, "A response was deleted. `data`: the response as it was."
    ),
    EventType.CUSTOMER_ERASED: EventSpec(
        1,
        "A customer was erased on request. `data`: `external_ref` and `erased_at` only, so "
        "you can erase them downstream too.",
    ),
    EventType.WEBHOOK_ENDPOINT_DISABLED: EventSpec(
        1,
        "We turned a webhook endpoint off (410 Gone, or failing for 5 days). `data`: the "
        "endpoint, with `disabled_reason`.",
    ),
    EventType.WEBHOOK_TEST: EventSpec(
        1, "Sent by `POST /v1/webhook-endpoints/{id}/test` to that endpoint only."
    ),
}
