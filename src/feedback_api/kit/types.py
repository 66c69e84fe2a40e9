"""Validated field types shared by request schemas."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import phonenumbers
from pydantic import AfterValidator, Field

from feedback_api.kit.time import is_valid_timezone


def _check_timezone(value: str) -> str:
    if not is_valid_timezone(value):
        raise ValueError("not an IANA time zone name such as 'Asia/Shanghai' or 'UTC'")
    return value


def _check_phone(value: str) -> str:
    if not value.startswith("+"):
        raise ValueError("phone numbers must be in E.164 form, e.g. '+8613800138000'")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number in E.164 form")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


TimeZoneName = Annotated[
    str,
    Field(max_length=64, description="IANA time zone, e.g. `Asia/Shanghai`.", examples=["UTC"]),
    AfterValidator(_check_timezone),
]
LanguageTag = Annotated[
    str,
    Field(
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="BCP 47 language tag, e.g. `zh-CN` or `en`.",
        examples=["zh-CN"],
    ),
]
Slug = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description="Lowercase letters, digits and dashes.",
    ),
]
PhoneNumber = Annotated[
    str,
    Field(max_length=20, description="E.164, e.g. `+8613800138000`. Stored normalised."),
    AfterValidator(_check_phone),
]
ExternalRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[^\s/?#]+$",
        description="Your system's identifier (no spaces, `/`, `?` or `#`).",
    ),
]

MAX_ATTRIBUTES_BYTES = 8 * 1024
MAX_ATTRIBUTES_KEYS = 50


def _check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ATTRIBUTES_KEYS:
        raise ValueError(f"at most {MAX_ATTRIBUTES_KEYS} attributes")
    for key in value:
        if not _ATTRIBUTE_KEY.fullmatch(key):
            raise ValueError(f"attribute name {key!r} must match {_ATTRIBUTE_KEY.pattern}")
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"attributes may take at most {MAX_ATTRIBUTES_BYTES} bytes as JSON")
    return value


_ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")

Attributes = Annotated[
    dict[str, Any],
    AfterValidator(_check_attributes),
    Field(
        description=f"Free-form JSON object, at most {MAX_ATTRIBUTES_KEYS} keys and "
        f"{MAX_ATTRIBUTES_BYTES} bytes. Top-level scalar values can be used as segments "
        "(`attr.tier=gold`).",
        examples=[{"tier": "gold", "region": "east"}],
    ),
]
