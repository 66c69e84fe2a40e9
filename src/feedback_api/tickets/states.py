"""The ticket status machine. Pure.

open → acknowledged → in_progress ⇄ waiting_on_customer → resolved → closed, and back to
work through `reopened` (by hand, or by a repeat complaint after resolution). Acknowledging is
optional (open → in_progress). Anything else is refused with a 409 problem.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"


ALLOWED: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset({Status.ACKNOWLEDGED, Status.IN_PROGRESS}),
    Status.ACKNOWLEDGED: frozenset({Status.IN_PROGRESS}),
    Status.IN_PROGRESS: frozenset({Status.WAITING_ON_CUSTOMER, Status.RESOLVED}),
    Status.WAITING_ON_CUSTOMER: frozenset({Status.IN_PROGRESS, Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.CLOSED, Status.REOPENED}),
    Status.CLOSED: frozenset({Status.REOPENED}),
    Status.REOPENED: frozenset({Status.ACKNOWLEDGED, Status.IN_PROGRESS}),
}
# Statuses in which a ticket is being worked: a new complaint attaches to it.
ACTIVE = frozenset(
    {
        Status.OPEN,
        Status.ACKNOWLEDGED,
        Status.IN_PROGRESS,
        Status.WAITING_ON_CUSTOMER,
        Status.REOPENED,
    }
)
# SLA clocks do not run while the team waits for the customer.
PAUSED = frozenset({Status.WAITING_ON_CUSTOMER})


def can_move(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]


def allowed_from(current: Status) -> list[str]:
    """For the 409 problem: where this ticket may go instead."""
    return sorted(s.value for s in ALLOWED[current])
