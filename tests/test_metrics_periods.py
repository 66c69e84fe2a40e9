"""Buckets and rollup coverage: every instant of a period is counted exactly once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_api.metrics.periods import (
    Interval,
    buckets,
    cover,
    cover_days,
    default_period,
    local_midnight,
    next_start,
    previous_period,
)

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
def test_buckets_and_coverage_partition_the_period(
    start: datetime, hours: int, zone_name: str, interval: Interval | None
) -> None:
    zone = ZoneInfo(zone_name)
    end = start + timedelta(hours=hours, minutes=7)
    parts = buckets(start, end, zone, interval)
    assert parts[0].start == start
    assert parts[-1].end == end
    for before, after in zip(parts, parts[1:], strict=False):
        assert before.end == after.start
        # inner boundaries are local midnights
        assert after.start == local_midnight(after.start.astimezone(zone).date(), zone)
    coverage = cover(parts, zone)
    # rollup spans and raw pieces tile each bucket without overlap
    pieces: dict[int, list[tuple[datetime, datetime]]] = {}
    for index, lo, hi in [*coverage.rollup_spans, *coverage.raw]:
        pieces.setdefault(index, []).append((lo, hi))
    for bucket in parts:
        tiles = sorted(pieces[bucket.index])
        assert tiles[0][0] == bucket.start
        assert tiles[-1][1] == bucket.end
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
