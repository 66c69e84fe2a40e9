"""What the public feeds show: no personal data, no internal ids, times to the day."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from feedback_api.actions.schemas import ActionMetric, ActionStatus, Verdict
from feedback_api.metrics.schemas import Bounds


class ReviewKind(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"
    RATING = "rating"


class FeedTenant(BaseModel):
    name: str = Field(description="The tenant's name, as the feed's heading shows it.")
    slug: str


class Scale(BaseModel):
    min: int
    max: int


class PublicReply(BaseModel):
    body: str = Field(description="The tenant's public reply, with personal data masked.")
    date: dt.date = Field(description="The day the reply was last written (tenant's time zone).")


class PublicReview(BaseModel):
    id: str = Field(
        description="Opaque and stable: the same review keeps it. Not the response's id, "
        "and nothing leads from one to the other."
    )
    kind: ReviewKind
    score: int
    scale: Scale
    comment: str | None = Field(
        description="The customer's comment with e-mail addresses, phone numbers, links, "
        "@handles, long numbers and names replaced by `[email]`, `[phone]`, `[link]`, "
        "`[handle]`, `[number]`, `[name]` (docs/public-feeds.md)."
    )
    touchpoint: str | None = Field(description="What the review is about, e.g. `delivery`.")
    date: dt.date = Field(description="The day of the experience, in the tenant's time zone.")
    reply: PublicReply | None


class ReviewFeed(BaseModel):
    tenant: FeedTenant
    items: list[PublicReview]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page. A page may "
        "hold fewer than `limit` items (with `detailed=true`) and still have a next one."
    )


class PublicTheme(BaseModel):
    key: str
    label: str | None = Field(description="The theme's name in the page's language, if set.")


class CustomersSaid(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    mentions: int | None = Field(
        description="Comments that mentioned the theme in the baseline window (null: the "
        "action has no theme)."
    )
    responses: int = Field(
        description="Responses (for `theme_share`: comments) in the baseline window."
    )
    period_from: dt.date = Field(alias="from")
    period_to: dt.date = Field(alias="to", description="The baseline window's last day.")


class Measurement(BaseModel):
    value: float | None = Field(description="The metric (null: no data).")
    n: int = Field(description="Responses (for `theme_share`: comments) it is measured on.")


class Result(BaseModel):
    after: Measurement = Field(description="On the action's scope since the change.")
    change: float | None = Field(description="after − baseline, in the metric's unit.")
    interval: Bounds | None = Field(description="95 % interval of the change.")
    verdict: Verdict = Field(
        description="Against a control (the rest of the tenant): `improved`, `worse`, "
        "`no_detectable_change`, or `too_early` while too few responses came after."
    )


class PublicImprovement(BaseModel):
    id: str = Field(description="Opaque and stable; not the action's id.")
    title: str
    summary: str | None = Field(description="What customers said and what was done (masked).")
    status: ActionStatus = Field(description="`in_progress` or `done`.")
    theme: PublicTheme | None
    customers_said: CustomersSaid
    metric: ActionMetric
    baseline: Measurement
    target: float
    result: Result | None = Field(description="Null when it could not be measured.")
    started_on: dt.date | None
    completed_on: dt.date | None = Field(description="The day it was done (tenant's time zone).")


class ImprovementFeed(BaseModel):
    tenant: FeedTenant
    items: list[PublicImprovement]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
