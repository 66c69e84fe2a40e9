from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from feedback_api.integrity.params import DetectorParams, DetectorParamsUpdate
from feedback_api.kit.schemas import InputSchema, UpdateSchema
from feedback_api.kit.types import Bool, Float, Int, Text
from feedback_api.metrics.schemas import Bounds, Period


class FlagType(StrEnum):
    DUPLICATE = "duplicate"
    BURST = "burst"
    SPIKE = "spike"
    NEAR_DUPLICATE = "near_duplicate"
    SOLICITATION = "solicitation"
    INCENTIVE = "incentive"
    MANUAL = "manual"


class FlagStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class SubjectType(StrEnum):
    RESPONSE = "response"
    CUSTOMER = "customer"
    SOURCE = "source"
    AGENT = "agent"
    LOCATION = "location"
    SURVEY = "survey"
    TEXT = "text"


class FlagRead(BaseModel):
    id: UUID
    type: FlagType = Field(description="Which detector raised it (`manual`: a person).")
    subject_type: SubjectType = Field(description="What the finding is about.")
    subject_ref: str = Field(
        description="The agent or location ref, the survey key, `ip:<hash>` / "
        "`device:<hash>` / `key:<id>` for sources, the customer's internal id, or for "
        "responses and texts the first response's id."
    )
    strength: float = Field(
        description="0–1: how sure the detector is. An open flag at least as strong as the "
        "tenant's `exclude_threshold` keeps its responses out of the metrics."
    )
    evidence: dict[str, Any] = Field(
        description="What the detector saw: counts, windows, peer comparison with n and "
        "p-values, the matching responses' ids. Never personal data."
    )
    status: FlagStatus
    excludes: bool = Field(
        description="Whether this flag keeps its responses out of the metrics right now."
    )
    response_count: int = Field(description="Responses linked to the flag.")
    reason: str | None = Field(description="The latest decision's reason.")
    decided_by_key_id: UUID | None = Field(description="The API key that decided last.")
    decided_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Decision(BaseModel):
    status: FlagStatus
    reason: str | None
    key_id: UUID | None
    at: datetime


class FlagDetail(FlagRead):
    response_ids: list[UUID] = Field(description="The linked responses (up to 1,000).")
    decisions: list[Decision] = Field(description="Every decision on this flag, oldest first.")


Reason = Annotated[str, Text(min_length=3, max_length=2000)]


class FlagDecisionBody(InputSchema):
    reason: Reason = Field(
        description="Why; kept in the audit trail. Do not write personal data here."
    )


class ManualFlagCreate(InputSchema):
    response_ids: list[UUID] = Field(min_length=1, max_length=1000)
    reason: Reason = Field(
        description="Why these responses should not count; kept in the audit trail."
    )


class SettingsRead(BaseModel):
    exclude_threshold: float = Field(
        description="Open flags at least this strong exclude their responses (confirmed "
        "flags always do, dismissed never)."
    )
    rewards_enabled: bool = Field(
        description="Send `reward.eligible` for every valid response of an identified "
        "customer, whatever its score."
    )
    reward_interval_days: int = Field(
        description="At most one reward per customer per this many days (0: no limit)."
    )
    detectors: DetectorParams
    updated_at: datetime


class SettingsUpdate(UpdateSchema):
    exclude_threshold: Annotated[Float, Field(ge=0.5, le=1)] | SkipJsonSchema[None] = Field(
        default=None, description="0.5–1; 1 means only confirmed flags exclude."
    )
    rewards_enabled: Bool | SkipJsonSchema[None] = None
    reward_interval_days: Annotated[Int, Field(ge=0, le=3650)] | SkipJsonSchema[None] = None
    detectors: DetectorParamsUpdate | SkipJsonSchema[None] = Field(
        default=None,
        description="Any subset of the detector parameters; the others keep their values.",
    )


# --- events --------------------------------------------------------------------------------


class RewardEligible(BaseModel):
    """Deliberately without the score: rewards must not depend on it."""

    response_id: UUID
    customer: str | None = Field(description="The customer's external ref.")
    invitation_id: UUID | None
    survey: str | None
    touchpoint: str | None
    channel: str
    occurred_at: datetime


# --- report --------------------------------------------------------------------------------


class SkewRow(BaseModel):
    dimension: str = Field(description="`location` or `agent`.")
    ref: str
    kind: str
    touchpoint: str | None
    n: int
    positive_share: float = Field(description="Share of positive answers (NPS 9–10 …).")
    peer_n: int
    peer_positive_share: float
    uplift: float = Field(description="positive_share − peer_positive_share.")
    z: float
    p_value: float = Field(description="One-sided two-proportion z-test.")
    q_value: float = Field(description="Benjamini–Hochberg adjusted over all groups tested.")
    in_person_share: float = Field(description="Share of its positive answers given in person.")
    flagged: bool = Field(description="Skewed and mostly in person: a solicitation flag.")


class Uplift(BaseModel):
    in_person_n: int
    other_n: int
    in_person_nps: float | None
    other_nps: float | None
    difference: float | None = Field(description="In-person NPS minus the other channels'.")
    interval: Bounds | None = Field(description="95 % interval of the difference.")
    p_value: float | None


class TrendRow(BaseModel):
    start: datetime
    responses: int
    verified: int
    excluded: int
    flags_created: int


class Report(BaseModel):
    period: Period
    responses: int
    verified: int
    verified_share: float | None
    excluded: int = Field(description="Responses kept out of the metrics.")
    excluded_by_type: dict[str, int] = Field(
        description="Excluded responses per flag type (a response may count under several)."
    )
    flags_by_type: dict[str, dict[str, int]] = Field(
        description="Flags created in the period, per type and status."
    )
    skewed: list[SkewRow] = Field(
        description="Locations and agents significantly more positive than their peers."
    )
    in_person_uplift: Uplift = Field(description="NPS collected in person against the rest.")
    trend: list[TrendRow] = Field(description="Per week (the tenant's, from Monday).")


class ScreenFailure(BaseModel):
    """A response the screen could not process and set aside, so that the rest of its
    batch (and every other tenant's) was screened. It counts in the metrics like an
    unflagged response until it is screened."""

    response_id: UUID
    error_type: str = Field(description="The error's type, e.g. `ValueError`.")
    error: str = Field(description="The error's message (the traceback is in the worker log).")
    failed_at: datetime


class ScreenRetry(InputSchema):
    response_ids: list[UUID] | None = Field(
        default=None,
        max_length=1000,
        description="The set-aside responses to screen again; omitted: all of them.",
    )


class ScreenRetried(BaseModel):
    queued: int = Field(description="How many set-aside responses were queued again.")
