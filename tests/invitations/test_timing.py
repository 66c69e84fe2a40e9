"""Quiet hours across midnight, time zones and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from feedback_api.invitations.timing import QuietHours, next_allowed

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DEFAULT = QuietHours()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("due", "zone", "expected"),
    [
        # Shanghai is UTC+8: 22:30 local → 09:00 next day
        (utc(2026, 11, 23, 14, 30), SHANGHAI, utc(2026, 11, 24, 1, 0)),
        # 08:59 local → 09:00 the same day
        (utc(2026, 11, 23, 0, 59), SHANGHAI, utc(2026, 11, 23, 1, 0)),
        # the window's ends: 09:00 is allowed, 21:00 is quiet, 20:59 is allowed
        (utc(2026, 11, 23, 1, 0), SHANGHAI, utc(2026, 11, 23, 1, 0)),
        (utc(2026, 11, 23, 13, 0), SHANGHAI, utc(2026, 11, 24, 1, 0)),
        (utc(2026, 11, 23, 12, 59), SHANGHAI, utc(2026, 11, 23, 12, 59)),
        # the same instant is daytime in New York (UTC-5): no move
        (utc(2026, 11, 23, 14, 30), NEW_YORK, utc(2026, 11, 23, 14, 30)),
        # Berlin springs forward on 29 March 2026: 22:00 CET on the 28th → 09:00 CEST (07:00 UTC)
        (utc(2026, 3, 28, 21, 0), BERLIN, utc(2026, 3, 29, 7, 0)),
        # and falls back on 25 October: 23:00 CEST on the 24th → 09:00 CET (08:00 UTC)
        (utc(2026, 10, 24, 21, 0), BERLIN, utc(2026, 10, 25, 8, 0)),
        # New York's fall-back night: 01:30 EDT (05:30 UTC) → 09:00 EST (14:00 UTC)
        (utc(2026, 11, 1, 5, 30), NEW_YORK, utc(2026, 11, 1, 14, 0)),
    ],
)
def test_default_quiet_hours(due: datetime, zone: ZoneInfo, expected: datetime) -> None:
    assert next_allowed(due, zone, DEFAULT) == expected


def test_a_daytime_window_and_no_window() -> None:
    lunch = QuietHours(time(12), time(14))
    assert next_allowed(utc(2026, 11, 23, 4, 30), SHANGHAI, lunch) == utc(2026, 11, 23, 6, 0)
    assert next_allowed(utc(2026, 11, 23, 6, 0), SHANGHAI, lunch) == utc(2026, 11, 23, 6, 0)
    never = QuietHours(time(0), time(0))
    assert next_allowed(utc(2026, 11, 23, 18), SHANGHAI, never) == utc(2026, 11, 23, 18)


def test_an_end_inside_a_dst_gap_is_never_earlier() -> None:
    # Berlin skips 02:00–03:00 on 29 March 2026; a window ending at 02:30 ends at 03:30 CEST
    night = QuietHours(time(22), time(2, 30))
    due = utc(2026, 3, 28, 23, 0)  # 00:00 CET
    moved = next_allowed(due, BERLIN, night)
    assert moved == utc(2026, 3, 29, 1, 30)
    assert moved.astimezone(BERLIN).hour == 3
