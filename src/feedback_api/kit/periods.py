"""Periods, buckets and how the rollup covers them, in the tenant's time zone. Pure.

A period is half-open, [start, end), in instants. Buckets (trend) cut it at local day, week
(ISO, Monday) or month boundaries. The rollup holds whole local days, weeks and months, so
each bucket is answered from the fewest rollup rows that cover its whole local days, and the
pieces of a day at either end of the period (when it does not start or end at local
midnight) are read from the raw responses.

Every bound a client can send lies in [kit.types.MIN_TIME, MAX_TIME) (1900..2999), so the
date arithmetic here (a month past the end, the period of the same length before the start,
at most ~1,100 years back) stays far inside what `date` and PostgreSQL represent; a trend is
capped at MAX_BUCKETS buckets (`TooManyBuckets`) so that the loop cutting it is short.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from feedback_api.exceptions import InvalidRequest

#: A `from`/`to` as a client sends it (kit.types.Bound): an instant, a local date, or unset.
PeriodBound = datetime | date | None

MAX_BUCKETS = 1000


class TooManyBuckets(ValueError):
    """A trend would have more than MAX_BUCKETS buckets (a 422 `too_many_buckets`)."""

    def __init__(self) -> None:
        super().__init__(f"more than {MAX_BUCKETS} buckets")


class Interval(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local date. Where midnight is skipped by a DST change this is
    the moment of the change (zoneinfo resolves the gap with the earlier offset); where it
    repeats, the first occurrence."""
    return datetime.combine(day, time(), tzinfo=zone)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def start_of(day: date, interval: Interval) -> date:
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())
    if interval is Interval.MONTH:
        return day.replace(day=1)
    return day


def next_start(day: date, interval: Interval) -> date:
    """The first day of the next day/week/month after the one holding `day`."""
    if interval is Interval.MONTH:
        first = day.replace(day=1)
        return (
            first.replace(year=first.year + 1, month=1)
            if first.month == 12
            else first.replace(month=first.month + 1)
        )
    if interval is Interval.WEEK:
        return start_of(day, interval) + timedelta(days=7)
    return day + timedelta(days=1)


def _first_boundary(day: date, interval: Interval) -> date:
    """The first day/week/month start on or after `day`."""
    return day if start_of(day, interval) == day else next_start(day, interval)


def cover_days(first: date, end: date) -> list[tuple[Interval, date]]:
    """Rollup rows (grain, start) that cover the local days [first, end) exactly: whole
    months, then whole weeks, then single days."""
    if first >= end:
        return []
    month_lo, month_hi = _first_boundary(first, Interval.MONTH), start_of(end, Interval.MONTH)
    if month_lo < month_hi:
        months: list[tuple[Interval, date]] = []
        day = month_lo
        while day < month_hi:
            months.append((Interval.MONTH, day))
            day = next_start(day, Interval.MONTH)
        return [*_cover_weeks(first, month_lo), *months, *_cover_weeks(month_hi, end)]
    return _cover_weeks(first, end)


def _cover_weeks(first: date, end: date) -> list[tuple[Interval, date]]:
    week_lo, week_hi = _first_boundary(first, Interval.WEEK), start_of(end, Interval.WEEK)
    if week_lo < week_hi:
        weeks = [
            (Interval.WEEK, week_lo + timedelta(days=7 * i))
            for i in range((week_hi - week_lo).days // 7)
        ]
        return [*_days(first, week_lo), *weeks, *_days(week_hi, end)]
    return _days(first, end)


def _days(first: date, end: date) -> list[tuple[Interval, date]]:
    return [(Interval.DAY, first + timedelta(days=i)) for i in range((end - first).days)]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket of a period: [start, end) in instants, labelled by its local start."""

    index: int
    start: datetime
    end: datetime


@dataclass(slots=True)
class Coverage:
    """How to read a period's buckets: rollup rows (bucket, grain, start), the instants
    those rows span (bucket, lo, hi: not-yet-folded deltas are read for the same spans),
    and partial days read raw (bucket, lo, hi)."""

    rollup: list[tuple[int, str, date]] = field(default_factory=list)
    rollup_spans: list[tuple[int, datetime, datetime]] = field(default_factory=list)
    raw: list[tuple[int, datetime, datetime]] = field(default_factory=list)


def buckets(
    start: datetime, end: datetime, zone: ZoneInfo, interval: Interval | None
) -> list[Bucket]:
    """The period cut at local boundaries (one bucket when `interval` is None)."""
    if interval is None:
        return [Bucket(0, start.astimezone(zone), end.astimezone(zone))]
    result: list[Bucket] = []
    lo = start.astimezone(zone)
    while lo < end:
        hi = min(local_midnight(next_start(local_date(lo, zone), interval), zone), end)
        result.append(Bucket(len(result), lo, hi.astimezone(zone)))
        if len(result) > MAX_BUCKETS:
            raise TooManyBuckets
        lo = hi.astimezone(zone)
    return result


def _whole_days(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date] | None:
    """The local days lying wholly inside [start, end), as [first, end_day)."""
    first = local_date(start, zone)
    if local_midnight(first, zone) < start:
        first += timedelta(days=1)
    end_day = local_date(end, zone)
    if first >= end_day:
        return None
    return first, end_day


def cover(parts: list[Bucket], zone: ZoneInfo) -> Coverage:
    coverage = Coverage()
    for bucket in parts:
        days = _whole_days(bucket.start, bucket.end, zone)
        if days is None:
            coverage.raw.append((bucket.index, bucket.start, bucket.end))
            continue
        lo, hi = local_midnight(days[0], zone), local_midnight(days[1], zone)
        for grain, day in cover_days(*days):
            coverage.rollup.append((bucket.index, grain.value, day))
        coverage.rollup_spans.append((bucket.index, lo, hi))
        if bucket.start < lo:
            coverage.raw.append((bucket.index, bucket.start, lo))
        if hi < bucket.end:
            coverage.raw.append((bucket.index, hi, bucket.end))
    return coverage


def default_period(now: datetime, zone: ZoneInfo, days: int = 30) -> tuple[datetime, datetime]:
    """The last `days` local days, today included: [midnight `days - 1` days ago, tomorrow's
    midnight)."""
    today = local_date(now, zone)
    return (
        local_midnight(today - timedelta(days=days - 1), zone),
        local_midnight(today + timedelta(days=1), zone),
    )


def instant(bound: PeriodBound, zone: ZoneInfo) -> datetime | None:
    """A bound as an instant: a date is its local midnight in `zone`."""
    if bound is None or isinstance(bound, datetime):
        return bound
    return local_midnight(bound, zone)


def resolve_period(
    start: PeriodBound,
    end: PeriodBound,
    zone: ZoneInfo,
    now: datetime,
    names: tuple[str, str] = ("from", "to"),
) -> tuple[datetime, datetime]:
    """The one reading of `from`/`to` for every report: dates are local midnights; with
    neither, the last 30 local days (`default_period`); with one, a period of that length
    from or to it. `start` must come before `end` (422 `period_order` on `names[0]`)."""
    lo, hi = instant(start, zone), instant(end, zone)
    if lo is None or hi is None:
        default_start, default_end = default_period(now, zone)
        length = default_end - default_start
        if lo is None and hi is None:
            lo, hi = default_start, default_end
        elif lo is None:
            assert hi is not None
            lo = hi - length
        else:
            hi = lo + length
    if lo >= hi:
        raise InvalidRequest.at(
            ("query", names[0]),
            "period_order",
            f"must be before {names[1]}",
            detail=f"`{names[0]}` must be before `{names[1]}`",
        )
    return lo, hi


def previous_period(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The period of the same length just before: in local days when both ends are local
    midnights (so a DST change does not shift it by an hour), else in elapsed time."""
    first, last = local_date(start, zone), local_date(end, zone)
    if local_midnight(first, zone) == start and local_midnight(last, zone) == end:
        return local_midnight(first - (last - first), zone), start
    return start - (end - start), start


def iter_days(first: date, end: date) -> Iterator[date]:
    day = first
    while day < end:
        yield day
        day += timedelta(days=1)
