"""Whether a customer may be asked at a given moment, and if not why and from when. Pure.

The order of the checks is the order of the reasons' weight: a block (erasure, unsubscribe,
bounce, channel opt-out) is permanent until lifted; cooldown and frequency pass with time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

ALL_CHANNELS = "*"


class Reason(StrEnum):
    ERASED = "erased"
    UNSUBSCRIBED = "unsubscribed"
    CHANNEL_OPTED_OUT = "channel_opted_out"
    BOUNCED = "bounced"
    SURVEY_INACTIVE = "survey_inactive"
    COOLDOWN = "cooldown"
    FREQUENCY = "frequency"
    QUIET_HOURS = "quiet_hours"
    QUIET_HOURS_LIMIT = "quiet_hours_limit"


@dataclass(frozen=True, slots=True)
class Contact:
    """An invitation that counts as asking: scheduled, sent, answered or expired."""

    survey_id: UUID
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason | None
    next_eligible_at: datetime | None = None

    @property
    def eligible(self) -> bool:
        return self.reason is None


def blocked(blocks: Mapping[str, str], channel: str | None) -> Reason | None:
    """`blocks`: channel (or `*`) → reason stored for the customer."""
    everywhere = blocks.get(ALL_CHANNELS)
    if everywhere == "erased":
        return Reason.ERASED
    if everywhere is not None:
        return Reason.UNSUBSCRIBED
    here = blocks.get(channel) if channel is not None else None
    if here == "bounced":
        return Reason.BOUNCED
    if here is not None:
        return Reason.CHANNEL_OPTED_OUT
    return None


def _clashes(contacts: Collection[Contact], at: datetime, window: timedelta) -> list[Contact]:
    # Asked at t, the next ask may be at t + window exactly: strictly closer clashes.
    return [c for c in contacts if abs(c.due_at - at) < window]


def spacing(
    contacts: Collection[Contact],
    at: datetime,
    *,
    survey_id: UUID | None,
    frequency: timedelta,
    cooldown: timedelta | None,
) -> Decision:
    """Frequency across all surveys, and the survey's own cooldown, around `at` (contacts in
    the future count too: a scheduled invitation blocks the days before it as well)."""
    same = [c for c in contacts if c.survey_id == survey_id] if survey_id is not None else []
    rules: list[tuple[Collection[Contact], timedelta]] = [(contacts, frequency)]
    if cooldown is not None:
        rules.append((same, cooldown))
    reason: Reason | None = None
    if cooldown is not None and _clashes(same, at, cooldown):
        reason = Reason.COOLDOWN
    elif _clashes(contacts, at, frequency):
        reason = Reason.FREQUENCY
    if reason is None:
        return Decision(None)
    # The first moment after `at` that clashes with nothing: each step jumps past the
    # latest clash, so this ends after at most len(contacts) steps.
    moment = at
    while True:
        later = [c.due_at + w for group, w in rules for c in _clashes(group, moment, w)]
        if not later:
            return Decision(reason, moment)
        moment = max(later)
