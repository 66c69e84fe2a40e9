from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from feedback_api.invitations.rules import Reason
from feedback_api.kit.batch import ItemError
from feedback_api.kit.schemas import InputSchema, UpdateSchema
from feedback_api.kit.types import (
    Attributes,
    Bool,
    ExternalRef,
    Int,
    LanguageTag,
    Slug,
    Text,
    Timestamp,
)
from feedback_api.responses.schemas import (
    FIXED_SCALES,
    SCALE_LIMIT,
    Comment,
    Kind,
    Ref,
    ShortText,
    Tags,
)

MAX_BATCH_ITEMS = 1000
MAX_TEXT = 1000
#: One-tap rating scales (the links are one per score) lie within this range.
SCALE_LOW, SCALE_HIGH = 0, 10

#: A survey's key, as `Slug` (for path and query parameters).
SURVEY_KEY_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
SURVEY_KEY_MAX = 63


class InvitationChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WECHAT = "wechat"
    APP = "app"
    WEB = "web"


# Channels that interrupt (a message arrives): quiet hours hold these back. An in-app or
# on-site prompt shows only while the person is using your product, so it is not held.
QUIET_CHANNELS = frozenset(
    {InvitationChannel.EMAIL, InvitationChannel.SMS, InvitationChannel.WECHAT}
)


class Status(StrEnum):
    SCHEDULED = "scheduled"
    SENT = "sent"
    RESPONDED = "responded"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"


class Delivery(StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    FAILED = "failed"


LocalisedText = Annotated[
    dict[LanguageTag, Annotated[str, Text(min_length=1, max_length=MAX_TEXT)]],
    Field(
        min_length=1,
        max_length=50,
        description='Text per language tag, e.g. `{"en": "…", "zh-CN": "…"}`. The '
        "customer's locale picks one (exact tag, then its language, then the tenant's "
        "locale, then the first).",
        examples=[
            {
                "en": "How likely are you to recommend us?",
                "zh-CN": "您向朋友推荐我们的可能性有多大？",
            }
        ],
    ),
]


# --- surveys ------------------------------------------------------------------------------


ScalePoint = Annotated[Int, Field(ge=SCALE_LOW, le=SCALE_HIGH)]


class _SurveyTiming(InputSchema):
    """Fields a survey may change later."""

    question: LocalisedText | SkipJsonSchema[None] = None
    follow_up: LocalisedText | None = Field(
        default=None,
        description="The open question under the scale, e.g. “What is the main reason?”",
    )
    thank_you: LocalisedText | None = Field(default=None, description="Shown after answering.")
    default_channel: InvitationChannel | SkipJsonSchema[None] = None
    touchpoint: ShortText | None = Field(
        default=None, description="Stored on responses unless the invitation names one."
    )
    delay_minutes: Annotated[Int, Field(ge=0, le=60 * 24 * 90)] | SkipJsonSchema[None] = Field(
        default=None, description="How long after the trigger to ask. Default 0."
    )
    expires_after_hours: Annotated[Int, Field(ge=1, le=24 * 90)] | SkipJsonSchema[None] = Field(
        default=None, description="How long the links stay open after the due time. Default 168."
    )
    reminder_after_hours: Annotated[Int, Field(ge=1, le=24 * 30)] | None = Field(
        default=None,
        description="Remind this long after sending (and after each reminder, up to the "
        "tenant's `max_reminders`) while unanswered. Null: no reminders (the default).",
    )
    cooldown_days: Annotated[Int, Field(ge=1, le=3650)] | None = Field(
        default=None,
        description="Ask a customer this survey at most once per this many days (on top of "
        "the tenant's frequency rule). Null: only the frequency rule.",
    )
    send_within_hours: Annotated[Int, Field(ge=1, le=24 * 30)] | SkipJsonSchema[None] = Field(
        default=None,
        description="If quiet hours would push the due time later than this, the moment has "
        "passed: the invitation is suppressed (`quiet_hours_limit`). Default 24.",
    )
    active: Bool | SkipJsonSchema[None] = Field(
        default=None, description="Inactive surveys schedule nothing new. Default true."
    )


class SurveyCreate(_SurveyTiming):
    key: Slug = Field(
        description="Your name for the survey, unique per tenant, e.g. `delivery-nps`."
    )
    kind: Kind
    scale_min: ScalePoint | None = Field(
        default=None, description="For `rating` only (required there)."
    )
    scale_max: ScalePoint | None = Field(
        default=None, description="For `rating` only (required there); above `scale_min`."
    )
    question: LocalisedText
    default_channel: InvitationChannel = InvitationChannel.EMAIL

    @model_validator(mode="after")
    def _check_scale(self) -> Self:
        if self.kind is Kind.RATING:
            if self.scale_min is None or self.scale_max is None:
                raise PydanticCustomError(
                    "scale_required", "a rating survey needs scale_min and scale_max"
                )
            if not SCALE_LOW <= self.scale_min < self.scale_max <= SCALE_HIGH:
                raise PydanticCustomError(
                    "scale_range",
                    "one-tap rating scales run within {low}–{high}, scale_min below scale_max",
                    {"low": SCALE_LOW, "high": SCALE_HIGH},
                )
        else:
            low, high = FIXED_SCALES[self.kind]
            if self.scale_min not in (None, low) or self.scale_max not in (None, high):
                raise PydanticCustomError(
                    "scale_fixed",
                    "{kind} is always on the scale {low}–{high}",
                    {"kind": self.kind.value, "low": low, "high": high},
                )
            self.scale_min, self.scale_max = low, high
        return self


class SurveyUpdate(UpdateSchema, _SurveyTiming):
    nullable = frozenset(
        {"follow_up", "thank_you", "touchpoint", "reminder_after_hours", "cooldown_days"}
    )


class SurveyRead(BaseModel):
    id: UUID
    key: str
    kind: Kind
    scale_min: int
    scale_max: int
    question: dict[str, str]
    follow_up: dict[str, str] | None
    thank_you: dict[str, str] | None
    default_channel: InvitationChannel
    touchpoint: str | None
    delay_minutes: int
    expires_after_hours: int
    reminder_after_hours: int | None
    cooldown_days: int | None
    send_within_hours: int
    active: bool
    created_at: datetime
    updated_at: datetime


# --- contact rules ------------------------------------------------------------------------


LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"
_LOCAL_TIME = re.compile(LOCAL_TIME_PATTERN)


def _local_time(value: Any) -> Any:
    # Pydantic would also read seconds since midnight (as UTC) and times with an offset.
    if isinstance(value, time) and value.tzinfo is None:
        return value
    if isinstance(value, str) and _LOCAL_TIME.fullmatch(value):
        return value
    raise PydanticCustomError(
        "local_time",
        "give a local wall-clock time as HH:MM or HH:MM:SS, without an offset, e.g. 21:00",
    )


LocalTime = Annotated[
    time,
    BeforeValidator(_local_time),
    # Not `format: time`: JSON Schema's time is RFC 3339's full-time, with an offset, and a
    # wall-clock time in the customer's zone has none.
    WithJsonSchema({"type": "string", "pattern": LOCAL_TIME_PATTERN, "maxLength": 15}),
]


class QuietHoursBody(BaseModel):
    start: LocalTime = Field(description="Local time the quiet window starts, e.g. `21:00`.")
    end: LocalTime = Field(description="Local time it ends, e.g. `09:00` (may be the next day).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.start == self.end:
            raise PydanticCustomError(
                "quiet_hours_empty", "start and end are equal; send null for no quiet hours"
            )
        return self


class ContactRulesRead(BaseModel):
    frequency_days: int = Field(
        description="Ask a customer at most once per this many days, across all surveys."
    )
    quiet_hours: QuietHoursBody | None = Field(
        description="In the customer's time zone (else the tenant's). Email, SMS and WeChat "
        "invitations due inside move to the window's end; null: none."
    )
    max_reminders: int = Field(description="Reminders per invitation at most (0: none).")
    updated_at: datetime


class ContactRulesUpdate(UpdateSchema):
    nullable = frozenset({"quiet_hours"})

    frequency_days: Annotated[Int, Field(ge=0, le=3650)] | SkipJsonSchema[None] = Field(
        default=None, description="0 turns the frequency rule off."
    )
    quiet_hours: QuietHoursBody | None = None
    max_reminders: Annotated[Int, Field(ge=0, le=5)] | SkipJsonSchema[None] = None


# --- invitations --------------------------------------------------------------------------


class InvitationContext(InputSchema):
    touchpoint: ShortText | None = None
    agent_ref: Ref | None = None
    location_ref: Ref | None = None
    attributes: Attributes = Field(default_factory=dict)


class InvitationCreate(InputSchema):
    customer: ExternalRef = Field(
        description="The customer's external ref; an unknown ref creates a bare customer."
    )
    survey: Slug = Field(description="The survey's key.")
    channel: InvitationChannel | None = Field(
        default=None, description="Default: the survey's `default_channel`."
    )
    trigger_ref: Ref | None = Field(
        default=None,
        description="What prompted it, e.g. the order id. Sending the same survey and "
        "trigger_ref again returns the first invitation (200) instead of a second one.",
    )
    triggered_at: Timestamp | None = Field(
        default=None,
        description="When the trigger happened (RFC 3339 with offset, from 1900; at most "
        "the clock skew ahead). Default: now.",
    )
    delay_seconds: Annotated[Int, Field(ge=0, le=3600 * 24 * 90)] | None = Field(
        default=None, description="Overrides the survey's `delay_minutes`."
    )
    context: InvitationContext = Field(
        default_factory=InvitationContext,
        description="Carried into the response: touchpoint, agent, location, attributes.",
    )


class InvitationBatch(InputSchema):
    items: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description=f"Up to {MAX_BATCH_ITEMS} invitations, each as for `POST /v1/invitations`.",
    )


class InvitationLinks(BaseModel):
    token: str = Field(
        description="The one-tap token (also `invitation_token` for `POST /v1/responses`)."
    )
    landing_url: str = Field(description="The answer page.")
    expires_at: datetime


class InvitationRead(BaseModel):
    id: UUID
    survey: str
    customer: str | None = Field(description="External ref; null once the customer is erased.")
    channel: InvitationChannel
    trigger_ref: str | None
    status: Status
    suppression_reason: Reason | None
    locale: str
    timezone: str
    context: dict[str, Any]
    triggered_at: datetime
    due_at: datetime | None = Field(description="When it goes out (after quiet hours).")
    expires_at: datetime | None
    sent_at: datetime | None
    reminders_sent: int
    delivery: Delivery | None
    delivery_at: datetime | None
    responded_at: datetime | None
    response_id: UUID | None
    links: InvitationLinks | None = Field(
        description="While it can be answered (scheduled, sent, responded): the token and "
        "the answer page. For in-app prompts, hand the token to the app."
    )
    created_at: datetime
    updated_at: datetime


class MessageLink(BaseModel):
    score: int
    url: str = Field(description="Opens the answer page with this score chosen.")


class Message(BaseModel):
    """What to send: the question in the customer's language and one link per score."""

    reminder: int = Field(description="0 for the invitation, 1… for reminders.")
    locale: str
    kind: Kind
    scale_min: int
    scale_max: int
    question: str
    follow_up: str | None
    links: list[MessageLink]
    landing_url: str = Field(description="The answer page without a score chosen.")
    unsubscribe_url: str = Field(description="One-click opt-out (a confirmation page).")
    expires_at: datetime


class Recipient(BaseModel):
    external_ref: str
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None


class InvitationMessage(InvitationRead):
    """`data` of `invitation.due` and `invitation.reminder_due`."""

    message: Message
    recipient: Recipient | None


class InvitationBatchItem(BaseModel):
    index: int
    status: Literal[200, 201, 422]
    id: UUID | None = None
    invitation_status: Status | None = None
    suppression_reason: Reason | None = None
    error: ItemError | None = None


class InvitationBatchResult(BaseModel):
    items: list[InvitationBatchItem]
    scheduled: int
    suppressed: int
    duplicates: int
    failed: int


class DeliveryReport(InputSchema):
    status: Delivery = Field(
        description="`bounced` blocks the channel for this customer (lift it with "
        "`DELETE /v1/customers/{ref}/unsubscribe?channel=`)."
    )


class Eligibility(BaseModel):
    eligible: bool
    reason: Reason | None = Field(description="Why not; null when eligible.")
    next_eligible_at: datetime | None = Field(
        description="When the time-bound reasons (cooldown, frequency, quiet hours) pass; "
        "null when eligible or when blocked until lifted."
    )


class UnsubscribeRequest(InputSchema):
    channel: InvitationChannel | None = Field(
        default=None, description="Opt out of one channel; omit for all invitations."
    )


class Unsubscribed(BaseModel):
    external_ref: str
    channel: str = Field(description="The channel, or `*` for all.")
    unsubscribed_at: datetime


class SigningKeyRead(BaseModel):
    kid: int
    created_at: datetime
    retires_at: datetime | None = Field(
        description="Links signed with it stop working at this time; null for keys in use."
    )
    current: bool = Field(description="Signs new links.")


class RotateRequest(InputSchema):
    grace_hours: Annotated[Int, Field(ge=0, le=24 * 90)] = Field(
        default=24 * 14,
        description="Links signed with the older keys keep working this long (0: at once, "
        "e.g. after a leak).",
    )


# --- answering ----------------------------------------------------------------------------


class Answer(InputSchema):
    # As wide as `POST /v1/responses` allows (an answer is built from such a response); the
    # survey's own scale is checked on answering.
    score: Annotated[Int, Field(ge=-SCALE_LIMIT, le=SCALE_LIMIT)] = Field(
        description="An integer on the survey's scale (`scale_min`–`scale_max`, within "
        f"{SCALE_LOW}–{SCALE_HIGH}); another is a 422 `score_off_scale`."
    )
    comment: Comment | None = None
    tags: Tags = Field(default_factory=list)
    # Consent is a JSON `true`, never "yes", "on", "1" or 1 coerced.
    publish_consent: StrictBool = Field(
        default=False,
        description="The customer allows publishing the answer (without who they are) in "
        "the public review feed; the page's checkbox, off by default.",
    )


class AnswerResult(BaseModel):
    response_id: UUID
    invitation_id: UUID
    score: int
    verified: bool
    updated: bool = Field(description="True when this replaced an earlier answer.")


class InvitationQuestion(BaseModel):
    """What a custom answer page needs to render the question."""

    asks_publish_consent: bool = Field(
        description="The tenant publishes reviews: ask whether this answer may appear in the "
        "public feed (`publish_consent`, off unless the customer ticks it)."
    )

    invitation_id: UUID
    kind: Kind
    scale_min: int
    scale_max: int
    locale: str
    question: str
    follow_up: str | None
    answer: int | None = Field(description="The current answer, if any (it can be changed).")
    expires_at: datetime


# --- stats --------------------------------------------------------------------------------


class StatsBy(StrEnum):
    SURVEY = "survey"
    CHANNEL = "channel"


class FunnelRow(BaseModel):
    group: str | None = Field(description="The survey key or channel; null for the total.")
    created: int = Field(description="Invitations asked for (scheduled + suppressed).")
    scheduled: int
    suppressed: int
    suppressed_by_reason: dict[str, int]
    sent: int
    delivered: int
    bounced: int
    responded: int
    response_rate: float | None = Field(description="responded / sent; null when none sent.")
    median_minutes_to_respond: float | None


class FunnelStats(BaseModel):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    total: FunnelRow
    groups: list[FunnelRow]

    model_config = {"populate_by_name": True}


@dataclass(frozen=True, slots=True)
class InvitationFilters:
    status: str | None = None
    survey: str | None = None
    channel: str | None = None
    customer: str | None = None
    trigger_ref: str | None = None
