"""Ticket rules (order, conditions, defaults) and the status machine."""

from __future__ import annotations

from itertools import product

import pytest

from feedback_api.tickets.rules import (
    DEFAULT_RULES,
    Action,
    Conditions,
    Facts,
    Priority,
    Rule,
    first_match,
    raised,
)
from feedback_api.tickets.states import ALLOWED, Status, allowed_from, can_move


@pytest.mark.parametrize(
    ("kind", "score", "priority"),
    [
        ("nps", 0, Priority.HIGH),
        ("nps", 3, Priority.HIGH),
        ("nps", 4, Priority.NORMAL),
        ("nps", 6, Priority.NORMAL),
        ("nps", 7, None),
        ("nps", 10, None),
        ("csat", 1, Priority.NORMAL),
        ("csat", 2, Priority.NORMAL),
        ("csat", 3, None),
        ("ces", 4, None),
        ("ces", 5, Priority.NORMAL),
        ("ces", 7, Priority.NORMAL),
        ("rating", 1, None),
    ],
)
def test_default_rules(kind: str, score: int, priority: Priority | None) -> None:
    rule = first_match(DEFAULT_RULES, Facts(kind=kind, score=score, channel="crm"))
    assert (rule.action.priority if rule else None) == priority


def test_first_match_by_position_not_by_list_order() -> None:
    broad = Rule("any detractor", 20, Conditions(score_max=6), Action(team="care"))
    vip = Rule(
        "gold customers",
        10,
        Conditions(score_max=6, customer_attributes={"tier": "gold"}),
        Action(priority=Priority.URGENT, team="vip"),
    )
    gold = Facts(kind="nps", score=2, channel="crm", customer_attributes={"tier": "gold"})
    silver = Facts(kind="nps", score=2, channel="crm", customer_attributes={"tier": "silver"})
    assert first_match([broad, vip], gold) is vip
    assert first_match([broad, vip], silver) is broad
    disabled = Rule("off", 1, Conditions(), Action(team="nobody"), enabled=False)
    assert first_match([disabled, broad], silver) is broad


@pytest.mark.parametrize(
    ("conditions", "facts", "matches"),
    [
        (Conditions(channels=frozenset({"app"})), Facts("nps", 3, "web"), False),
        (Conditions(channels=frozenset({"app"})), Facts("nps", 3, "app"), True),
        (Conditions(touchpoints=frozenset({"delivery"})), Facts("nps", 3, "app"), False),
        (
            Conditions(touchpoints=frozenset({"delivery"})),
            Facts("nps", 3, "app", touchpoint="delivery"),
            True,
        ),
        (Conditions(tags_any=frozenset({"late", "broken"})), Facts("nps", 3, "app"), False),
        (
            Conditions(tags_any=frozenset({"late", "broken"})),
            Facts("nps", 3, "app", tags=frozenset({"broken", "x"})),
            True,
        ),
        (Conditions(keywords_any=("refund",)), Facts("nps", 3, "app", comment="REFUND now"), True),
        (Conditions(keywords_any=("退款",)), Facts("nps", 3, "app", comment="我要退款！"), True),
        (Conditions(keywords_any=("退款",)), Facts("nps", 3, "app", comment=None), False),
        (Conditions(score_min=2, score_max=4), Facts("nps", 1, "app"), False),
        (Conditions(score_min=2, score_max=4), Facts("nps", 4, "app"), True),
        (
            Conditions(customer_attributes={"vip": "true", "level": "3"}),
            Facts("nps", 1, "app", customer_attributes={"vip": True, "level": 3}),
            True,
        ),
        (
            Conditions(customer_attributes={"vip": "true"}),
            Facts("nps", 1, "app", customer_attributes={}),
            False,
        ),
    ],
)
def test_conditions(conditions: Conditions, facts: Facts, matches: bool) -> None:
    assert conditions.match(facts) is matches


def test_raised_priority() -> None:
    assert [raised(p) for p in Priority] == [
        Priority.URGENT,
        Priority.URGENT,
        Priority.HIGH,
        Priority.NORMAL,
    ]


LEGAL = {
    ("open", "acknowledged"),
    ("open", "in_progress"),
    ("acknowledged", "in_progress"),
    ("in_progress", "waiting_on_customer"),
    ("in_progress", "resolved"),
    ("waiting_on_customer", "in_progress"),
    ("waiting_on_customer", "resolved"),
    ("resolved", "closed"),
    ("resolved", "reopened"),
    ("closed", "reopened"),
    ("reopened", "acknowledged"),
    ("reopened", "in_progress"),
}


@pytest.mark.parametrize(("current", "target"), list(product(Status, Status)))
def test_every_transition(current: Status, target: Status) -> None:
    assert can_move(current, target) is ((current.value, target.value) in LEGAL)


def test_the_refusal_says_where_to_go() -> None:
    assert allowed_from(Status.RESOLVED) == ["closed", "reopened"]
    assert set(ALLOWED) == set(Status)
