from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from feedback_api.auth.scopes import Scope
from feedback_api.kit.schemas import InputSchema, ReadSchema, UpdateSchema
from feedback_api.kit.types import Bool, Text

KeyName = Annotated[str, Text(min_length=1, max_length=200)]

# --- web origins (CORS) ---------------------------------------------------------------------

MAX_ORIGINS = 50
MAX_ORIGIN_LENGTH = 300  # "https://" + a 253-character host + ":65535", with room to spare
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
#: An origin exactly as a browser sends it in the `Origin` header: http or https, the host in
#: lower case (a domain in its ASCII form, `xn--…` for an international one; an IPv4 address;
#: an IPv6 address in brackets), an optional port, and nothing after it (no path, no slash).
ORIGIN_PATTERN = rf"^https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::{_PORT})?$"
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _canonical_origin(value: str) -> str:
    """The form a browser sends: a default port (`:443` on https, `:80` on http) is left out
    of the `Origin` header, so it is dropped here too, and an IPv6 address is written the
    way browsers write it (`[::1]`)."""
    scheme, rest = value.split("://", 1)
    if rest.startswith("["):
        end = rest.index("]") + 1
        host, port = rest[:end], rest[end + 1 :]
    else:
        host, _, port = rest.partition(":")
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise PydanticCustomError(
                "origin_invalid", "the host in brackets is not an IPv6 address"
            ) from None
    if port == _DEFAULT_PORTS[scheme]:
        port = ""
    return f"{scheme}://{host}{':' + port if port else ''}"


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))  # the order given, each origin once


Origin = Annotated[
    str,
    Text(max_length=MAX_ORIGIN_LENGTH, pattern=ORIGIN_PATTERN),
    AfterValidator(_canonical_origin),
    Field(
        description="`scheme://host[:port]` as browsers send it in `Origin`: lower case, no "
        "path or trailing slash. A default port (`:443`, `:80`) is dropped.",
        examples=["https://shop.example.com"],
    ),
]
AllowedOrigins = Annotated[
    list[Origin],
    Field(
        max_length=MAX_ORIGINS,
        description="Publishable keys only: the web origins whose pages may submit ratings "
        f"with this key from a browser (CORS), at most {MAX_ORIGINS}. Empty: no web page may; "
        "apps and servers (which send no `Origin`) are not affected.",
    ),
    AfterValidator(_unique),
]


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
        "Secret keys only; needs a key holding `keys:trust`.",
    )
    allowed_origins: AllowedOrigins = Field(default_factory=list)

    @model_validator(mode="after")
    def _scopes_xor_publishable(self) -> ApiKeyCreate:
        if self.allowed_origins and not self.publishable:
            raise PydanticCustomError(
                "origins_publishable_only",
                "allowed_origins is for publishable keys: secret keys never answer browsers",
            )
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
    allowed_origins: list[str] = Field(
        description="Publishable keys: the web origins whose pages may use it (CORS)."
    )
    created_at: datetime
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    revoked_at: datetime | None


class ApiKeyUpdate(UpdateSchema):
    # `| SkipJsonSchema[None]`: omitted is fine, null is not (see UpdateSchema).
    name: KeyName | SkipJsonSchema[None] = Field(default=None, description="What the key is for.")
    allowed_origins: AllowedOrigins | SkipJsonSchema[None] = None
    trusted: Bool | SkipJsonSchema[None] = Field(
        default=None,
        description="Secret keys only. Sending it (either way) needs a key holding `keys:trust`.",
    )


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="The key itself. Shown only in this answer; store it now.")

    @classmethod
    def of(cls, key: object, secret: str) -> ApiKeyCreated:
        return cls(**ApiKeyRead.model_validate(key).model_dump(), secret=secret)
