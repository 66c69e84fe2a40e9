"""Opaque keyset cursors: base64url of the sort key of the last row seen."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic_core import PydanticCustomError

from feedback_api.kit.types import MAX_TIME, MIN_TIME, check_storable


class CursorError(ValueError):
    pass


def encode_cursor(*values: datetime | UUID | str | int) -> str:
    raw = [v.isoformat() if isinstance(v, datetime) else str(v) for v in values]
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type[Any]) -> tuple[Any, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise CursorError("cursor has the wrong shape")
        values: list[Any] = []
        for value, kind in zip(raw, types, strict=True):
            if not isinstance(value, str):
                raise CursorError("cursor has the wrong shape")
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise CursorError("cursor has a naive time")
                # a forged cursor must not reach SQL with a time asyncpg cannot encode
                if not MIN_TIME <= parsed < MAX_TIME:
                    raise CursorError("cursor time out of range")
                values.append(parsed)
            elif kind is str:
                try:
                    values.append(check_storable(value))
                except PydanticCustomError:
                    raise CursorError("cursor has a character the database cannot hold") from None
            elif kind is int:
                number = int(value)
                if not -(2**63) <= number < 2**63:
                    raise CursorError("cursor number out of range")
                values.append(number)
            else:
                values.append(kind(value))
        return tuple(values)
    except (
        binascii.Error,
        json.JSONDecodeError,
        UnicodeDecodeError,
        ValueError,
        OverflowError,
        RecursionError,
    ) as exc:
        raise CursorError(str(exc)) from exc


T = TypeVar("T")


def paginate(
    rows: list[T], limit: int, sort_key: Callable[[T], tuple[datetime | UUID | str | int, ...]]
) -> tuple[list[T], str | None]:
    """Given up to ``limit + 1`` rows, return one page and the cursor to the next one."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(*sort_key(page[-1]))
