"""A ticket's two SLA clocks as stored in its row, and the calendars they count on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

from feedback_api.models import SlaPolicy, Ticket
from feedback_api.tickets.schemas import (
    WEEKDAYS,
    BusinessHours,
    ClockName,
    SlaClockRead,
    parse_hhmm,
)
from feedback_api.tickets.sla import BusinessCalendar, Clock, due_at

CLOCKS = (ClockName.FIRST_RESPONSE, ClockName.RESOLUTION)


def calendar_of(policy: SlaPolicy, tenant_timezone: str) -> BusinessCalendar | None:
    if policy.business_hours is None:
        return None
    hours = BusinessHours.model_validate(policy.business_hours)
    weekly: dict[int, list[tuple[time, time]]] = {
        WEEKDAYS.index(day): [(parse_hhmm(a), parse_hhmm(b)) for a, b in spans]
        for day, spans in hours.weekly.items()
    }
    return BusinessCalendar(
        timezone=hours.timezone or tenant_timezone,
        hours=weekly,
        country=hours.country,
        subdivision=hours.subdivision,
        closures=frozenset(hours.closures),
    )


@dataclass(frozen=True, slots=True)
class SlaClocks:
    """Both SLA clocks of one ticket (first response, resolution) under its policy.

    The row stores each clock as an `sla.Clock` (budget, consumed, running since, stopped
    at) in `<clock>_*` columns, next to what follows from it: the due time, the warning
    time, and `next_sla_check_at`, when the SLA job must look again. Every change here
    stores the clocks it changed with those times recomputed, so no caller writes a clock
    column itself. Running clocks keep the calendar they were last stored with until they
    next change."""

    ticket: Ticket
    policy: SlaPolicy
    calendar: BusinessCalendar | None

    # --- changes ---------------------------------------------------------------------------
    def start(self, now: datetime) -> None:
        """A new ticket: both clocks run from `now` on its priority's targets."""
        for name in CLOCKS:
            self._put(name, Clock(self._budget(name, self.ticket.priority)).start(now))

    def pause(self, now: datetime) -> None:
        """Waiting on the customer: running clocks keep what they used and stop counting."""
        self._change(lambda clock: clock.pause(now, self.calendar))

    def resume(self, now: datetime) -> None:
        """Back from waiting: paused clocks count again from `now`."""
        self._change(lambda clock: clock.resume(now))

    def stop(self, now: datetime, *names: ClockName) -> None:
        """Stop the clocks named (default: both) that still count: resolving stops both,
        the first reply the first-response clock."""
        for name in names or CLOCKS:
            clock = self.clock(name)
            if clock.stopped_at is None:
                self._put(name, clock.stop(now, self.calendar))

    def restart(self, now: datetime) -> None:
        """Reopening: the resolution clock counts again from `now`, with what it used
        before. The first response stays answered (resolving stopped it)."""
        clock = self.clock(ClockName.RESOLUTION)
        self._put(ClockName.RESOLUTION, Clock(clock.budget, clock.consumed, now, None))

    def reprice(self, priority: str) -> None:
        """A new priority: clocks still counting take its targets, keeping what they used."""
        for name in CLOCKS:
            clock = self.clock(name)
            if clock.stopped_at is None:
                self._put(name, replace(clock, budget=self._budget(name, priority)))

    # --- warnings and breaches -----------------------------------------------------------
    def warning_due(self, name: ClockName, now: datetime) -> bool:
        warn_at = self._get(name, "warn_at")
        return warn_at is not None and warn_at <= now and self._get(name, "warned_at") is None

    def mark_warned(self, name: ClockName, now: datetime) -> None:
        self._set(name, "warned_at", now)
        self._set(name, "warn_at", None)

    def breach_due(self, name: ClockName, now: datetime) -> bool:
        due = self._get(name, "due_at")
        return due is not None and due <= now and self._get(name, "breached_at") is None

    def late(self) -> list[tuple[ClockName, datetime]]:
        """Clocks that stopped over budget before the SLA job noticed and are not marked
        breached, with when they stopped."""
        late = []
        for name in CLOCKS:
            clock = self.clock(name)
            if clock.stopped_at is None or self._get(name, "breached_at") is not None:
                continue
            if clock.consumed > clock.budget:
                late.append((name, clock.stopped_at))
        return late

    def mark_breached(self, name: ClockName, at: datetime) -> None:
        self._set(name, "breached_at", at)

    def due_at(self, name: ClockName) -> datetime | None:
        due: datetime | None = self._get(name, "due_at")
        return due

    def reschedule(self) -> None:
        """When the SLA job must look again: the earliest warning or breach still to come."""
        pending = []
        for name in CLOCKS:
            warn_at, due = self._get(name, "warn_at"), self._get(name, "due_at")
            if warn_at is not None and self._get(name, "warned_at") is None:
                pending.append(warn_at)
            if due is not None and self._get(name, "breached_at") is None:
                pending.append(due)
        self.ticket.next_sla_check_at = min(pending) if pending else None

    # --- reading -------------------------------------------------------------------------
    def clock(self, name: ClockName) -> Clock:
        return Clock(
            budget=self._get(name, "budget"),
            consumed=self._get(name, "consumed"),
            running_since=self._get(name, "running_since"),
            stopped_at=self._get(name, "stopped_at"),
        )

    def read(self, name: ClockName, now: datetime) -> SlaClockRead:
        clock = self.clock(name)
        if clock.stopped_at is not None:
            state = "stopped"
        elif clock.running_since is None:
            state = "paused"
        else:
            state = "running"
        return SlaClockRead(
            target_seconds=int(clock.budget.total_seconds()),
            used_seconds=int(clock.used(now, self.calendar).total_seconds()),
            state=state,
            due_at=self._get(name, "due_at"),
            stopped_at=clock.stopped_at,
            warned_at=self._get(name, "warned_at"),
            breached_at=self._get(name, "breached_at"),
        )

    # --- the row -------------------------------------------------------------------------
    def _budget(self, name: ClockName, priority: str) -> timedelta:
        return timedelta(minutes=self.policy.targets[priority][f"{name.value}_minutes"])

    def _change(self, change: Callable[[Clock], Clock]) -> None:
        for name in CLOCKS:
            self._put(name, change(self.clock(name)))

    def _put(self, name: ClockName, clock: Clock) -> None:
        """Store a clock and the times derived from it, then when the SLA job must look."""
        self._set(name, "budget", clock.budget)
        self._set(name, "consumed", clock.consumed)
        self._set(name, "running_since", clock.running_since)
        self._set(name, "stopped_at", clock.stopped_at)
        self._set(name, "due_at", clock.due(self.calendar))
        warn_at = None
        if clock.running_since is not None and self._get(name, "warned_at") is None:
            left = clock.budget * self.policy.warn_at_percent / 100 - clock.consumed
            warn_at = due_at(clock.running_since, max(left, timedelta(0)), self.calendar)
        self._set(name, "warn_at", warn_at)
        self.reschedule()

    def _get(self, name: ClockName, column: str) -> Any:
        return getattr(self.ticket, f"{name.value}_{column}")

    def _set(self, name: ClockName, column: str, value: Any) -> None:
        setattr(self.ticket, f"{name.value}_{column}", value)
