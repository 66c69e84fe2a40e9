"""Buckets and rollup coverage: every instant of a period is counted exactly once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from feedback_api.kit.periods import (
    MAX_BUCKETS,
    Interval,
    TooManyBuckets,
    buckets,
    cover,
    cover_days,
    default_period,
    local_midnight,
    next_start,
    previous_period,
)
from feedback_api.kit.types import Bound

ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
]


def _span(grain: str, start: date) -> tuple[date, date]:
    return start, next_start(start, Interval(grain))


@given(
    st.dates(date(2024, 1, 1), date(2027, 12, 31)),
    st.integers(0, 800),
)
def test_cover_days_is_an_exact_partition(first: date, length: int) -> None:
    end = first + timedelta(days=length)
    pieces = sorted(_span(g.value, d) for g, d in cover_days(first, end))
    days = [d for lo, hi in pieces for d in (lo + timedelta(n) for n in range((hi - lo).days))]
    assert days == [first + timedelta(n) for n in range(length)]
    for grain, day in cover_days(first, end):
        if grain is Interval.MONTH:
            assert day.day == 1
        if grain is Interval.WEEK:
            assert day.weekday() == 0


def test_a_year_needs_few_rollup_rows() -> None:
    # twelve months: no day or week rows at all
    assert len(cover_days(date(2026, 1, 1), date(2027, 1, 1))) == 12
    # a ragged 365 days stays small
    assert len(cover_days(date(2025, 11, 19), date(2026, 11, 19))) < 30


# hypothesis takes naive bounds and attaches the zone itself
instants = st.datetimes(
    datetime(2025, 1, 1),  # noqa: DTZ001
    datetime(2027, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=150)
@given(
    instants, st.integers(1, 200 * 24), st.sampled_from(ZONES), st.sampled_from([None, *Interval])
)
@example(datetime(2025, 10, 26, 0, 0, tzinfo=UTC), 1, "Europe/Berlin", None)  # in the repeated hour
def test_buckets_and_coverage_partition_the_period(
    start: datetime, hours: int, zone_name: str, interval: Interval | None
) -> None:
    zone = ZoneInfo(zone_name)
    end = start + timedelta(hours=hours, minutes=7)
    parts = buckets(start, end, zone, interval)
    # As instants: Python never calls a local time in a repeated hour (the night DST ends)
    # equal to a time in another zone, even when it is the same instant.
    assert parts[0].start.astimezone(UTC) == start
    assert parts[-1].end.astimezone(UTC) == end
    for before, after in zip(parts, parts[1:], strict=False):
        assert before.end.astimezone(UTC) == after.start.astimezone(UTC)
        # inner boundaries are local midnights
        assert after.start == local_midnight(after.start.astimezone(zone).date(), zone)
    coverage = cover(parts, zone)
    # rollup spans and raw pieces tile each bucket without overlap
    pieces: dict[int, list[tuple[datetime, datetime]]] = {}
    for index, lo, hi in [*coverage.rollup_spans, *coverage.raw]:
        pieces.setdefault(index, []).append((lo.astimezone(UTC), hi.astimezone(UTC)))
    for bucket in parts:
        tiles = sorted(pieces[bucket.index])
        assert tiles[0][0] == bucket.start.astimezone(UTC)
        assert tiles[-1][1] == bucket.end.astimezone(UTC)
        for (_, hi), (lo, _) in zip(tiles, tiles[1:], strict=False):
            assert hi == lo
    # the rollup rows of each bucket cover exactly its span's local days
    for index, lo, hi in coverage.rollup_spans:
        rows = [(g, d) for i, g, d in coverage.rollup if i == index]
        days = sorted(
            day
            for g, d in rows
            for day in (d + timedelta(n) for n in range((next_start(d, Interval(g)) - d).days))
        )
        first, last = lo.astimezone(zone).date(), hi.astimezone(zone).date()
        assert days == [first + timedelta(n) for n in range((last - first).days)]


def test_a_shanghai_day() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    (bucket,) = buckets(
        local_midnight(date(2026, 9, 1), zone), local_midnight(date(2026, 9, 2), zone), zone, None
    )
    assert bucket.start == datetime(2026, 8, 31, 16, tzinfo=UTC)
    assert bucket.end == datetime(2026, 9, 1, 16, tzinfo=UTC)


def test_a_skipped_midnight_starts_the_day_at_the_change() -> None:
    # Santiago moved clocks from 00:00 to 01:00 on 2026-09-06
    zone = ZoneInfo("America/Santiago")
    midnight = local_midnight(date(2026, 9, 6), zone)
    assert midnight.astimezone(zone).date() == date(2026, 9, 6)
    assert (midnight - timedelta(seconds=1)).astimezone(zone).date() == date(2026, 9, 5)


def test_default_period_is_the_last_30_days_including_today() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # already the 23rd in Shanghai
    start, end = default_period(now, zone)
    assert start == local_midnight(date(2026, 10, 25), zone)
    assert end == local_midnight(date(2026, 11, 24), zone)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # whole local days: the same number of days before, across the DST change
        (
            datetime(2026, 10, 26, tzinfo=ZoneInfo("Europe/Berlin")),
            datetime(2026, 11, 2, tzinfo=ZoneInfo("Europe/Berlin")),
            datetime(2026, 10, 19, tzinfo=ZoneInfo("Europe/Berlin")),
        ),
        # arbitrary instants: the same elapsed time before
        (
            datetime(2026, 9, 1, 12, tzinfo=UTC),
            datetime(2026, 9, 2, 12, tzinfo=UTC),
            datetime(2026, 8, 31, 12, tzinfo=UTC),
        ),
    ],
)
def test_previous_period(start: datetime, end: datetime, expected: datetime) -> None:
    zone = ZoneInfo("Europe/Berlin")
    assert previous_period(start, end, zone) == (expected, start)


# --- every bound a client may send --------------------------------------------------------

EXTREME_ZONES = [*ZONES, "Pacific/Kiritimati", "Etc/GMT-14", "Etc/GMT+12", "America/St_Johns"]
_BOUND: TypeAdapter[datetime | date] = TypeAdapter(Bound)


@st.composite
def bounds(draw: st.DrawFn) -> datetime | date:
    """What `from`/`to` may be: a date, or a date-time with any offset, near and inside the
    edges of the range `Bound` accepts (drawn a little beyond it, and kept if accepted)."""
    day = draw(
        st.one_of(
            st.dates(date(1899, 12, 30), date(1900, 1, 3)),
            st.dates(date(2999, 12, 28), date(2999, 12, 31)),
            st.dates(date(1900, 1, 1), date(2999, 12, 31)),
        )
    )
    if draw(st.booleans()):
        text = day.isoformat()
    else:
        seconds = draw(st.integers(0, 86399))
        offset = draw(st.integers(-14 * 60, 14 * 60))
        sign = "-" if offset < 0 else "+"
        text = (
            f"{day.isoformat()}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        )
    try:
        return _BOUND.validate_python(text)
    except ValidationError:
        assume(False)
        raise


def _instant(bound: datetime | date, zone: ZoneInfo) -> datetime:
    return bound if isinstance(bound, datetime) else local_midnight(bound, zone)


@settings(max_examples=200, deadline=None)
@given(bounds(), bounds(), st.sampled_from(EXTREME_ZONES), st.sampled_from([None, *Interval]))
def test_no_accepted_bound_overflows_the_period_arithmetic(
    a: datetime | date, b: datetime | date, zone_name: str, interval: Interval | None
) -> None:
    """From 1900-01-01 to 2999-12-31, in any zone: buckets (or `TooManyBuckets`), their
    coverage, the previous period and the default period all compute."""
    zone = ZoneInfo(zone_name)
    start, end = sorted((_instant(a, zone), _instant(b, zone)))
    assume(start < end)
    previous_period(start, end, zone)
    default_period(start, zone)
    default_period(end, zone)
    try:
        parts = buckets(start, end, zone, interval)
    except TooManyBuckets:
        assert interval is not None
        return
    assert len(parts) <= MAX_BUCKETS
    assert (parts[0].start, parts[-1].end) == (start, end)
    cover(parts, zone)


def test_a_trend_is_capped() -> None:
    zone = ZoneInfo("UTC")
    start, end = datetime(1900, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, tzinfo=UTC)
    with pytest.raises(TooManyBuckets, match="more than 1000 buckets"):
        buckets(start, end, zone, Interval.MONTH)
    assert len(buckets(start, datetime(1983, 4, 1, tzinfo=UTC), zone, Interval.MONTH)) == 999
