"""The per-item batch skeleton: each item judged on its own, errors located at the item."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from feedback_api.exceptions import InvalidRequest
from feedback_api.kit.batch import ItemError, check_items, in_order


class Item(BaseModel):
    score: int


def parse(raw: Any) -> Item:
    item = Item.model_validate(raw)
    if item.score < 0:
        raise InvalidRequest.at(("body", "score"), "negative", "must not be negative")
    return item


def test_valid_items_keep_their_index_and_order() -> None:
    checked = check_items([{"score": 1}, {"score": "x"}, {"score": 3}], parse)
    assert checked.valid == [(0, Item(score=1)), (2, Item(score=3))]
    assert list(checked.errors) == [1]


def test_a_schema_error_is_a_validation_error_at_the_item() -> None:
    checked = check_items([{"score": 1}, {}], parse)
    error = ItemError.of(checked.errors[1])
    assert error.code == "validation_error"
    assert [e["loc"] for e in error.errors] == [["body", "items", 1, "score"]]


def test_a_rule_error_keeps_its_code_and_moves_into_the_item() -> None:
    checked = check_items([{"score": -1}], parse)
    error = ItemError.of(checked.errors[0])
    assert error.code == "validation_error"
    assert error.errors == [
        {
            "loc": ["body", "items", 0, "score"],
            "code": "negative",
            "message": "must not be negative",
        }
    ]


def test_in_order_answers_in_request_order() -> None:
    assert in_order({2: "c", 0: "a", 1: "b"}, 3) == ["a", "b", "c"]
