"""The dictionary in tests/reference/insights/ finds the labelled themes of comments it was
not written against: precision and recall of mentions at least 0.9 in Chinese and in
English (the published figures: bench/themes.py, docs/benchmarks.md)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from feedback_api.insights.classifier import Classifier, ThemeTerms
from tests.fixtures.paths import REFERENCE

DATA = REFERENCE / "insights"


def _counts(name: str) -> dict[str, Counter[str]]:
    themes = json.loads((DATA / "dictionary.json").read_text())
    found = Classifier(
        ThemeTerms(t["key"], t["keywords"], t["aliases"], t["negative_keywords"]) for t in themes
    )
    counts: dict[str, Counter[str]] = {}
    for line in (DATA / name).read_text().splitlines():
        row = json.loads(line)
        got, want = set(found.themes(row["text"])), set(row["themes"])
        c = counts.setdefault(row["lang"], Counter())
        c["tp"] += len(got & want)
        c["fp"] += len(got - want)
        c["fn"] += len(want - got)
    return counts


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_held_out_precision_and_recall(lang: str) -> None:
    c = _counts("heldout.jsonl")[lang]
    assert c["tp"] / (c["tp"] + c["fp"]) >= 0.9
    assert c["tp"] / (c["tp"] + c["fn"]) >= 0.9


def test_the_sets_are_what_they_say() -> None:
    for name, at_least in (("development.jsonl", 600), ("heldout.jsonl", 400)):
        rows = [json.loads(line) for line in (DATA / name).read_text().splitlines()]
        assert len(rows) >= at_least
        assert len({r["text"] for r in rows}) == len(rows)
        assert {r["lang"] for r in rows} == {"zh", "en", "mixed"}
        assert len({t for r in rows for t in r["themes"]}) >= 12
