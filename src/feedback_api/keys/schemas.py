from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from feedback_api.auth.scopes import Scope
from feedback_api.kit.schemas import InputSchema, ReadSchema
from feedback_api.kit.types import Bool, Text

KeyName = Annotated[str, Text(min_length=1, max_length=200)]


class ApiKeyCreate(InputSchema):
    name: KeyName = Field(description="What the key is for.")
    scopes: list[Scope] | None = Field(
        default=None,
        description="Scopes of a secret key. You may grant only scopes your own key holds.",
    )
    publishable: Bool = Field(
        default=False,
        description="Create a publishable key (`fbk_pk_…`): it may only submit ratings with "
        "`POST /v1/responses` and reads nothing, so it is safe to ship in an app.",
    )

    trusted: Bool = Field(
        default=False,
        description="A server-side integration you vouch for (your CRM, your backend): "
        "responses it submits count as verified, like answers to signed invitations. "
        "Secret keys only.",
    )

    @model_validator(mode="after")
    def _scopes_xor_publishable(self) -> ApiKeyCreate:
        if self.publishable and self.trusted:
            raise PydanticCustomError(
                "publishable_trusted", "a publishable key cannot be trusted: it ships inside apps"
            )
        if self.publishable and self.scopes:
            raise PydanticCustomError(
                "publishable_scopes",
                "a publishable key has no scopes; give either scopes or publishable",
            )
        if not self.publishable and not self.scopes:
            raise PydanticCustomError(
                "scopes_required", "give at least one scope, or publishable: true"
            )
        return self


class ApiKeyRead(ReadSchema):
    id: UUID
    name: str
    kind: Literal["secret", "publishable"]
    prefix: str = Field(description="The first characters of the key, to tell keys apart.")
    scopes: list[str]
    trusted: Bool = Field(description="Its responses count as verified.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="The key itself. Shown only in this answer; store it now.")

    @classmethod
    def of(cls, key: object, secret: str) -> ApiKeyCreated:
        return cls(**ApiKeyRead.model_validate(key).model_dump(), secret=secret)
