"""Validated field types shared by request schemas and path/query parameters.

Everything a client sends passes through one of these at the edge, so that what reaches the
database is something PostgreSQL can store and what reaches period arithmetic is something
Python can compute with. Each refusal has a stable code (docs/errors.md):

- ``nul_character``: U+0000, which PostgreSQL ``text`` and ``jsonb`` cannot hold;
- ``invalid_unicode``: a lone surrogate (``"\\ud800"`` in JSON), which is not a character;
- ``non_finite_number``: ``NaN``, ``Infinity`` or a literal too large for a double (``1e400``);
- ``too_deep``: JSON nested deeper than ``MAX_JSON_DEPTH``;
- ``datetime_format`` / ``datetime_out_of_range``: a time that is not an RFC 3339 string, or
  lies outside ``MIN_TIME`` .. ``MAX_TIME`` once its offset is applied.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    AfterValidator,
    AllowInfNan,
    AwareDatetime,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from feedback_api.kit.time import is_valid_timezone

# --- strings PostgreSQL can store ---------------------------------------------------------

#: Stated on every request string the contract does not already constrain more tightly.
NO_NUL_PATTERN = r"^[^\u0000]*$"


def check_storable(value: str) -> str:
    """Refuse what PostgreSQL text cannot hold: NUL, and lone surrogates (not encodable)."""
    if "\x00" in value:
        raise PydanticCustomError(
            "nul_character", "the NUL character (U+0000) cannot be stored; remove it"
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError(
                "invalid_unicode",
                "contains a lone surrogate (U+D800–U+DFFF), which is not a character",
            ) from None
    return value


@dataclass(frozen=True, slots=True)
class Text:
    """A string the database can store, with its length (and pattern) inside the type so
    that errors say `string_too_long` and the contract states every limit.

    Use as ``Annotated[str, Text(max_length=100)]``. Without a ``pattern`` the contract gets
    ``NO_NUL_PATTERN``; a given ``pattern`` must itself exclude U+0000 (tests/system/test_openapi.py
    checks every request string in the contract)."""

    max_length: int
    min_length: int = 0
    pattern: str | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # The minimum is checked after the value is stored-checked and, in request bodies,
        # trimmed (InputSchema strips whitespace): "  a " is one character long. The contract
        # cannot say "after trimming", so a short value has a code of its own.
        inner = core_schema.str_schema(max_length=self.max_length, pattern=self.pattern)
        minimum = self.min_length

        def check(value: str) -> str:
            check_storable(value)
            if len(value) < minimum:
                raise PydanticCustomError(
                    "too_short_trimmed",
                    "needs at least {n} characters (leading and trailing spaces do not count)",
                    {"n": minimum},
                )
            return value

        return core_schema.no_info_after_validator_function(check, inner)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NO_NUL_PATTERN)
        if self.min_length:
            json_schema["minLength"] = self.min_length
        return json_schema


# --- numbers that are what the contract says ----------------------------------------------


def _integral(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer; bools and strings are not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A JSON integer: not a bool, not a string, not 1.5 (``3.0`` is taken as 3).
Int = Annotated[int, BeforeValidator(_integral), Strict()]
#: A finite JSON number: not a bool, not a string, not NaN or Infinity.
Float = Annotated[float, Strict(), AllowInfNan(False)]
#: A JSON boolean: ``true`` or ``false`` only.
Bool = Annotated[bool, Strict()]


# --- times period arithmetic can compute with ---------------------------------------------

#: Every time a client sends lies in [MIN_TIME, MAX_TIME): wide enough for any feedback
#: ever given, narrow enough that local-day, week and month arithmetic in any time zone and
#: any offset (±14:00) stays inside what both Python and PostgreSQL represent.
MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(3000, 1, 1, tzinfo=UTC)
TIME_RANGE_HELP = "between 1900-01-01 and 2999-12-31"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    # Pydantic would read 0.5 or "1700000000" as Unix time; the contract says RFC 3339.
    if isinstance(value, (datetime, date)):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value
    raise PydanticCustomError(
        "datetime_format",
        "give an RFC 3339 date-time with offset, e.g. 2026-07-01T09:00:00+08:00",
    )


def _out_of_range() -> PydanticCustomError:
    return PydanticCustomError("datetime_out_of_range", f"must be {TIME_RANGE_HELP}")


def check_time_range(value: datetime) -> datetime:
    try:
        in_range = MIN_TIME <= value.astimezone(UTC) < MAX_TIME
    except (OverflowError, ValueError):
        in_range = False
    if not in_range:
        raise _out_of_range()
    return value


def check_date_range(value: date) -> date:
    if not MIN_TIME.date() <= value < MAX_TIME.date():
        raise _out_of_range()
    return value


def _check_bound(value: datetime | date) -> datetime | date:
    if isinstance(value, datetime):
        return check_time_range(value)
    return check_date_range(value)


#: An RFC 3339 date-time with offset, in range.
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_only),
    AfterValidator(check_time_range),
    Field(description=f"RFC 3339 with offset, {TIME_RANGE_HELP}."),
]
#: A calendar date (YYYY-MM-DD), in range.
Day = Annotated[
    date,
    BeforeValidator(_iso_only),
    AfterValidator(check_date_range),
    Field(description=f"A date, YYYY-MM-DD, {TIME_RANGE_HELP}."),
]
#: A period bound: a date (local midnight in the tenant's time zone) or an RFC 3339
#: date-time with offset, in range.
Bound = Annotated[
    AwareDatetime | date,
    BeforeValidator(_iso_only),
    AfterValidator(_check_bound),
]


def _check_timezone(value: str) -> str:
    if not is_valid_timezone(value):
        raise PydanticCustomError(
            "unknown_timezone", "not an IANA time zone name such as 'Asia/Shanghai' or 'UTC'"
        )
    return value


def _check_phone(value: str) -> str:
    if not value.startswith("+"):
        raise PydanticCustomError(
            "phone_number", "phone numbers must be in E.164 form, e.g. '+8613800138000'"
        )
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise PydanticCustomError(
            "phone_number", "not a phone number: {reason}", {"reason": str(exc)}
        ) from None
    if not phonenumbers.is_possible_number(parsed):
        raise PydanticCustomError("phone_number", "not a possible phone number in E.164 form")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


TimeZoneName = Annotated[
    str,
    Text(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+/-]*$"),
    Field(description="IANA time zone, e.g. `Asia/Shanghai`.", examples=["UTC"]),
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
    Text(max_length=20, pattern=r"^\+[0-9 ().-]+$"),
    Field(description="E.164, e.g. `+8613800138000`. Stored normalised."),
    AfterValidator(_check_phone),
]
#: No controls, no spaces of any kind, no `/ ? #`. Spelled out rather than `\s`, whose
#: meaning differs between regex engines (is U+0085 a space?), so that the server (Rust
#: regex) and every client reading the contract agree on each character.
EXTERNAL_REF_PATTERN = (
    r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    r"\ufeff/?#]+$"
)
ExternalRef = Annotated[
    str,
    Text(min_length=1, max_length=255, pattern=EXTERNAL_REF_PATTERN),
    Field(
        description="Your system's identifier (no spaces or control characters, `/`, `?` or `#`)."
    ),
]

MAX_ATTRIBUTES_BYTES = 8 * 1024
MAX_ATTRIBUTES_KEYS = 50
MAX_JSON_DEPTH = 8


def check_json(value: Any, loc: tuple[str | int, ...] = (), depth: int = 0) -> None:
    """Free-form JSON that ``jsonb`` can store: finite numbers, storable strings and keys,
    at most ``MAX_JSON_DEPTH`` levels. Raises with the path to the first bad value."""
    where = ".".join(str(p) for p in loc) or "the value"
    if depth > MAX_JSON_DEPTH:
        raise PydanticCustomError(
            "too_deep",
            "{where}: nested deeper than {depth} levels",
            {"where": where, "depth": MAX_JSON_DEPTH},
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError(
            "non_finite_number",
            "{where}: NaN, Infinity and numbers beyond ±1.8e308 are not JSON numbers",
            {"where": where},
        )
    if isinstance(value, str):
        _storable_at(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable_at(str(key), where)
            check_json(item, (*loc, str(key)), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, (*loc, index), depth + 1)


def _storable_at(value: str, where: str) -> None:
    try:
        check_storable(value)
    except PydanticCustomError as exc:
        raise PydanticCustomError(exc.type, "{where}: " + exc.message(), {"where": where}) from None


def check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ATTRIBUTES_KEYS:
        raise PydanticCustomError(
            "too_many_attributes", "at most {n} attributes", {"n": MAX_ATTRIBUTES_KEYS}
        )
    for key in value:
        if not _ATTRIBUTE_KEY.fullmatch(key):
            raise PydanticCustomError(
                "attribute_name",
                "attribute name '{key}' must match {pattern}",
                {"key": key, "pattern": ATTRIBUTE_KEY_PATTERN},
            )
    check_json(value)
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_ATTRIBUTES_BYTES:
        raise PydanticCustomError(
            "attributes_too_large",
            "attributes may take at most {n} bytes as JSON",
            {"n": MAX_ATTRIBUTES_BYTES},
        )
    return value


ATTRIBUTE_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
_ATTRIBUTE_KEY = re.compile(ATTRIBUTE_KEY_PATTERN)

Attributes = Annotated[
    dict[str, Any],
    AfterValidator(check_attributes),
    Field(
        description=f"Free-form JSON object, at most {MAX_ATTRIBUTES_KEYS} keys and "
        f"{MAX_ATTRIBUTES_BYTES} bytes, nested at most {MAX_JSON_DEPTH} levels; numbers "
        "finite, strings without U+0000. Top-level scalar values can be used as segments "
        "(`attr.tier=gold`).",
        examples=[{"tier": "gold", "region": "east"}],
        json_schema_extra={
            "maxProperties": MAX_ATTRIBUTES_KEYS,
            "propertyNames": {"pattern": ATTRIBUTE_KEY_PATTERN},
        },
    ),
]
