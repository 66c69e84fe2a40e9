"""A ticket's two SLA clocks as stored in its row, and the calendars they count on."""

from __future__ import annotations

from datetime import datetime, time, timedelta

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


def budget_for(policy: SlaPolicy, priority: str, clock: ClockName) -> timedelta:
    return timedelta(minutes=policy.targets[priority][f"{clock.value}_minutes"])


def clock_of(ticket: Ticket, name: ClockName) -> Clock:
    return Clock(
        budget=getattr(ticket, f"{name}_budget"),
        consumed=getattr(ticket, f"{name}_consumed"),
        running_since=getattr(ticket, f"{name}_running_since"),
        stopped_at=getattr(ticket, f"{name}_stopped_at"),
    )


def put_clock(
    ticket: Ticket,
    name: ClockName,
    clock: Clock,
    calendar: BusinessCalendar | None,
    warn_percent: int,
) -> None:
    """Store a clock and the times derived from it, then when the SLA job must look again."""
    setattr(ticket, f"{name}_budget", clock.budget)
    setattr(ticket, f"{name}_consumed", clock.consumed)
    setattr(ticket, f"{name}_running_since", clock.running_since)
    setattr(ticket, f"{name}_stopped_at", clock.stopped_at)
    setattr(ticket, f"{name}_due_at", clock.due(calendar))
    warn_at = None
    if clock.running_since is not None and getattr(ticket, f"{name}_warned_at") is None:
        left = clock.budget * warn_percent / 100 - clock.consumed
        warn_at = due_at(clock.running_since, max(left, timedelta(0)), calendar)
    setattr(ticket, f"{name}_warn_at", warn_at)
    schedule_check(ticket)


def schedule_check(ticket: Ticket) -> None:
    pending = []
    for name in CLOCKS:
        warn_at = getattr(ticket, f"{name}_warn_at")
        due = getattr(ticket, f"{name}_due_at")
        if warn_at is not None and getattr(ticket, f"{name}_warned_at") is None:
            pending.append(warn_at)
        if due is not None and getattr(ticket, f"{name}_breached_at") is None:
            pending.append(due)
    ticket.next_sla_check_at = min(pending) if pending else None


def clock_read(
    ticket: Ticket, name: ClockName, now: datetime, calendar: BusinessCalendar | None
) -> SlaClockRead:
    clock = clock_of(ticket, name)
    if clock.stopped_at is not None:
        state = "stopped"
    elif clock.running_since is None:
        state = "paused"
    else:
        state = "running"
    return SlaClockRead(
        target_seconds=int(clock.budget.total_seconds()),
        used_seconds=int(clock.used(now, calendar).total_seconds()),
        state=state,
        due_at=getattr(ticket, f"{name}_due_at"),
        stopped_at=clock.stopped_at,
        warned_at=getattr(ticket, f"{name}_warned_at"),
        breached_at=getattr(ticket, f"{name}_breached_at"),
    )
