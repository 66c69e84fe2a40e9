"""Per-item validation for the batch endpoints: each item is validated on its own, its
422 kept at its index (with `loc` pointing into `body.items[index]`), and the valid ones
returned in request order for the caller to store. One place for the skeleton that
`POST /v1/responses/batch` and `POST /v1/invitations/batch` share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

from feedback_api.exceptions import FeedbackError, InvalidRequest
from feedback_api.kit.schemas import field_errors

T = TypeVar("T")
R = TypeVar("R")


class ItemError(BaseModel):
    """Why one item of a batch was refused: the same `code`, `detail` and `errors` as the
    problem a single request would have answered."""

    code: str
    detail: str
    errors: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def of(cls, error: FeedbackError) -> ItemError:
        return cls(code=error.code, detail=error.detail, errors=error.errors)


def item_loc(index: int) -> tuple[str | int, ...]:
    return ("body", "items", index)


def at_item(error: FeedbackError, index: int) -> FeedbackError:
    """`error`, raised for a single request body (`loc` starting with "body"), moved to
    the batch's item `index`."""
    for e in error.errors:
        loc = list(e.get("loc", ()))
        rest = loc[1:] if loc[:1] == ["body"] else loc
        e["loc"] = [*item_loc(index), *rest]
    return error


@dataclass(slots=True)
class Checked(Generic[T]):
    """The valid items with their indexes, and the refused ones' errors by index."""

    valid: list[tuple[int, T]] = field(default_factory=list)
    errors: dict[int, FeedbackError] = field(default_factory=dict)


def check_items(raw_items: Sequence[Any], parse: Callable[[Any], T]) -> Checked[T]:
    """Run `parse` (a Pydantic validation, then any rule that needs no database) on each
    raw item. A `ValidationError` becomes a 422 `validation_error` and a `FeedbackError`
    keeps its code; both are located at the item."""
    checked: Checked[T] = Checked()
    for index, raw in enumerate(raw_items):
        try:
            checked.valid.append((index, parse(raw)))
        except ValidationError as exc:
            errors = field_errors(exc.errors(include_url=False), item_loc(index))
            checked.errors[index] = InvalidRequest("the item is not valid", errors=errors)
        except FeedbackError as exc:
            checked.errors[index] = at_item(exc, index)
    return checked


def in_order(results: Mapping[int, R], count: int) -> list[R]:
    """The per-item results in request order; every index must have one."""
    return [results[index] for index in range(count)]
