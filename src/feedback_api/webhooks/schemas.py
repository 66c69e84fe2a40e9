from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AnyHttpUrl, BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from feedback_api.events.catalogue import EVENT_TYPE_FILTER_PATTERN
from feedback_api.kit.schemas import InputSchema, ReadSchema, UpdateSchema

EventTypeFilter = Annotated[
    str,
    Field(
        max_length=64,
        pattern=EVENT_TYPE_FILTER_PATTERN,
        description="An event type (`response.created`) or family (`ticket.*`).",
    ),
]
EventTypes = Annotated[
    list[EventTypeFilter],
    Field(max_length=50, description="Which events to send; empty = all."),
]
Url = Annotated[
    AnyHttpUrl,
    Field(description="Where to POST events. `https` only (unless the operator allows http)."),
]


class WebhookEndpointCreate(InputSchema):
    url: Url
    description: str | None = Field(default=None, max_length=500)
    event_types: EventTypes = Field(default_factory=list)
    enabled: bool = True


class WebhookEndpointUpdate(UpdateSchema):
    # `| SkipJsonSchema[None]`: omitted is fine, null is not (see UpdateSchema).
    url: Url | SkipJsonSchema[None] = None
    description: Annotated[str, Field(max_length=500)] | SkipJsonSchema[None] = None
    event_types: EventTypes | SkipJsonSchema[None] = None
    enabled: bool | SkipJsonSchema[None] = Field(
        default=None, description="Re-enabling clears `disabled_reason`."
    )


class WebhookEndpointRead(ReadSchema):
    id: UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why we turned it off, if we did.")
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(description="`whsec_…` signing secret. Shown only here; store it now.")


class SecretRotated(BaseModel):
    secret: str = Field(description="The new `whsec_…` secret. Shown only here.")
    previous_secret_expires_at: datetime = Field(
        description="Until then each delivery carries signatures by both secrets."
    )


class WebhookAttemptRead(ReadSchema):
    attempted_at: datetime
    status_code: int | None = Field(description="null when no HTTP answer came back.")
    error: str | None
    latency_ms: int
    response_body: str | None = Field(description="The first 1,024 characters.")


class WebhookDeliveryRead(ReadSchema):
    id: UUID = Field(description="Also the `webhook-id` header: the same on every retry.")
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: str = Field(description="`pending`, `succeeded` or `failed` (gave up).")
    attempt_count: int
    last_status_code: int | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    recent_attempts: list[WebhookAttemptRead] = Field(description="Newest first, up to 10.")
