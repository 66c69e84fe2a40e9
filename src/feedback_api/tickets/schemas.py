from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, ClassVar
from uuid import UUID

import holidays
from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from feedback_api.kit.schemas import InputSchema, ReadSchema, UpdateSchema
from feedback_api.kit.types import Bool, ExternalRef, Int, Text, TimeZoneName, check_date_range
from feedback_api.metrics.schemas import Period
from feedback_api.responses.schemas import Channel, Kind
from feedback_api.tickets.rules import Priority
from feedback_api.tickets.states import Status

Name = Annotated[str, Text(min_length=1, max_length=200)]
Team = Annotated[
    str, Text(min_length=1, max_length=100), Field(description="A team name, e.g. `care`.")
]
Assignee = Annotated[
    str,
    Text(min_length=1, max_length=255),
    Field(description="Your id for the person, e.g. an email."),
]
Ref = Annotated[str, Text(min_length=1, max_length=255)]
#: A ticket's touchpoint is stored in 100 characters, as on responses.
Touchpoint = Annotated[str, Text(min_length=1, max_length=100)]
POLICY_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
PolicyKey = Annotated[
    str,
    Text(min_length=1, max_length=63, pattern=POLICY_KEY_PATTERN),
    Field(description="The policy's key, e.g. `standard`."),
]
RootCause = Annotated[
    str,
    Text(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$"),
    Field(
        description="Your root-cause category, e.g. `delivery_delay` (lowercase, digits, `_.-`)."
    ),
]
Subject = Annotated[str, Text(min_length=1, max_length=300)]
LongText = Annotated[str, Text(min_length=1, max_length=10_000)]
Keyword = Annotated[str, Text(min_length=1, max_length=100)]
AttributeName = Annotated[str, Text(max_length=64)]
AttributeValue = Annotated[str, Text(max_length=255)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_PATTERN = r"^(mon|tue|wed|thu|fri|sat|sun)$"
HHMM_PATTERN = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"
MAX_SPANS_PER_DAY = 6
Weekday = Annotated[str, Text(max_length=3, pattern=WEEKDAY_PATTERN)]
HHMM = Annotated[str, Text(max_length=5, pattern=HHMM_PATTERN)]
Span = tuple[HHMM, HHMM]
Closure = Annotated[date, AfterValidator(check_date_range)]
Score = Annotated[Int, Field(ge=-1000, le=1000)]


# --- SLA policies -----------------------------------------------------------------------


class Target(InputSchema):
    first_response_minutes: Int = Field(
        ge=1, le=525_600, description="Working minutes until the first reply is due."
    )
    resolution_minutes: Int = Field(
        ge=1, le=525_600, description="Working minutes until resolution is due."
    )


class Targets(InputSchema):
    """One target per priority; all four are required."""

    urgent: Target
    high: Target
    normal: Target
    low: Target


class BusinessHours(InputSchema):
    """When the clock runs. Public holidays come from the `holidays` package for `country`
    (and `subdivision`), including make-up working days on weekends (e.g. China's 调休),
    which keep Monday's hours."""

    timezone: TimeZoneName | None = Field(
        default=None, description="Default: the tenant's time zone."
    )
    weekly: dict[Weekday, Annotated[list[Span], Field(max_length=MAX_SPANS_PER_DAY)]] = Field(
        description='Open hours per weekday (`mon` … `sun`), e.g. `{"mon": [["09:00", '
        '"18:00"]]}`; `24:00` is midnight at the end of the day. Days left out are closed. '
        f"At most {MAX_SPANS_PER_DAY} spans a day, in order, not overlapping.",
        examples=[{"mon": [["09:00", "12:00"], ["13:00", "18:00"]]}],
        json_schema_extra={"additionalProperties": False},
    )
    country: Annotated[str, Text(max_length=3, pattern=r"^[A-Z]{2,3}$")] | None = Field(
        default=None,
        description="ISO 3166 country for public holidays, e.g. `CN`, `DE`.",
    )
    subdivision: Annotated[str, Text(min_length=1, max_length=32)] | None = Field(
        default=None, description="The country's subdivision as `holidays` names it, e.g. `BY`."
    )
    closures: list[Closure] = Field(
        default_factory=list, max_length=366, description="Your own closed days."
    )

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        for day, spans in value.items():
            last = "00:00"
            for start, end in spans:
                if not start < end:
                    raise PydanticCustomError(
                        "empty_span",
                        "{day}: a span must end after it starts ({start}–{end}); "
                        "24:00 can only end one",
                        {"day": day, "start": start, "end": end},
                    )
                if start < last:
                    raise PydanticCustomError(
                        "overlapping_spans",
                        "{day}: spans must be in order and not overlap",
                        {"day": day},
                    )
                last = end
        if not any(value.values()):
            raise PydanticCustomError("no_open_hours", "at least one open span is needed")
        return value

    @model_validator(mode="after")
    def _country(self) -> BusinessHours:
        if self.country is None:
            if self.subdivision is not None:
                raise PydanticCustomError(
                    "subdivision_needs_country", "a subdivision needs a country"
                )
            return self
        supported = holidays.list_supported_countries()
        if self.country not in supported:
            raise PydanticCustomError(
                "unknown_country",
                "no public holidays known for country {country}",
                {"country": self.country},
            )
        if self.subdivision is not None and self.subdivision not in supported[self.country]:
            raise PydanticCustomError(
                "unknown_subdivision",
                "{country} has no subdivision {subdivision}",
                {"country": self.country, "subdivision": self.subdivision},
            )
        return self


def parse_hhmm(value: str) -> time:
    return time(0) if value == "24:00" else time.fromisoformat(value)


class Escalation(InputSchema):
    raise_priority: Bool = Field(
        default=True, description="On a breach, raise the priority one step (low → … → urgent)."
    )
    team: Team | None = Field(
        default=None, description="On a breach, hand the ticket to this team."
    )


class SlaPolicyCreate(InputSchema):
    key: PolicyKey
    name: Name
    targets: Targets
    business_hours: BusinessHours | None = Field(
        default=None, description="null: the clocks count calendar time (24/7)."
    )
    warn_at_percent: Int = Field(
        default=80, ge=1, le=99, description="Emit `ticket.sla_warning` at this share used."
    )
    escalation: Escalation = Field(default_factory=Escalation)
    is_default: Bool = Field(
        default=False, description="Used by rules without a policy and by manual tickets."
    )


class SlaPolicyUpdate(UpdateSchema):
    nullable: ClassVar[frozenset[str]] = frozenset({"business_hours"})

    name: Name | SkipJsonSchema[None] = None
    targets: Targets | SkipJsonSchema[None] = None
    business_hours: BusinessHours | None = Field(
        default=None, description="Set null to count calendar time."
    )
    warn_at_percent: Annotated[Int, Field(ge=1, le=99)] | SkipJsonSchema[None] = None
    escalation: Escalation | SkipJsonSchema[None] = None
    is_default: (
        Annotated[
            Bool,
            Field(
                description="Only `true`: make this the default.",
                json_schema_extra={"const": True},
            ),
        ]
        | (SkipJsonSchema[None])
    ) = None

    @field_validator("is_default")
    @classmethod
    def _only_true(cls, value: bool | None) -> bool | None:
        if value is False:
            raise PydanticCustomError(
                "default_only_true",
                "is_default can only be set to true (on another policy, to move the default)",
            )
        return value


class SlaPolicyRead(ReadSchema):
    id: UUID
    key: str
    name: str
    targets: Targets
    business_hours: BusinessHours | None
    warn_at_percent: int
    escalation: Escalation
    is_default: bool
    created_at: datetime
    updated_at: datetime


# --- Rules ------------------------------------------------------------------------------


class RuleConditions(InputSchema):
    """All given conditions must hold; empty ones match everything."""

    kinds: list[Kind] = Field(default_factory=list, max_length=4)
    score_min: Score | None = None
    score_max: Score | None = None
    channels: list[Channel] = Field(default_factory=list, max_length=10)
    touchpoints: list[Ref] = Field(default_factory=list, max_length=100)
    tags_any: list[Ref] = Field(
        default_factory=list, max_length=100, description="The response has any of these tags."
    )
    keywords_any: list[Keyword] = Field(
        default_factory=list,
        max_length=100,
        description="The comment contains any of these, ignoring case (works for Chinese).",
    )
    agent_refs: list[Ref] = Field(default_factory=list, max_length=1000)
    location_refs: list[Ref] = Field(default_factory=list, max_length=1000)
    customer_attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        max_length=20,
        description='The customer\'s attributes equal these, compared as text (`"true"`, `"3"`).',
        json_schema_extra={"additionalProperties": False},  # keys outside the pattern
    )

    @model_validator(mode="after")
    def _range(self) -> RuleConditions:
        if (
            self.score_min is not None
            and self.score_max is not None
            and self.score_min > self.score_max
        ):
            raise PydanticCustomError(
                "score_range",
                "score_min ({score_min}) is above score_max ({score_max})",
                {"score_min": self.score_min, "score_max": self.score_max},
            )
        return self


class RuleAction(InputSchema):
    priority: Priority = Priority.NORMAL
    team: Team | None = None
    assignee: Assignee | None = None
    sla_policy: PolicyKey | None = Field(
        default=None, description="The policy's key; null: the tenant's default policy."
    )


class TicketRuleCreate(InputSchema):
    name: Name
    position: Int = Field(
        ge=0, le=1_000_000, description="Rules are tried in ascending position; first match wins."
    )
    enabled: Bool = True
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    action: RuleAction = Field(default_factory=RuleAction)


class TicketRuleUpdate(UpdateSchema):
    name: Name | SkipJsonSchema[None] = None
    position: Annotated[Int, Field(ge=0, le=1_000_000)] | SkipJsonSchema[None] = None
    enabled: Bool | SkipJsonSchema[None] = None
    conditions: RuleConditions | SkipJsonSchema[None] = None
    action: RuleAction | SkipJsonSchema[None] = None


class TicketRuleRead(BaseModel):
    id: UUID
    name: str
    position: int
    enabled: bool
    conditions: RuleConditions
    action: RuleAction
    created_at: datetime
    updated_at: datetime


# --- Tickets ----------------------------------------------------------------------------


class ClockName(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class SlaClockRead(BaseModel):
    target_seconds: int = Field(description="The budget, in working seconds.")
    used_seconds: int = Field(description="Working seconds used so far (up to now if running).")
    state: str = Field(description="`running`, `paused` (waiting on the customer) or `stopped`.")
    due_at: datetime | None = Field(description="When the budget runs out; null unless running.")
    stopped_at: datetime | None = Field(
        description="First response: when the first reply (or resolution) went out. "
        "Resolution: when it was resolved."
    )
    warned_at: datetime | None
    breached_at: datetime | None


class FollowUpRead(BaseModel):
    solved: bool
    comment: str | None
    recorded_at: datetime


class TicketRead(BaseModel):
    id: UUID
    status: Status
    priority: Priority
    team: str | None
    assignee: str | None
    customer: str | None = Field(description="The customer's `external_ref`.")
    touchpoint: str | None
    channel: str | None
    agent_ref: str | None
    location_ref: str | None
    subject: str | None
    description: str | None
    origin: str = Field(description="`response` (opened by a rule) or `manual`.")
    response_id: UUID | None = Field(description="The response that opened it.")
    rule_id: UUID | None
    sla_policy: str = Field(description="The SLA policy's key.")
    first_response: SlaClockRead
    resolution: SlaClockRead
    breached: bool = Field(description="Either clock has breached.")
    escalation_level: int
    repeat_count: int = Field(description="Complaints after a resolution that reopened it.")
    reopened_count: int
    root_cause: str | None
    resolution_summary: str | None = Field(description="Customer-facing: what was done.")
    follow_up: FollowUpRead | None = Field(description="The customer's answer to “solved?”.")
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TicketCreate(InputSchema):
    customer: ExternalRef | None = Field(
        default=None, description="The customer's `external_ref`; created if new."
    )
    touchpoint: Touchpoint | None = None
    channel: Channel | None = Field(default=None, description="Where the complaint came in.")
    subject: Subject | None = None
    description: LongText | None = None
    priority: Priority = Priority.NORMAL
    team: Team | None = None
    assignee: Assignee | None = None
    agent_ref: Ref | None = None
    location_ref: Ref | None = None
    sla_policy: PolicyKey | None = Field(default=None, description="Default: the tenant's.")


class TicketUpdate(UpdateSchema):
    status: Status | SkipJsonSchema[None] = Field(
        default=None,
        description="open → acknowledged → in_progress ⇄ waiting_on_customer → resolved → "
        "closed; resolved or closed → reopened. Anything else is a 409 `illegal_transition`.",
    )
    priority: Priority | SkipJsonSchema[None] = Field(
        default=None, description="Running clocks take the new priority's targets."
    )
    team: Team | SkipJsonSchema[None] = None
    assignee: Assignee | SkipJsonSchema[None] = None
    subject: Subject | SkipJsonSchema[None] = None
    root_cause: RootCause | SkipJsonSchema[None] = Field(
        default=None, description="Required (here or before) to resolve."
    )
    resolution_summary: LongText | SkipJsonSchema[None] = Field(
        default=None,
        description="Required (here or before) to resolve. Customer-facing: sent in "
        "`ticket.resolved` so your CRM can tell the customer what was done.",
    )


@dataclass(frozen=True, slots=True)
class TicketFilters:
    status: str | None = None
    priority: str | None = None
    team: str | None = None
    assignee: str | None = None
    touchpoint: str | None = None
    customer: str | None = None  # external_ref
    breached: bool | None = None
    due_before: datetime | None = None


class NoteCreate(InputSchema):
    body: LongText
    author: Assignee | None = None


class ReplyCreate(InputSchema):
    body: LongText = Field(
        description="What the customer is told. Deliver it yourself from `ticket.replied`."
    )
    author: Assignee | None = None


class FollowUpCreate(InputSchema):
    solved: Bool = Field(description="The customer's answer to “Is your problem solved?”.")
    comment: LongText | None = None
    response_id: UUID | None = Field(
        default=None, description="A stored response carrying the answer, linked to the ticket."
    )


class TimelineEntryRead(ReadSchema):
    id: UUID
    type: str = Field(
        description="`created`, `note`, `reply`, `status_changed`, `assigned`, "
        "`priority_changed`, `response_attached`, `repeat_complaint`, `sla_warning`, "
        "`sla_breached`, `escalated`, `follow_up`."
    )
    actor_key_id: UUID | None = Field(description="The API key that acted; null: the system.")
    author: str | None
    body: str | None
    data: dict[str, Any]
    created_at: datetime


class ExportedTicket(TicketRead):
    """A ticket in a customer's data export, with everything said in it."""

    timeline: list[TimelineEntryRead]


class TicketEventData(TicketRead):
    """`data` of `ticket.*` events: the ticket, and the timeline entry that caused it."""

    entry: TimelineEntryRead | None = None


# --- Statistics -------------------------------------------------------------------------


class StatsBy(StrEnum):
    TEAM = "team"
    TOUCHPOINT = "touchpoint"
    PRIORITY = "priority"
    AGENT_REF = "agent_ref"


class TicketStatsGroup(BaseModel):
    key: str | None = Field(
        description="The group's value; null for tickets without one, or for `other` (small "
        "agent groups pooled)."
    )
    other: bool = Field(default=False, description="Pooled small groups (`by=agent_ref`).")
    suppressed: bool = Field(
        default=False, description="Fewer tickets than the tenant's minimum n: numbers withheld."
    )
    opened: int
    resolved: int | None
    first_response_median_seconds: float | None
    first_response_p90_seconds: float | None
    resolution_median_seconds: float | None
    resolution_p90_seconds: float | None
    first_response_within_sla_pct: float | None = Field(
        description="Of tickets whose first-response clock has an outcome (replied or breached)."
    )
    resolution_within_sla_pct: float | None = Field(
        description="Of tickets whose resolution clock has an outcome (resolved or breached)."
    )
    breached: int | None = Field(description="Tickets with either clock breached.")
    repeat_complaint_pct: float | None = Field(
        description="Of resolved tickets, those a repeat complaint reopened."
    )
    contacted_pct: float | None = Field(
        description="Of tickets opened by an unhappy response, those whose customer got a reply."
    )
    follow_up_solved_pct: float | None = Field(
        description="Of tickets with a follow-up answer, those the customer called solved."
    )


class TicketStats(BaseModel):
    period: Period
    by: StatsBy | None
    min_n: int | None = Field(description="Groups below this are suppressed (`by=agent_ref`).")
    groups: list[TicketStatsGroup]
