from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import available_timezones


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_valid_timezone(name: str) -> bool:
    """An IANA zone name from the tz database's list: not `localtime`, `Factory` or the
    `posix/` and `right/` copies that some systems' zoneinfo folders also hold."""
    return name in _zone_names()


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - {"Factory", "localtime"}
