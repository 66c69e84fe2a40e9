"""Delighted's `properties`: what describes the person becomes the customer's attributes,
what shapes the survey (`delighted_*`, `question_*`, `thank_you_*`) travels with the
invitation, `locale` is the customer's locale. Checked at the edge against the limits our
own attributes keep (so that nothing a client sends reaches the database unchecked)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from feedback_api.kit.types import LanguageTag, check_attributes

SURVEY_PROPERTIES = re.compile(r"^(delighted_|question_|thank_you_)")
_BAD_KEY = re.compile(r"[^A-Za-z0-9_.-]+")
_LOCALE: TypeAdapter[str] = TypeAdapter(LanguageTag)


def attribute_name(key: str) -> str:
    """A Delighted property name as one of our attribute names: "Purchase Experience" →
    "Purchase_Experience" (ours allow letters, digits, `_ . -`, up to 64)."""
    name = _BAD_KEY.sub("_", key).strip("_")[:64]
    return name or "property"


def split(properties: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(customer attributes, survey context, locale) from Delighted's `properties`."""
    attributes: dict[str, Any] = {}
    context: dict[str, Any] = {}
    locale = None
    for key, value in properties.items():
        if key == "locale" and isinstance(value, str):
            locale = value
        elif SURVEY_PROPERTIES.match(key):
            context[attribute_name(key)] = value
        elif value is not None:
            attributes[attribute_name(key)] = value
    return attributes, context, locale


def as_attributes(properties: dict[str, Any]) -> dict[str, Any]:
    """Every property as an attribute (a response's `person_properties`)."""
    return {attribute_name(k): v for k, v in properties.items()}


def _checked(properties: dict[str, Any]) -> dict[str, Any]:
    attributes, context, locale = split(properties)
    check_attributes(attributes)
    check_attributes(context)
    if locale is not None:
        try:
            _LOCALE.validate_python(locale)
        except ValidationError:
            raise PydanticCustomError(
                "locale", "locale must be a BCP 47 language tag, e.g. en or zh-CN"
            ) from None
    return properties


def _checked_attributes(properties: dict[str, Any]) -> dict[str, Any]:
    check_attributes(as_attributes(properties))
    return properties


_DESCRIPTION = (
    "At most 50 keys and 8 KiB as JSON, nested at most 8 levels, numbers finite, strings "
    "without U+0000 (our attributes' limits, after the names are made valid)."
)
Properties = Annotated[
    dict[str, Any], AfterValidator(_checked), Field(max_length=50, description=_DESCRIPTION)
]
PersonProperties = Annotated[
    dict[str, Any],
    AfterValidator(_checked_attributes),
    Field(max_length=50, description=_DESCRIPTION),
]
