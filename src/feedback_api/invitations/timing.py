"""When an invitation may go out: quiet hours in the customer's time zone. Pure.

Quiet hours are a local wall-clock window [start, end), which may cross midnight (the default
21:00–09:00). A due time inside it moves to the window's next end. All arithmetic is on
instants: on a DST night the window is as long as the wall clock says. An end time that does
not exist that day (inside a spring-forward gap) resolves to the same wall time after the gap,
i.e. a little later, never earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time = time(21)
    end: time = time(9)

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False  # no quiet hours
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def next_allowed(due: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """`due`, or the end of the quiet window it falls in (as a UTC instant)."""
    local = due.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return due.astimezone(UTC)
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)  # late evening: the window ends tomorrow morning
    end = datetime.combine(day, quiet.end, tzinfo=zone).astimezone(UTC)
    return max(end, due.astimezone(UTC))
