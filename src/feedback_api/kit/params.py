"""Query parameters shared by list endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from feedback_api.exceptions import InvalidCursor
from feedback_api.kit.pagination import CursorError, decode_cursor

Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` from the previous page."),
]


def parse_cursor(cursor: str | None, *types: type[Any]) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, *types)
    except CursorError:
        raise InvalidCursor("the cursor is not one this endpoint issued") from None
