"""Detector parameters: per tenant (`PATCH /v1/integrity/settings`), every one with a default
chosen so that an honest business does not trip it. See docs/integrity.md.

Each parameter's type (with its bounds) is declared once and used by both the stored
parameters (`DetectorParams`) and the change a client sends (`DetectorParamsUpdate`), so that
the contract states every bound the screen relies on."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from feedback_api.kit.schemas import UpdateSchema
from feedback_api.kit.types import Float, Int

DuplicateWindowHours = Annotated[
    Int,
    Field(
        ge=1,
        le=24 * 90,
        description="A customer rating the same touchpoint (or survey) again within this "
        "many hours: the later ratings are duplicates.",
    ),
]
BurstWindowMinutes = Annotated[
    Int,
    Field(ge=1, le=24 * 60, description="The sliding window the burst limits count over."),
]
BurstIpMax = Annotated[
    Int,
    Field(
        ge=2,
        le=100_000,
        description="More public submissions than this from one IP hash within the window "
        "is a burst (raise it for shop kiosks on one network).",
    ),
]
BurstDeviceMax = Annotated[
    Int,
    Field(
        ge=2,
        le=100_000,
        description="More than this from one device (same IP hash and user agent).",
    ),
]
BurstKeyMax = Annotated[Int, Field(ge=2, le=1_000_000)]
BURST_KEY_MAX_HELP = (
    "More than this through one publishable key; off (null) by default, since an app's "
    "whole audience shares its key."
)
SpikeWindowHours = Annotated[
    Int, Field(ge=1, le=24, description="Bucket in which top scores are counted for spikes.")
]
SpikeHistoryDays = Annotated[
    Int,
    Field(ge=7, le=365, description="The location's or agent's own history to compare with."),
]
SpikeMinCount = Annotated[
    Int,
    Field(ge=3, le=100_000, description="Fewer top scores than this in a bucket never spike."),
]
SpikePValue = Annotated[
    Float,
    Field(
        gt=0,
        lt=0.05,
        description="A bucket spikes when this many top scores are less likely than this "
        "under the history's Poisson rate.",
    ),
]
NearDuplicateWindowDays = Annotated[
    Int, Field(ge=1, le=365, description="How far back a comment is compared with others.")
]
NearDuplicateMinTokens = Annotated[
    Int,
    Field(
        ge=3,
        le=100,
        description="Shorter comments (in words; Chinese is segmented) are never compared: "
        "many honest customers write 'great service'.",
    ),
]
NearDuplicateSimilarity = Annotated[
    Float,
    Field(ge=0.5, le=1, description="Normalised edit similarity that counts as the same text."),
]
NearDuplicateMinRing = Annotated[
    Int,
    Field(ge=2, le=1000, description="Distinct authors that make a ring of near-identical texts."),
]
SolicitationPeriodDays = Annotated[
    Int,
    Field(ge=7, le=365, description="The period a location or agent is compared with peers."),
]
SolicitationMinN = Annotated[
    Int, Field(ge=10, le=100_000, description="Groups with fewer responses are not tested.")
]
SolicitationFdr = Annotated[
    Float,
    Field(
        gt=0,
        le=0.2,
        description="Benjamini–Hochberg false discovery rate over all groups tested at once.",
    ),
]
SolicitationMinUplift = Annotated[
    Float,
    Field(
        gt=0,
        le=1,
        description="The group's positive share must exceed its peers' by at least this.",
    ),
]
SolicitationInPersonShare = Annotated[
    Float,
    Field(
        ge=0,
        le=1,
        description="A skewed group is flagged when at least this share of its positive "
        "answers, and at least twice its peers' share, were collected in person.",
    ),
]


class DetectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_window_hours: DuplicateWindowHours = 24
    burst_window_minutes: BurstWindowMinutes = 10
    burst_ip_max: BurstIpMax = 30
    burst_device_max: BurstDeviceMax = 5
    burst_key_max: BurstKeyMax | None = Field(None, description=BURST_KEY_MAX_HELP)
    spike_window_hours: SpikeWindowHours = 1
    spike_history_days: SpikeHistoryDays = 28
    spike_min_count: SpikeMinCount = 15
    spike_p_value: SpikePValue = 1e-6
    near_duplicate_window_days: NearDuplicateWindowDays = 14
    near_duplicate_min_tokens: NearDuplicateMinTokens = 6
    near_duplicate_similarity: NearDuplicateSimilarity = 0.9
    near_duplicate_min_ring: NearDuplicateMinRing = 3
    solicitation_period_days: SolicitationPeriodDays = 28
    solicitation_min_n: SolicitationMinN = 30
    solicitation_fdr: SolicitationFdr = 0.01
    solicitation_min_uplift: SolicitationMinUplift = 0.10
    solicitation_in_person_share: SolicitationInPersonShare = 0.25


class DetectorParamsUpdate(UpdateSchema):
    """Any subset of `DetectorParams`; omitted parameters keep their values. Only
    `burst_key_max` may be null (turns that limit off)."""

    nullable = frozenset({"burst_key_max"})

    duplicate_window_hours: DuplicateWindowHours | SkipJsonSchema[None] = None
    burst_window_minutes: BurstWindowMinutes | SkipJsonSchema[None] = None
    burst_ip_max: BurstIpMax | SkipJsonSchema[None] = None
    burst_device_max: BurstDeviceMax | SkipJsonSchema[None] = None
    burst_key_max: BurstKeyMax | None = Field(None, description=BURST_KEY_MAX_HELP)
    spike_window_hours: SpikeWindowHours | SkipJsonSchema[None] = None
    spike_history_days: SpikeHistoryDays | SkipJsonSchema[None] = None
    spike_min_count: SpikeMinCount | SkipJsonSchema[None] = None
    spike_p_value: SpikePValue | SkipJsonSchema[None] = None
    near_duplicate_window_days: NearDuplicateWindowDays | SkipJsonSchema[None] = None
    near_duplicate_min_tokens: NearDuplicateMinTokens | SkipJsonSchema[None] = None
    near_duplicate_similarity: NearDuplicateSimilarity | SkipJsonSchema[None] = None
    near_duplicate_min_ring: NearDuplicateMinRing | SkipJsonSchema[None] = None
    solicitation_period_days: SolicitationPeriodDays | SkipJsonSchema[None] = None
    solicitation_min_n: SolicitationMinN | SkipJsonSchema[None] = None
    solicitation_fdr: SolicitationFdr | SkipJsonSchema[None] = None
    solicitation_min_uplift: SolicitationMinUplift | SkipJsonSchema[None] = None
    solicitation_in_person_share: SolicitationInPersonShare | SkipJsonSchema[None] = None
