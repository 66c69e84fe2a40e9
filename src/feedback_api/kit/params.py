"""Query parameters shared by list and report endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from feedback_api.exceptions import InvalidCursor
from feedback_api.kit.pagination import CursorError, decode_cursor
from feedback_api.kit.types import TIME_RANGE_HELP, Text

Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
Cursor = Annotated[
    Annotated[str, Text(min_length=1, max_length=512, pattern=CURSOR_PATTERN)] | None,
    Query(description="`next_cursor` from the previous page (opaque; base64url)."),
]
#: The help of every `from`/`to` period parameter typed `kit.types.Bound`.
PERIOD_HELP = (
    "A date (`2026-07-01`, local midnight in the tenant's time zone) or an RFC 3339 "
    f"date-time with offset, {TIME_RANGE_HELP}."
)


def parse_cursor(cursor: str | None, *types: type[Any]) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, *types)
    except CursorError:
        raise InvalidCursor("the cursor is not one this endpoint issued") from None
