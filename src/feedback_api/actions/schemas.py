from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from feedback_api.insights.schemas import ThemeKey
from feedback_api.kit.schemas import InputSchema
from feedback_api.kit.types import Bound, Day, Float, Text
from feedback_api.metrics.schemas import Bounds
from feedback_api.responses.schemas import Channel

Title = Annotated[str, Text(min_length=1, max_length=200)]
LongText = Annotated[str, Text(max_length=5000)]
AttributeName = Annotated[str, Text(max_length=64, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
AttributeValue = Annotated[str, Text(max_length=255)]


class ActionMetric(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"
    THEME_SHARE = "theme_share"


class ActionStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    ABANDONED = "abandoned"


class ActionScope(InputSchema):
    """Which responses the action is about; every field narrows it, none: all of them."""

    theme: ThemeKey | None = Field(
        default=None,
        description="Responses mentioning this theme of the dictionary. Required for "
        "`theme_share`, whose metric is this theme's share of comments.",
    )
    touchpoint: Annotated[str, Text(max_length=100)] | None = None
    channel: Channel | None = None
    location_ref: Annotated[str, Text(max_length=255)] | None = None
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        max_length=5,
        description="A customer segment: attribute values all customers in it have, as the "
        'metrics\' `attr.<name>` filters read them (`{"tier": "gold"}`).',
    )


class ActionCreate(InputSchema):
    """A SMART improvement action. The API measures the baseline on the scope over
    `baseline_from`–`baseline_to` when it is created, and refuses an action it could not
    judge: no metric, no target, no deadline, a target that is no improvement on the
    baseline, or a baseline with too few responses to detect the change aimed for."""

    title: Title
    description: LongText | None = None
    owner: Annotated[str, Text(max_length=200)] | None = Field(
        default=None, description="Who is accountable: a person or team, in your terms."
    )
    scope: ActionScope = Field(default_factory=ActionScope)
    metric: ActionMetric = Field(
        description="What should move: `nps`, `csat`, `ces` over the scope, or "
        "`theme_share`, the share of the scope's comments that mention `scope.theme`."
    )
    target: Float = Field(
        description="The value to reach, in the metric's unit: NPS points (−100…100), CSAT "
        "percent, CES on 1–7, theme share in percent of comments (lower is better)."
    )
    deadline: Day = Field(description="When the target should be reached (after today).")
    baseline_from: Bound | None = Field(
        default=None, description="The baseline window's start (default: 90 days before now)."
    )
    baseline_to: Bound | None = Field(
        default=None, description="The baseline window's end (default: now)."
    )
    effort_days: Float | None = Field(
        default=None,
        gt=0,
        le=100_000,
        description="Estimated effort in person-days; feeds the priority matrix (low "
        "effort: at most 10 days by default).",
    )
    status: ActionStatus = ActionStatus.PLANNED
    starts_on: Day | None = Field(default=None, description="When the change starts.")
    ends_on: Day | None = Field(default=None, description="When the change was in place.")
    public: bool = Field(
        default=False, description="Listed in the tenant's public improvements feed."
    )
    public_summary: LongText | None = Field(
        default=None,
        description="What customers may read about it: what they said, what was done.",
    )


class ActionUpdate(InputSchema):
    """What may change after creation. The scope, metric and baseline stay: they are what
    the action is measured by."""

    title: Title | None = None
    description: LongText | None = None
    owner: Annotated[str, Text(max_length=200)] | None = None
    target: Float | None = None
    deadline: Day | None = None
    effort_days: Float | None = Field(default=None, gt=0, le=100_000)
    status: ActionStatus | None = None
    starts_on: Day | None = None
    ends_on: Day | None = None
    public: bool | None = None
    public_summary: LongText | None = None


class Baseline(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    period_from: datetime = Field(alias="from", description="The window's start.")
    period_to: datetime = Field(alias="to", description="The window's end (exclusive).")
    value: float | None = Field(description="The metric over the scope in the window.")
    interval: Bounds | None
    n: int = Field(description="Responses (for theme_share: comments) in the window.")
    needed_n: int = Field(
        description="Responses per period needed to detect the change from `value` to the "
        "target (two-sided 5 %, power 80 %), by the metrics' sample-size formulas."
    )


class ActionScopeRead(BaseModel):
    theme: str | None
    touchpoint: str | None
    channel: str | None
    location_ref: str | None
    attributes: dict[str, str]


class ActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    title: str
    description: str | None
    owner: str | None
    scope: ActionScopeRead
    metric: ActionMetric
    baseline: Baseline
    target: float
    deadline: date
    effort_days: float | None
    status: ActionStatus
    starts_on: date | None
    ends_on: date | None
    completed_at: datetime | None
    public: bool
    public_summary: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class ActionList(BaseModel):
    items: list[ActionRead]
    next_cursor: str | None


class CustomerToTell(BaseModel):
    ref: str = Field(description="The customer's `external_ref`, as your CRM knows them.")
    mentions: int = Field(
        description="Their responses in the scope and window that mention the theme (without "
        "a theme: that have a comment)."
    )
    last_mentioned_at: datetime = Field(description="When the latest of them was given.")
    blocked_channels: list[str] = Field(
        description="Channels they must not be contacted on (a bounce, a per-channel "
        "opt-out). Customers opted out of every channel are not listed at all."
    )


class ActionCompleted(BaseModel):
    """`action.completed`: whom to tell, and what."""

    action: ActionRead
    public_summary: str | None = Field(description="What customers may read about it.")
    customers: list[CustomerToTell] = Field(
        description="The first customers to tell (up to 500), by customer; the rest from "
        "`GET /v1/actions/{id}/customers?cursor=<next_cursor>`."
    )
    next_cursor: str | None = Field(description="Null when `customers` is the whole list.")


class Verdict(StrEnum):
    IMPROVED = "improved"
    NO_DETECTABLE_CHANGE = "no_detectable_change"
    WORSE = "worse"
    TOO_EARLY = "too_early"


class Window(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to", description="Exclusive.")
    value: float | None = Field(description="The metric in the window (null: no data).")
    interval: Bounds | None
    n: int = Field(description="Responses (theme_share: comments) in the window.")


class Change(BaseModel):
    delta: float = Field(description="after − before, in the metric's unit.")
    interval: Bounds = Field(description="95 % interval (normal, from the standard error).")
    standard_error: float
    p_value: float | None = Field(description="Two-sided; null when the error is 0.")


class ImpactRead(BaseModel):
    action_id: UUID
    metric: ActionMetric
    before: Window = Field(description="On the scope, in the baseline window.")
    after: Window = Field(
        description="On the scope, from the action's `ends_on` (else `starts_on`) to now."
    )
    change: Change | None = Field(description="after − before on the scope.")
    control: str = Field(
        description="What the control is: the rest of the tenant, or the comparison scope given."
    )
    control_before: Window
    control_after: Window
    control_change: Change | None
    difference_in_differences: Change | None = Field(
        description="The scope's change minus the control's: the action's effect, with what "
        "moved everywhere (a season, a tenant-wide upswing, regression to the mean) taken "
        "out. Its standard error combines both changes'."
    )
    theme_share_before: Window | None = Field(
        description="With a theme in the scope: its share of the scope's comments (NPS, CSAT "
        "and CES) in the baseline window, in percent. Null without a theme."
    )
    theme_share_after: Window | None
    theme_share_change: Change | None = Field(
        description="after − before, in percentage points (negative: mentioned less)."
    )
    target: float
    progress: float | None = Field(
        description="Percent of the way from the baseline to the target the after value has "
        "come (100: reached; negative: moved away)."
    )
    verdict: Verdict = Field(
        description="`too_early` while the after period holds fewer responses than the "
        "baseline's `needed_n`; then `improved` / `worse` when the interval of "
        "`difference_in_differences` lies wholly above / below 0 (for theme_share, below / "
        "above: fewer mentions is better); else `no_detectable_change`."
    )
    verdict_reason: str
