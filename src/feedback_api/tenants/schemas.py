from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from feedback_api.keys.schemas import ApiKeyCreated
from feedback_api.kit.schemas import InputSchema, ReadSchema, UpdateSchema
from feedback_api.kit.types import LanguageTag, Slug, TimeZoneName


class TenantCreate(InputSchema):
    name: str = Field(min_length=1, max_length=200)
    slug: Slug | None = Field(default=None, description="Unique; derived from the name if omitted.")
    timezone: TimeZoneName = Field(
        default="UTC", description="Day, week and month boundaries of metrics use this zone."
    )
    locale: LanguageTag = "en"


class TenantUpdate(UpdateSchema):
    # `| SkipJsonSchema[None]`: omitted is fine, null is not (see UpdateSchema).
    name: Annotated[str, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = None
    slug: Slug | SkipJsonSchema[None] = None
    timezone: TimeZoneName | SkipJsonSchema[None] = None
    locale: LanguageTag | SkipJsonSchema[None] = None


class TenantRead(ReadSchema):
    id: UUID
    name: str
    slug: str
    timezone: str
    locale: str
    created_at: datetime
    updated_at: datetime


class TenantCreated(BaseModel):
    tenant: TenantRead
    api_key: ApiKeyCreated = Field(
        description="The tenant's first secret key, holding every scope. Shown only once."
    )
