from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from feedback_api.keys.schemas import ApiKeyCreated
from feedback_api.kit.schemas import InputSchema, ReadSchema, UpdateSchema
from feedback_api.kit.types import Bool, Int, LanguageTag, Slug, Text, TimeZoneName
from feedback_api.ratelimits.policies import Limit

TenantName = Annotated[str, Text(min_length=1, max_length=200)]
LowSampleN = Annotated[
    Int,
    Field(
        ge=1,
        le=1_000_000,
        description="Metrics with fewer responses are flagged `low_sample` (default 30).",
    ),
]
MinCellN = Annotated[
    Int,
    Field(
        ge=1,
        le=1000,
        description="A metric cell (any read, filtered or not; a trend bucket; a "
        "comparison side) with fewer responses shows n but no values, and breakdown groups "
        "with fewer are merged into `other`, so no small cell singles out a person, except "
        "for keys holding `metrics:small_cells` (default 5; 1 turns both off).",
    ),
]

ReopenDays = Annotated[
    Int,
    Field(
        ge=0,
        le=365,
        description="A complaint this many days after a ticket was resolved reopens it as a "
        "repeat complaint (default 30; 0: never, a new ticket opens).",
    ),
]

PublicFeeds = Annotated[
    Bool,
    Field(
        description="Publish the public review feed (`GET /public/{slug}/reviews`: consented "
        "reviews, masked) and improvement feed (`GET /public/{slug}/improvements`: public "
        "actions). Off by default; off, both answer 404 (docs/public-feeds.md)."
    ),
]


class TenantCreate(InputSchema):
    name: TenantName
    slug: Slug | None = Field(default=None, description="Unique; derived from the name if omitted.")
    timezone: TimeZoneName = Field(
        default="UTC", description="Day, week and month boundaries of metrics use this zone."
    )
    locale: LanguageTag = "en"


class TenantUpdate(UpdateSchema):
    # `| SkipJsonSchema[None]`: omitted is fine, null is not (see UpdateSchema).
    name: TenantName | SkipJsonSchema[None] = None
    slug: Slug | SkipJsonSchema[None] = None
    timezone: TimeZoneName | SkipJsonSchema[None] = None
    locale: LanguageTag | SkipJsonSchema[None] = None
    metrics_low_sample_n: LowSampleN | SkipJsonSchema[None] = None
    metrics_min_cell_n: MinCellN | SkipJsonSchema[None] = None
    ticket_reopen_days: ReopenDays | SkipJsonSchema[None] = None
    public_feeds: PublicFeeds | SkipJsonSchema[None] = None


_OVERRIDE = "null or omitted: the service's default (docs/security.md, Rate limits)."


class RateLimitOverrides(InputSchema):
    """The tenant's own rate limits, set by the platform operator (a kiosk app that posts
    from one shop's address, an import that needs more than the defaults)."""

    publishable_client: Limit | None = Field(
        default=None, description=f"One publishable key from one client address. {_OVERRIDE}"
    )
    publishable_key: Limit | None = Field(
        default=None, description=f"One publishable key, all clients together. {_OVERRIDE}"
    )
    secret_key: Limit | None = Field(default=None, description=f"One secret key. {_OVERRIDE}")
    tenant: Limit | None = Field(
        default=None, description=f"All the tenant's keys together. {_OVERRIDE}"
    )


class TenantRead(ReadSchema):
    id: UUID
    name: str
    slug: str
    timezone: str
    locale: str
    metrics_low_sample_n: int
    metrics_min_cell_n: int
    ticket_reopen_days: int
    public_feeds: bool = Field(
        description="Whether the public review and improvement feeds are published."
    )
    rate_limits: dict[str, Limit] = Field(
        description="The operator's overrides of the default rate limits; the limits in force "
        "are in the `RateLimit-Policy` field of every answer."
    )
    created_at: datetime
    updated_at: datetime


class TenantCreated(BaseModel):
    tenant: TenantRead
    api_key: ApiKeyCreated = Field(
        description="The tenant's first secret key, holding every scope. Shown only once."
    )
