"""SLA clocks: how much working time has passed, and when a budget runs out. Pure.

A clock counts either calendar time or business time. Business time is a weekly schedule in a
time zone (e.g. Monday–Friday 09:00–18:00 in Asia/Shanghai), minus the country's public
holidays (the `holidays` package, including China's substituted days off) and the tenant's own
closures, plus the country's make-up working days on weekends (调休), which follow Monday's
hours. All arithmetic is on instants (UTC), so a DST change makes a local day 23 or 25 hours
long exactly as the wall clock says.

A ticket's clock is stored as (budget, consumed so far, running since): pausing adds the
working time since `running_since` to `consumed`; resuming sets `running_since` again and the
due time becomes `due_at(now, budget - consumed)`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

# A budget that no schedule can meet within this many days is a configuration error
# (e.g. a schedule with no open hours), not a reason to loop forever.
MAX_DAYS = 3 * 366
END_OF_DAY = time(0)  # as an interval's end: midnight after the day


@dataclass(frozen=True)
class BusinessCalendar:
    """Open hours per ISO weekday (0 = Monday) as local [start, end) pairs; an end of
    00:00 means midnight at the end of the day."""

    timezone: str
    hours: Mapping[int, Sequence[tuple[time, time]]]
    country: str | None = None
    subdivision: str | None = None
    closures: frozenset[date] = field(default_factory=frozenset)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> holidays.HolidayBase | None:
        if self.country is None:
            return None
        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    def _weekday_hours(self, day: date) -> Sequence[tuple[time, time]]:
        if day in self.closures:
            return ()
        calendar = self._holidays
        if calendar is not None:
            if day in calendar:
                return ()
            if day in getattr(calendar, "weekend_workdays", ()):
                return self.hours.get(0, ())  # a make-up working day keeps Monday's hours
        return self.hours.get(day.weekday(), ())

    def open_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's open intervals as UTC instants."""
        result = []
        for start, end in self._weekday_hours(day):
            lo = datetime.combine(day, start, tzinfo=self.zone)
            hi_day = day + timedelta(days=1) if end == END_OF_DAY else day
            hi = datetime.combine(hi_day, end, tzinfo=self.zone)
            lo_utc, hi_utc = lo.astimezone(UTC), hi.astimezone(UTC)
            if lo_utc < hi_utc:
                result.append((lo_utc, hi_utc))
        return result

    def intervals_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals from `start` on (clipped to it), in order."""
        first = start.astimezone(self.zone).date() - timedelta(
            days=1
        )  # intervals may cross midnight
        for offset in range(MAX_DAYS):
            for lo, hi in self.open_intervals(first + timedelta(days=offset)):
                if hi <= start:
                    continue
                yield max(lo, start), hi
        raise ValueError(f"no open hours within {MAX_DAYS} days: check the business hours")


def working_time(start: datetime, end: datetime, calendar: BusinessCalendar | None) -> timedelta:
    """Working time in [start, end): elapsed time, or open hours only with a calendar."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return timedelta(0)
    if calendar is None:
        return end - start
    total = timedelta(0)
    for lo, hi in calendar.intervals_from(start):
        if lo >= end:
            break
        total += min(hi, end) - lo
    return total


def due_at(start: datetime, budget: timedelta, calendar: BusinessCalendar | None) -> datetime:
    """When `budget` of working time, counted from `start`, runs out."""
    start = start.astimezone(UTC)
    if budget <= timedelta(0):
        return start
    if calendar is None:
        return start + budget
    left = budget
    for lo, hi in calendar.intervals_from(start):
        if hi - lo >= left:
            return lo + left
        left -= hi - lo
    raise AssertionError("unreachable: intervals_from raises when it runs out")


@dataclass(frozen=True, slots=True)
class Clock:
    """One SLA clock of a ticket."""

    budget: timedelta
    consumed: timedelta = timedelta(0)
    running_since: datetime | None = None
    stopped_at: datetime | None = None  # met (e.g. first reply) or ticket resolved

    def start(self, now: datetime) -> Clock:
        return Clock(self.budget, self.consumed, now, None)

    def pause(self, now: datetime, calendar: BusinessCalendar | None) -> Clock:
        if self.running_since is None:
            return self
        used = working_time(self.running_since, now, calendar)
        return Clock(self.budget, self.consumed + used, None, self.stopped_at)

    def resume(self, now: datetime) -> Clock:
        if self.running_since is not None or self.stopped_at is not None:
            return self
        return Clock(self.budget, self.consumed, now, None)

    def stop(self, now: datetime, calendar: BusinessCalendar | None) -> Clock:
        paused = self.pause(now, calendar)
        return Clock(paused.budget, paused.consumed, None, now)

    def due(self, calendar: BusinessCalendar | None) -> datetime | None:
        """The due time while running; None while paused or stopped."""
        if self.running_since is None:
            return None
        return due_at(self.running_since, self.budget - self.consumed, calendar)

    def used(self, now: datetime, calendar: BusinessCalendar | None) -> timedelta:
        running = (
            working_time(self.running_since, now, calendar)
            if self.running_since is not None
            else timedelta(0)
        )
        return self.consumed + running

    def share_used(self, now: datetime, calendar: BusinessCalendar | None) -> float:
        """Used / budget: ≥ 1 is a breach, ≥ 0.8 the usual warning."""
        if self.budget <= timedelta(0):
            return 1.0
        return self.used(now, calendar) / self.budget
