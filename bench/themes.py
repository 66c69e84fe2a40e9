"""Theme classification quality: the dictionary in tests/reference/insights/ against the
labelled comments, per language (precision and recall of theme mentions).

    .venv/bin/python bench/themes.py

Prints a Markdown table for docs/benchmarks.md. The held-out set was written by someone
who never saw the dictionary or the development set (tests/reference/insights/README.md).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from feedback_api.insights import phrases  # noqa: E402
from feedback_api.insights.classifier import Classifier, ThemeTerms  # noqa: E402

DATA = ROOT / "tests" / "reference" / "insights"


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


def classifier() -> Classifier:
    themes = json.loads((DATA / "dictionary.json").read_text())
    return Classifier(
        ThemeTerms(t["key"], t["keywords"], t["aliases"], t["negative_keywords"]) for t in themes
    )


def scores(name: str) -> dict[str, Score]:
    """Per language ("all" too): mentions found against the labels."""
    found = classifier()
    result: dict[str, Score] = {}
    for line in (DATA / name).read_text().splitlines():
        row = json.loads(line)
        got, want = set(found.themes(row["text"])), set(row["themes"])
        for lang in (row["lang"], "all"):
            s = result.setdefault(lang, Score())
            s.tp += len(got & want)
            s.fp += len(got - want)
            s.fn += len(want - got)
    return result


def main() -> None:
    print("| set | focus | themes among the top 20 candidates | seconds |")
    print("|---|---|---|---|")
    for name in ("development", "heldout"):
        for negative in (True, False):
            found, total, took = discovery(name, negative)
            focus = "negative" if negative else "all"
            print(f"| {name} | {focus} | {found} of {total} | {took:.2f} |")
    print()
    print("| set | language | precision | recall | mentions labelled |")
    print("|---|---|---|---|---|")
    for name in ("development.jsonl", "heldout.jsonl"):
        for lang, s in sorted(scores(name).items()):
            print(
                f"| {name.split('.')[0]} | {lang} | {s.precision:.3f} | {s.recall:.3f} "
                f"| {s.tp + s.fn} |"
            )


def discovery(name: str, focus_negative: bool) -> tuple[int, int, float]:
    """Themes among the top 20 candidates (a candidate stands for the theme that at least
    half of its comments are labelled with), of how many, and the seconds it took. The
    focus is the comments with a negative label, as the API's `focus=negative` takes the
    comments of negative answers."""
    rows = [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text().splitlines()]
    negative = [r for r in rows if "neg" in r["polarity"].values()]
    focus = negative if focus_negative else rows
    rest = [r for r in rows if r not in negative] if focus_negative else []
    started = time.perf_counter()
    ranked = phrases.rank([r["text"] for r in focus], [r["text"] for r in rest], limit=20)
    took = time.perf_counter() - started
    found = set()
    for candidate in ranked:
        labels = Counter(t for i in candidate.comments for t in focus[i]["themes"] or ["-"])
        theme, n = labels.most_common(1)[0]
        if theme != "-" and n >= 0.5 * candidate.focus:
            found.add(theme)
    return len(found), len({t for r in rows for t in r["themes"]}), took


if __name__ == "__main__":
    main()
