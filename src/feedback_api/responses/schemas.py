from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from feedback_api.kit.batch import ItemError
from feedback_api.kit.schemas import InputSchema, UpdateSchema
from feedback_api.kit.types import Attributes, ExternalRef, Int, LanguageTag, Text, Timestamp

MAX_COMMENT_LENGTH = 5000
MAX_TAGS = 20
MAX_TAG_LENGTH = 64
MAX_BATCH_ITEMS = 1000
MAX_RATING_SPAN = 100
#: Every scale lies within ±SCALE_LIMIT, so every score does too.
SCALE_LIMIT = 1000
#: One-tap tokens are base64url (74 characters today); the limit leaves room for a new layout.
TOKEN_PATTERN = r"^[A-Za-z0-9_-]+$"
MAX_TOKEN_LENGTH = 200


class Kind(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"
    RATING = "rating"


class Channel(StrEnum):
    APP = "app"
    WEB = "web"
    EMAIL = "email"
    SMS = "sms"
    WECHAT = "wechat"
    PHONE = "phone"
    IN_PERSON = "in_person"
    QR = "qr"
    CRM = "crm"
    IMPORT = "import"
    OTHER = "other"


FIXED_SCALES: dict[Kind, tuple[int, int]] = {
    Kind.NPS: (0, 10),
    Kind.CSAT: (1, 5),
    Kind.CES: (1, 7),
}


def _normalise_tags(tags: list[str]) -> list[str]:
    # Tags are labels for counting, so "Late" and "late " are the same tag.
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(tag.strip().lower(), None)
    return [t for t in seen if t]


Tag = Annotated[str, Text(min_length=1, max_length=MAX_TAG_LENGTH)]
Tags = Annotated[
    list[Tag],
    Field(max_length=MAX_TAGS, description=f"Up to {MAX_TAGS} labels; stored lowercased, unique."),
    AfterValidator(_normalise_tags),
]
ShortText = Annotated[str, Text(min_length=1, max_length=100)]
Ref = Annotated[str, Text(min_length=1, max_length=255)]
Comment = Annotated[str, Text(max_length=MAX_COMMENT_LENGTH)]
LinkToken = Annotated[str, Text(min_length=1, max_length=MAX_TOKEN_LENGTH, pattern=TOKEN_PATTERN)]
Score = Annotated[
    Int,
    Field(ge=-SCALE_LIMIT, le=SCALE_LIMIT, description="An integer on the kind's scale."),
]
ScaleEnd = Annotated[
    Int,
    Field(
        ge=-SCALE_LIMIT,
        le=SCALE_LIMIT,
        description="Required for `rating`; implied for the other kinds.",
    ),
]


class ResponseCreate(InputSchema):
    kind: Kind = Field(
        description="`nps` (0–10), `csat` (1–5), `ces` (1–7) or `rating` (give `scale_min` "
        "and `scale_max`)."
    )
    score: Score
    scale_min: ScaleEnd | None = None
    scale_max: ScaleEnd | None = None
    comment: Comment | None = None
    tags: Tags = Field(default_factory=list)
    channel: Channel = Field(description="Where the feedback was given.")
    touchpoint: ShortText | None = Field(
        default=None, description="What was experienced, e.g. `delivery`, `installation`."
    )
    survey: ShortText | None = Field(default=None, description="Your key for the survey asked.")
    customer: ExternalRef | None = Field(
        default=None,
        description="The customer's external ref; an unknown ref creates a bare customer. "
        "Omit for anonymous feedback.",
    )
    agent_ref: Ref | None = Field(default=None, description="Who served (for routing/coaching).")
    location_ref: Ref | None = Field(default=None, description="Where, e.g. a store.")
    language: LanguageTag | None = None
    attributes: Attributes = Field(default_factory=dict)
    occurred_at: Timestamp | None = Field(
        default=None,
        description="When the feedback was given (RFC 3339 with offset, between 1900-01-01 "
        "and 2999-12-31). Defaults to now; past times are fine for imports, future times "
        "beyond a small clock skew are not.",
    )
    external_id: Ref | None = Field(
        default=None,
        description="Your id for this feedback, unique per tenant. Sending it again with the "
        "same content returns the original (200); with different content, 409.",
    )

    # Consent is a JSON `true`, never "yes", "on", "1" or 1 coerced.
    publish_consent: StrictBool = Field(
        default=False,
        description="The customer allows their score, comment (with personal data masked), "
        "touchpoint and date to be shown in the tenant's public review feed, never who they "
        "are. Off unless they said yes; ask them in their words, not in a footnote.",
    )
    invitation_token: LinkToken | None = Field(
        default=None,
        description="The invitation's one-tap token (`links.token`): the response answers "
        "that invitation and is stored as verified, with the invitation's customer, survey "
        "and context (so leave `customer`, `survey`, `external_id` and `occurred_at` out). "
        "Sending it again replaces the answer (last answer wins; 200).",
    )

    @model_validator(mode="after")
    def _check_scale(self) -> ResponseCreate:
        if self.kind is Kind.RATING:
            if self.scale_min is None or self.scale_max is None:
                raise PydanticCustomError(
                    "scale_required", "a rating needs scale_min and scale_max"
                )
            if self.scale_min >= self.scale_max:
                raise PydanticCustomError(
                    "scale_invalid",
                    "scale_min ({scale_min}) must be below scale_max ({scale_max})",
                    {"scale_min": self.scale_min, "scale_max": self.scale_max},
                )
            if self.scale_max - self.scale_min > MAX_RATING_SPAN:
                raise PydanticCustomError(
                    "scale_too_wide",
                    "a rating scale spans at most {span} points",
                    {"span": MAX_RATING_SPAN},
                )
        else:
            low, high = FIXED_SCALES[self.kind]
            if (self.scale_min not in (None, low)) or (self.scale_max not in (None, high)):
                raise PydanticCustomError(
                    "scale_fixed",
                    "{kind} is always on the scale {low}–{high}; leave scale_min and "
                    "scale_max out or give exactly these",
                    {"kind": self.kind.value, "low": low, "high": high},
                )
            self.scale_min, self.scale_max = low, high
        if not self.scale_min <= self.score <= self.scale_max:
            raise PydanticCustomError(
                "score_out_of_range",
                "score must be between {low} and {high} for {kind}",
                {"low": self.scale_min, "high": self.scale_max, "kind": self.kind.value},
            )
        return self


class ResponseUpdate(UpdateSchema):
    # `| SkipJsonSchema[None]`: omitted is fine, null is not (see UpdateSchema).
    tags: Tags | SkipJsonSchema[None] = None
    attributes: Attributes | SkipJsonSchema[None] = None


class ResponseRead(BaseModel):
    id: UUID
    kind: Kind
    score: int
    scale_min: int
    scale_max: int
    comment: str | None
    tags: list[str]
    channel: Channel
    touchpoint: str | None
    survey: str | None
    # A default only so that a stored row (which holds the customer's id, not the ref)
    # validates; `of` sets it. Output schemas list it as required all the same.
    customer: str | None = Field(
        default=None, description="External ref of the customer; null = anonymous."
    )
    agent_ref: str | None
    location_ref: str | None
    language: str | None
    attributes: dict[str, Any]
    external_id: str | None
    invitation_id: UUID | None = Field(description="The invitation this answers, if any.")
    verified: bool = Field(description="Came through a signed invitation or a trusted integration.")
    excluded: bool = Field(description="Kept out of the metrics by an integrity decision.")
    publish_consent: bool = Field(description="May be shown in the public review feed.")
    occurred_at: datetime
    received_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, response: object, customer_ref: str | None) -> Self:
        """From a stored `Response` row and its customer's external ref."""
        read = cls.model_validate(response, from_attributes=True)
        read.customer = customer_ref
        return read


class ReplyWrite(InputSchema):
    body: Annotated[str, Text(min_length=1, max_length=5000)] = Field(
        description="The public reply, as the customer and every reader of the public review "
        "feed will read it. Plain text; e-mail addresses, phone numbers and names in it are "
        "masked in the feed as in comments."
    )


class ReplyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    response_id: UUID
    body: str
    version: int = Field(description="1 when written, +1 with each edit.")
    created_at: datetime
    updated_at: datetime


class ExportFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


EXPORT_MEDIA_TYPES = {
    ExportFormat.NDJSON: "application/x-ndjson",
    ExportFormat.CSV: "text/csv; charset=utf-8",
}


class BatchRequest(InputSchema):
    items: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description=f"Up to {MAX_BATCH_ITEMS} response objects, each as for `POST /v1/responses`.",
    )


class BatchItemResult(BaseModel):
    index: int = Field(description="Position of the item in the request.")
    status: Literal[200, 201, 409, 422] = Field(
        description="201 stored; 200 already stored (same `external_id`, same content); "
        "409 `external_id` used for other content; 422 invalid."
    )
    id: UUID | None = None
    error: ItemError | None = None


class BatchResult(BaseModel):
    items: list[BatchItemResult]
    created: int
    duplicates: int
    failed: int

    @classmethod
    def of(cls, items: list[BatchItemResult]) -> Self:
        """The per-item results (in request order) with their counts."""
        return cls(
            items=items,
            created=sum(r.status == 201 for r in items),
            duplicates=sum(r.status == 200 for r in items),
            failed=sum(r.status >= 400 for r in items),
        )


@dataclass(frozen=True, slots=True)
class Client:
    """Who sent a public submission, as the request says. Hashed before storage (see the
    `provenance` slot in responses/hooks.py); the raw values are never stored."""

    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class ResponseFilters:
    kind: str | None = None
    channel: str | None = None
    touchpoint: str | None = None
    survey: str | None = None
    customer: str | None = None
    tag: str | None = None
    score_min: int | None = None
    score_max: int | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    has_comment: bool | None = None
