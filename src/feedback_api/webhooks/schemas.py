from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import httpx
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    UrlConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from feedback_api.events.catalogue import EVENT_TYPE_FILTER_PATTERN
from feedback_api.kit.schemas import InputSchema, ReadSchema, UpdateSchema
from feedback_api.kit.types import Bool, Text

MAX_URL_LENGTH = 2048
EventTypeFilter = Annotated[
    str,
    Text(max_length=64, pattern=EVENT_TYPE_FILTER_PATTERN),
    Field(description="An event type (`response.created`) or family (`ticket.*`)."),
]
Description = Annotated[str, Text(max_length=500)]
EventTypes = Annotated[
    list[EventTypeFilter],
    Field(max_length=50, description="Which events to send; empty = all."),
]

PayloadFormat = Annotated[
    Literal["standard", "delighted"],
    Field(
        description="`standard`: Standard Webhooks (our event, `webhook-signature`). "
        "`delighted`: Delighted's webhooks, for receivers written for Delighted "
        "(`survey_response.created`/`.updated` from response.created/.updated, "
        "`unsubscribe.created` from customer.unsubscribed of e-mail or of every channel; "
        "signed in `X-Delighted-Webhook-Signature`); its endpoints take only those three "
        "event types (all three when `event_types` is empty). docs/delighted.md."
    ),
]


#: Stated in the contract: `format: uri` alone admits any scheme (`urn:x`, `ftp://…`).
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://"
_URL_START = re.compile(URL_PATTERN)


def _http_url(value: Any, handler: ValidatorFunctionWrapHandler) -> AnyHttpUrl:
    """An http(s) URL the delivery client can open. Pydantic's own refusals (an empty host,
    a bad port …) and the client's (a host IDNA 2008 forbids, such as an emoji domain, which
    would fail every delivery) become `url_invalid`: rules `format: uri` cannot state."""
    if isinstance(value, str) and not _URL_START.match(value):
        raise PydanticCustomError("url_scheme", "give an http:// or https:// URL")
    try:
        url: AnyHttpUrl = handler(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] in {"url_too_long", "url_type"}:
            raise PydanticCustomError(first["type"], first["msg"]) from None
        raise PydanticCustomError(
            "url_invalid", "not a URL we can call: {reason}", {"reason": first["msg"]}
        ) from None
    try:
        httpx.URL(str(url)).host  # noqa: B018  (decoding the host is what fails)
    except (httpx.InvalidURL, ValueError) as exc:
        raise PydanticCustomError(
            "url_invalid", "not a URL we can call: {reason}", {"reason": str(exc)}
        ) from None
    return url


Url = Annotated[
    AnyHttpUrl,
    UrlConstraints(max_length=MAX_URL_LENGTH),
    WrapValidator(_http_url),
    Field(
        description="Where to POST events. `https` only (unless the operator allows http); "
        f"at most {MAX_URL_LENGTH} characters.",
        json_schema_extra={"pattern": URL_PATTERN},
    ),
]


class WebhookEndpointCreate(InputSchema):
    url: Url
    description: Description | None = None
    event_types: EventTypes = Field(default_factory=list)
    enabled: Bool = True
    format: PayloadFormat = "standard"


class WebhookEndpointUpdate(UpdateSchema):
    # `| SkipJsonSchema[None]`: omitted is fine, null is not (see UpdateSchema).
    url: Url | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    event_types: EventTypes | SkipJsonSchema[None] = None
    format: PayloadFormat | SkipJsonSchema[None] = None
    enabled: Bool | SkipJsonSchema[None] = Field(
        default=None, description="Re-enabling clears `disabled_reason`."
    )


class WebhookEndpointRead(ReadSchema):
    id: UUID
    url: str
    description: str | None
    event_types: list[str]
    format: str = Field(description="`standard` or `delighted`.")
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
