"""SLA clock arithmetic: weekends, a Chinese public holiday and its make-up working day, a
DST change in Europe, pauses."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from feedback_api.tickets.sla import BusinessCalendar, Clock, due_at, working_time

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_SIX = [(time(9), time(18))]
WEEKDAYS = dict.fromkeys(range(5), NINE_TO_SIX)
CN_OFFICE = BusinessCalendar("Asia/Shanghai", WEEKDAYS, country="CN")
DE_ALWAYS = BusinessCalendar("Europe/Berlin", dict.fromkeys(range(7), [(time(0), time(0))]))
DE_OFFICE = BusinessCalendar("Europe/Berlin", WEEKDAYS, country="DE")


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def be(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("calendar", "start", "budget", "due"),
    [
        # calendar time: plain elapsed time
        (None, sh(2026, 11, 6, 17), timedelta(hours=2), sh(2026, 11, 6, 19)),
        # Friday 17:00 + 2 business hours: one today, one on Monday
        (CN_OFFICE, sh(2026, 11, 6, 17), timedelta(hours=2), sh(2026, 11, 9, 10)),
        # Before opening: the clock starts at 09:00
        (CN_OFFICE, sh(2026, 11, 9, 7, 30), timedelta(hours=1), sh(2026, 11, 9, 10)),
        # A budget of exactly the rest of the day ends at closing time
        (CN_OFFICE, sh(2026, 11, 9, 9), timedelta(hours=9), sh(2026, 11, 9, 18)),
        # National Day: 1–7 October 2026 are days off, Saturday 10 October is a make-up
        # working day (调休), so 30 Sept 17:00 + 2 h is due Thursday 8 October 10:00 …
        (CN_OFFICE, sh(2026, 9, 30, 17), timedelta(hours=2), sh(2026, 10, 8, 10)),
        # … and Friday 9 October 17:00 + 2 h on Saturday 10 October 10:00
        (CN_OFFICE, sh(2026, 10, 9, 17), timedelta(hours=2), sh(2026, 10, 10, 10)),
        # Clocks go back in Berlin on Sunday 25 October 2026: that day has 25 hours
        (DE_ALWAYS, be(2026, 10, 24, 12), timedelta(hours=24), be(2026, 10, 25, 11)),
        (None, be(2026, 10, 24, 12), timedelta(hours=24), be(2026, 10, 25, 11)),
        # … and go forward on Sunday 29 March 2026: 23 hours
        (DE_ALWAYS, be(2026, 3, 28, 12), timedelta(hours=24), be(2026, 3, 29, 13)),
        # German office hours skip the weekend of the change as any other
        (DE_OFFICE, be(2026, 10, 23, 17), timedelta(hours=2), be(2026, 10, 26, 10)),
        # Christmas: 25 and 26 December are German public holidays (Fri, Sat in 2026)
        (DE_OFFICE, be(2026, 12, 24, 17), timedelta(hours=2), be(2026, 12, 28, 10)),
    ],
)
def test_due_at(
    calendar: BusinessCalendar | None, start: datetime, budget: timedelta, due: datetime
) -> None:
    assert due_at(start, budget, calendar) == due
    # and the way back: the working time until then is the budget
    assert working_time(start, due, calendar) == budget


def test_working_time_counts_open_hours_only() -> None:
    # Friday 12:00 to Monday 12:00: 6 h on Friday, 3 h on Monday
    assert working_time(sh(2026, 11, 6, 12), sh(2026, 11, 9, 12), CN_OFFICE) == timedelta(hours=9)
    assert working_time(sh(2026, 11, 9, 12), sh(2026, 11, 6, 12), CN_OFFICE) == timedelta(0)
    # the whole National Day week is one make-up Saturday's 9 hours
    week = working_time(sh(2026, 10, 1), sh(2026, 10, 11), CN_OFFICE)
    assert week == timedelta(hours=9 * 3)  # Thu 8, Fri 9, Sat 10 October


def test_custom_closures() -> None:
    closed = BusinessCalendar(
        "Asia/Shanghai", WEEKDAYS, closures=frozenset({sh(2026, 11, 9).date()})
    )
    assert due_at(sh(2026, 11, 6, 17), timedelta(hours=2), closed) == sh(2026, 11, 10, 10)


def test_a_schedule_without_hours_is_an_error() -> None:
    with pytest.raises(ValueError, match="no open hours"):
        due_at(sh(2026, 11, 6), timedelta(hours=1), BusinessCalendar("UTC", {}))


class TestClock:
    def test_pauses_move_the_due_time(self) -> None:
        clock = Clock(timedelta(hours=4)).start(sh(2026, 11, 9, 9))
        assert clock.due(CN_OFFICE) == sh(2026, 11, 9, 13)
        # waiting on the customer from 10:00 to 15:00: one hour used
        paused = clock.pause(sh(2026, 11, 9, 10), CN_OFFICE)
        assert paused.due(CN_OFFICE) is None
        assert paused.used(sh(2026, 11, 9, 15), CN_OFFICE) == timedelta(hours=1)
        resumed = paused.resume(sh(2026, 11, 9, 15))
        assert resumed.due(CN_OFFICE) == sh(2026, 11, 9, 18)  # 3 h left
        # paused over a weekend in calendar time: the weekend does not count either
        cal = Clock(timedelta(hours=24)).start(sh(2026, 11, 6, 12)).pause(sh(2026, 11, 6, 18), None)
        assert cal.resume(sh(2026, 11, 9, 12)).due(None) == sh(2026, 11, 10, 6)

    def test_share_used_and_stop(self) -> None:
        clock = Clock(timedelta(hours=10)).start(sh(2026, 11, 9, 9))
        assert clock.share_used(sh(2026, 11, 9, 17), CN_OFFICE) == pytest.approx(0.8)
        assert clock.share_used(sh(2026, 11, 10, 10), CN_OFFICE) == pytest.approx(1.0)
        stopped = clock.stop(sh(2026, 11, 9, 12), CN_OFFICE)
        assert stopped.stopped_at == sh(2026, 11, 9, 12)
        assert stopped.due(CN_OFFICE) is None
        assert stopped.used(sh(2026, 12, 1), CN_OFFICE) == timedelta(hours=3)
        assert stopped.resume(sh(2026, 12, 1)) == stopped  # a met clock stays stopped

    def test_instants_are_compared_in_utc(self) -> None:
        clock = Clock(timedelta(hours=1)).start(datetime(2026, 11, 9, 1, tzinfo=UTC))  # 09:00 SH
        assert clock.due(CN_OFFICE) == sh(2026, 11, 9, 10)
