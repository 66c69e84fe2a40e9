from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


class InputSchema(BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ProblemFieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'score'].")
    code: str = Field(description="Machine-readable reason, e.g. 'greater_than_equal'.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="A URI naming the problem type.")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code; switch on this, not on text.")
    errors: list[ProblemFieldError] = Field(default_factory=list)
    request_id: str | None = None

    model_config = ConfigDict(extra="allow")


# Pydantic names the member of a union it tried in `loc` (`function-after[…]`,
# `constrained-str`, `none` …): noise to an integrator, whose field is the same either way.
_UNION_TAGS = frozenset(
    {
        "constrained-str",
        "constrained-int",
        "constrained-float",
        "none",
        "str",
        "int",
        "float",
        "bool",
    }
)


def _is_union_tag(part: str) -> bool:
    # "[key]" is not a tag: it says the error is in a dict's key rather than its value.
    return part in _UNION_TAGS or ("[" in part and part.endswith("]") and part != "[key]")


def field_errors(
    raw: Sequence[Mapping[str, Any]], prefix: Sequence[str | int] = ()
) -> list[dict[str, Any]]:
    """Pydantic's error list in the shape of a problem's `errors[]`: union member tags left
    out of `loc`, and the "or it could have been null" half of an optional field's error
    dropped when the field has a real one."""
    errors: list[dict[str, Any]] = []
    for e in raw:
        loc = [
            p if isinstance(p, int) else str(p)
            for p in e.get("loc", ())
            if isinstance(p, int) or not _is_union_tag(str(p))
        ]
        errors.append(
            {"loc": [*prefix, *loc], "code": e.get("type", "invalid"), "message": e.get("msg", "")}
        )
    real = [tuple(e["loc"]) for e in errors if e["code"] != "none_required"]

    def explained(loc: tuple[Any, ...]) -> bool:  # a real error at or below this field
        return any(other[: len(loc)] == loc for other in real)

    kept = [e for e in errors if e["code"] != "none_required" or not explained(tuple(e["loc"]))]
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in kept:
        unique.setdefault((tuple(e["loc"]), e["code"]), e)
    return list(unique.values())


def problem_responses(
    *statuses: int, body: bool = False, html: bool = False
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the problem+json answers an endpoint may give: 401, 422, 429
    and 503 always, 400 (malformed JSON), 413 and 415 for endpoints that take a body. `html`:
    a browser (the one-tap pages) gets the same answer as an HTML page."""
    descriptions = {
        400: "The body is not valid JSON",
        401: "Missing or invalid API key",
        403: "The key lacks the scope, or is a publishable key",
        404: "Not found (or owned by another tenant)",
        409: "Conflict",
        413: "Body too large",
        415: "Body is not application/json",
        422: "Validation failed; see `errors`",
        429: "Over a rate limit; retry after `Retry-After` seconds (see `RateLimit`)",
        503: "The database is unavailable or busy; retry after `Retry-After` seconds",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {
                "application/problem+json": {},
                **({"text/html": {"schema": {"type": "string"}}} if html else {}),
            },
        }
        for status in sorted({*statuses, 401, 422, 429, 503, *((400, 413, 415) if body else ())})
    }


class UpdateSchema(InputSchema):
    """PATCH bodies: only the fields sent change. A field may be omitted, not set to null
    (unless listed in `nullable`, where null means "clear it")."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = [
            name
            for name in self.model_fields_set
            if getattr(self, name) is None and name not in self.nullable
        ]
        if nulls:
            raise PydanticCustomError(
                "null_not_allowed",
                "these fields cannot be null: {fields}",
                {"fields": ", ".join(sorted(nulls))},
            )
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
