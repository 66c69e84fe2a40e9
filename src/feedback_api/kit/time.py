from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import available_timezones

from feedback_api.exceptions import InvalidRequest


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_valid_timezone(name: str) -> bool:
    """An IANA zone name from the tz database's list: not `localtime`, `Factory` or the
    `posix/` and `right/` copies that some systems' zoneinfo folders also hold."""
    return name in _zone_names()


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - {"Factory", "localtime"}


def check_not_future(
    value: datetime | None, skew: timedelta, loc: Sequence[str | int], detail: str
) -> None:
    """The one rule for times a client says have happened: at most `skew` (the configured
    clock skew, injected by the caller) ahead of this server's clock."""
    if value is not None and value > utcnow() + skew:
        raise InvalidRequest.at(
            loc,
            "future_time",
            f"may be at most {int(skew.total_seconds())} s ahead of the server clock",
            detail=detail,
        )
