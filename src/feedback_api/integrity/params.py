"""Detector parameters: per tenant (`PUT /v1/integrity/settings`), every one with a default
chosen so that an honest business does not trip it. See docs/integrity.md."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DetectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_window_hours: int = Field(
        24,
        ge=1,
        le=24 * 90,
        description="A customer rating the same touchpoint (or survey) again within this "
        "many hours: the later ratings are duplicates.",
    )
    burst_window_minutes: int = Field(
        10, ge=1, le=24 * 60, description="The sliding window the burst limits count over."
    )
    burst_ip_max: int = Field(
        30,
        ge=2,
        le=100_000,
        description="More public submissions than this from one IP hash within the window "
        "is a burst (raise it for shop kiosks on one network).",
    )
    burst_device_max: int = Field(
        5,
        ge=2,
        le=100_000,
        description="More than this from one device (same IP hash and user agent).",
    )
    burst_key_max: int | None = Field(
        None,
        ge=2,
        le=1_000_000,
        description="More than this through one publishable key; off by default, since an "
        "app's whole audience shares its key.",
    )
    spike_window_hours: int = Field(
        1, ge=1, le=24, description="Bucket in which top scores are counted for spikes."
    )
    spike_history_days: int = Field(
        28, ge=7, le=365, description="The location's or agent's own history to compare with."
    )
    spike_min_count: int = Field(
        15, ge=3, le=100_000, description="Fewer top scores than this in a bucket never spike."
    )
    spike_p_value: float = Field(
        1e-6,
        gt=0,
        lt=0.05,
        description="A bucket spikes when this many top scores are less likely than this "
        "under the history's Poisson rate.",
    )
    near_duplicate_window_days: int = Field(
        14, ge=1, le=365, description="How far back a comment is compared with others."
    )
    near_duplicate_min_tokens: int = Field(
        6,
        ge=3,
        le=100,
        description="Shorter comments (in words; Chinese is segmented) are never compared: "
        "many honest customers write 'great service'.",
    )
    near_duplicate_similarity: float = Field(
        0.9, ge=0.5, le=1, description="Normalised edit similarity that counts as the same text."
    )
    near_duplicate_min_ring: int = Field(
        3, ge=2, le=1000, description="Distinct authors that make a ring of near-identical texts."
    )
    solicitation_period_days: int = Field(
        28, ge=7, le=365, description="The period a location or agent is compared with peers."
    )
    solicitation_min_n: int = Field(
        30, ge=10, le=100_000, description="Groups with fewer responses are not tested."
    )
    solicitation_fdr: float = Field(
        0.01,
        gt=0,
        le=0.2,
        description="Benjamini–Hochberg false discovery rate over all groups tested at once.",
    )
    solicitation_min_uplift: float = Field(
        0.10,
        gt=0,
        le=1,
        description="The group's positive share must exceed its peers' by at least this.",
    )
    solicitation_in_person_share: float = Field(
        0.25,
        ge=0,
        le=1,
        description="A skewed group is flagged when at least this share of its positive "
        "answers, and at least twice its peers' share, were collected in person.",
    )
