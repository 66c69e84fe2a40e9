from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import EmailStr, Field

from feedback_api.kit.schemas import InputSchema, ReadSchema
from feedback_api.kit.types import Attributes, LanguageTag, PhoneNumber, Text, TimeZoneName


class CustomerUpsert(InputSchema):
    """The whole customer record. `PUT` replaces it: a field you leave out becomes empty."""

    name: Annotated[str, Text(max_length=200)] | None = None
    email: EmailStr | None = Field(default=None, max_length=320)
    phone: PhoneNumber | None = None
    locale: LanguageTag | None = None
    timezone: TimeZoneName | None = Field(
        default=None, description="The customer's zone, so surveys are not sent at night."
    )
    attributes: Attributes = Field(default_factory=dict)


class CustomerRead(ReadSchema):
    id: UUID
    external_ref: str = Field(description="Your system's identifier for this customer.")
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
