"""Delighted's resources as its SDKs read them: ids as strings, times as Unix seconds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from feedback_api.compat.delighted.properties import PersonProperties, Properties
from feedback_api.kit.types import Int, PhoneNumber, Text
from feedback_api.responses.schemas import Tags

Name = Annotated[str, Text(max_length=200)]
UnixTime = Annotated[Int, Field(ge=0, le=32_503_680_000)]  # up to year 3000


class Lenient(BaseModel):
    """Delighted ignored fields it did not know, and its SDKs send some (`save()` sends the
    whole object back)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PersonCreate(Lenient):
    email: EmailStr | None = Field(default=None, max_length=320)
    phone_number: PhoneNumber | None = None
    name: Name | None = None
    channel: Literal["email", "sms"] | None = None
    delay: Annotated[Int, Field(ge=0, le=3600 * 24 * 90)] | None = None
    send: bool | None = None
    properties: Properties = Field(default_factory=dict)
    last_sent_at: UnixTime | None = None
    email_update: EmailStr | None = Field(default=None, max_length=320)
    phone_number_update: PhoneNumber | None = None


class Person(BaseModel):
    id: str
    email: str | None
    name: str | None
    phone_number: str | None
    created_at: int
    last_sent_at: int | None = None
    last_responded_at: int | None = None
    next_survey_scheduled_at: int | None = None


class PersonCreated(Person):
    survey_scheduled_at: int | None = Field(
        description="When the survey goes out; null when none was scheduled (`send: false`, "
        "or the contact rules held it back)."
    )


class SurveyResponseCreate(Lenient):
    person: Annotated[str, Text(min_length=1, max_length=64)] = Field(
        description="The person's id."
    )
    score: Annotated[Int, Field(ge=0, le=10)]
    comment: Annotated[str, Text(max_length=5000)] | None = None
    person_properties: PersonProperties = Field(default_factory=dict)
    created_at: UnixTime | None = None


class SurveyResponse(BaseModel):
    id: str
    person: str | Person | None = Field(description="The person's id, or with expand[]=person.")
    survey_type: str
    score: int
    comment: str | None
    permalink: str | None = None
    created_at: int
    updated_at: int
    person_properties: dict[str, Any]
    notes: list[Any] = Field(default_factory=list)
    tags: list[str]
    additional_answers: list[Any] = Field(default_factory=list)


class Metrics(BaseModel):
    nps: int | None
    promoter_count: int
    promoter_percent: int | None
    passive_count: int
    passive_percent: int | None
    detractor_count: int
    detractor_percent: int | None
    response_count: int


class SurveyResponseUpdate(Lenient):
    """What `PUT /survey_responses/{id}` reads; the SDK's `save()` sends the whole object
    back (the person expanded), so the fields it cannot change may come along unchanged."""

    person: Annotated[str, Text(max_length=64)] | dict[str, Any] | None = None
    score: Annotated[Int, Field(ge=0, le=10)] | None = None
    comment: Annotated[str, Text(max_length=5000)] | None = None
    person_properties: PersonProperties | None = None
    tags: Tags | None = None
    notes: list[Any] | None = Field(default=None, max_length=100)


class Unsubscribe(BaseModel):
    person_id: str
    email: str | None
    name: str | None
    unsubscribed_at: int


class Bounce(BaseModel):
    person_id: str
    email: str | None
    name: str | None
    bounced_at: int


class UnsubscribeCreate(Lenient):
    person_email: EmailStr = Field(max_length=320)


Platform = Literal["email", "sms"]


class AutopilotConfiguration(BaseModel):
    platform_id: Platform
    active: bool = Field(
        description="Whether the `delighted` survey is active (PATCH /v1/surveys/delighted)."
    )
    frequency: int = Field(
        description="Seconds between a member's surveys: the contact rules' frequency, or the "
        "`delighted` survey's cooldown when longer."
    )
    created_at: int | None = Field(description="When the `delighted` survey was created.")
    updated_at: int | None


class MemberIdentifier(Lenient):
    """Exactly one of them names the person."""

    person_id: Annotated[str, Text(min_length=1, max_length=64)] | None = None
    person_email: EmailStr | None = Field(default=None, max_length=320)
    person_phone_number: PhoneNumber | None = None


class MembershipCreate(MemberIdentifier):
    person_name: Name | None = None
    properties: Properties = Field(default_factory=dict)


class SurveyRequest(BaseModel):
    id: str
    created_at: int
    survey_scheduled_at: int | None
    properties: dict[str, Any]


class Membership(BaseModel):
    created_at: int
    updated_at: int
    person: Person
    next_survey_request: SurveyRequest | None = Field(
        description="The member's survey scheduled and not yet sent, if any."
    )


class MembershipCreated(BaseModel):
    person: Person
    properties: dict[str, Any]


class MembershipRemoved(BaseModel):
    person: Person
