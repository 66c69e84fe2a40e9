"""Which response opens a ticket, and how: ordered rules, first match wins. Pure.

Conditions left empty match everything; all given conditions must hold. Keywords match the
comment case-insensitively as substrings, which works for Chinese as for English (no word
boundaries needed). Customer attributes compare as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


def raised(priority: Priority) -> Priority:
    """One step more urgent (escalation); urgent stays urgent."""
    index = PRIORITY_ORDER.index(priority)
    return PRIORITY_ORDER[min(index + 1, len(PRIORITY_ORDER) - 1)]


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule can look at in a stored response."""

    kind: str
    score: int
    channel: str
    touchpoint: str | None = None
    tags: frozenset[str] = frozenset()
    comment: str | None = None
    agent_ref: str | None = None
    location_ref: str | None = None
    customer_attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Conditions:
    kinds: frozenset[str] = frozenset()
    score_min: int | None = None
    score_max: int | None = None
    channels: frozenset[str] = frozenset()
    touchpoints: frozenset[str] = frozenset()
    tags_any: frozenset[str] = frozenset()
    keywords_any: tuple[str, ...] = ()
    agent_refs: frozenset[str] = frozenset()
    location_refs: frozenset[str] = frozenset()
    customer_attributes: Mapping[str, str] = field(default_factory=dict)

    def match(self, facts: Facts) -> bool:
        if self.kinds and facts.kind not in self.kinds:
            return False
        if self.score_min is not None and facts.score < self.score_min:
            return False
        if self.score_max is not None and facts.score > self.score_max:
            return False
        if self.channels and facts.channel not in self.channels:
            return False
        if self.touchpoints and facts.touchpoint not in self.touchpoints:
            return False
        if self.tags_any and not (self.tags_any & facts.tags):
            return False
        if self.agent_refs and facts.agent_ref not in self.agent_refs:
            return False
        if self.location_refs and facts.location_ref not in self.location_refs:
            return False
        if self.keywords_any:
            comment = (facts.comment or "").casefold()
            if not any(k.casefold() in comment for k in self.keywords_any):
                return False
        for name, wanted in self.customer_attributes.items():
            value = facts.customer_attributes.get(name)
            if value is None or _as_text(value) != wanted:
                return False
        return True


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class Action:
    priority: Priority = Priority.NORMAL
    team: str | None = None
    assignee: str | None = None
    sla_policy: str | None = None  # the policy's key; None = the tenant's default policy


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    position: int
    conditions: Conditions
    action: Action
    enabled: bool = True
    id: UUID | None = None  # the stored rule's id


def first_match(rules: Iterable[Rule], facts: Facts) -> Rule | None:
    """The first enabled rule, by position, whose conditions hold."""
    for rule in sorted(rules, key=lambda r: r.position):
        if rule.enabled and rule.conditions.match(facts):
            return rule
    return None


# A new tenant's rules: every unhappy answer gets a ticket; the angriest first.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "NPS 0–3: high",
        10,
        Conditions(kinds=frozenset({"nps"}), score_max=3),
        Action(priority=Priority.HIGH),
    ),
    Rule(
        "NPS detractor (0–6)",
        20,
        Conditions(kinds=frozenset({"nps"}), score_max=6),
        Action(priority=Priority.NORMAL),
    ),
    Rule(
        "CSAT 1–2",
        30,
        Conditions(kinds=frozenset({"csat"}), score_max=2),
        Action(priority=Priority.NORMAL),
    ),
    Rule(
        "CES 5–7 (hard to get it done)",
        40,
        Conditions(kinds=frozenset({"ces"}), score_min=5),
        Action(priority=Priority.NORMAL),
    ),
)
