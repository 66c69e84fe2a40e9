"""The classification rule, on hand-picked cases (the labelled set is in test_dictionary)."""

from __future__ import annotations

import pytest

from feedback_api.insights.classifier import Classifier, ThemeTerms

LIGHT = ThemeTerms(
    "fitting_room_light",
    keywords=["fitting room", "mirror", "dark", "试衣间", "镜子", "太暗"],
    aliases=["changing room"],
    negative_keywords=["dark green"],
)
DELIVERY = ThemeTerms(
    "delivery_speed",
    keywords=["delivery", "快递"],
    negative_keywords=["delivery fee"],
)


def themes(text: str | None) -> list[str]:
    return Classifier([LIGHT, DELIVERY]).themes(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The fitting room was too dark", ["fitting_room_light"]),
        ("试衣间太暗了，镜子也脏", ["fitting_room_light"]),
        ("快递很快", ["delivery_speed"]),
        # width and case do not matter
        ("ＦＩＴＴＩＮＧ ＲＯＯＭ", ["fitting_room_light"]),
        # words run over spaces and punctuation; a few English endings are known
        ("fitting-room   lights", ["fitting_room_light"]),
        ("the mirrors were filthy", ["fitting_room_light"]),
        # whole words only
        ("a fittingroom nearby", []),
        ("mirrorless camera", []),
        # a keyword inside a negative keyword does not count, anywhere else it does
        ("the delivery fee is too high", []),
        ("the delivery fee is too high and the delivery was late", ["delivery_speed"]),
        ("dark green shirt", []),
        # a negated mention is still about the theme
        ("快递不慢", ["delivery_speed"]),
        ("delivery was not slow at all", ["delivery_speed"]),
        # mixed languages
        ("delivery 好慢, 试衣间 ok", ["fitting_room_light", "delivery_speed"]),
        # stems: inflections on every word, both sides
        ("the fitting-rooms were awful", ["fitting_room_light"]),
        ("two mirrors", ["fitting_room_light"]),
        ("", []),
        (None, []),
        ("👍👍", []),
    ],
)
def test_mentions(text: str | None, expected: list[str]) -> None:
    assert themes(text) == expected


def test_a_theme_without_usable_terms_matches_nothing() -> None:
    classifier = Classifier([ThemeTerms("empty", keywords=["!!!", "  "])])
    assert not classifier
    assert classifier.themes("!!! anything") == []


def test_terms_are_literal_not_patterns() -> None:
    classifier = Classifier([ThemeTerms("odd", keywords=["a.b", "(x", "[试]"])])
    assert classifier.themes("a.b") == ["odd"]
    assert classifier.themes("axb") == []
    assert classifier.themes("试") == []


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("freeze", "the app keeps freezing"),
        ("queue", "queuing for ages"),
        ("points", "1 point per purchase"),
        ("run small", "these runs small"),
        ("wrap", "badly wrapped"),
        ("app", "app很好用"),  # a CJK character ends a Latin word
    ],
)
def test_words_match_by_their_stems(term: str, text: str) -> None:
    assert Classifier([ThemeTerms("t", keywords=[term])]).themes(text) == ["t"]


@pytest.mark.parametrize(("term", "text"), [("app", "happy"), ("cost", "costume"), ("镜子", "镜")])
def test_parts_of_words_do_not_match(term: str, text: str) -> None:
    assert Classifier([ThemeTerms("t", keywords=[term])]).themes(text) == []
