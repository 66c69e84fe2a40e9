"""Recurring phrases that may be themes the dictionary lacks. Pure: no database, no I/O.

The method (docs/insights.md):
- Each comment is normalised like the classifier's input (NFKC, case folding) and cut into
  clauses at punctuation. Runs of Chinese characters are segmented with `rjieba` (jieba's
  dictionary and HMM), other text into words of letters and digits.
- Candidates are the 1-, 2- and 3-token sequences inside a clause that neither start nor end
  with a stop word (function words and evaluative words that name no topic, in both
  languages: `the`, `very`, `terrible`, 的, 很, 太差), single Chinese characters and
  English words under three letters alone excepted. A comment counts once per phrase.
- Focus comments (by default, those of negative answers) are compared with the tenant's
  other comments in the same selection: for each phrase, the 2×2 table (focus or not ×
  has the phrase or not) gives Dunning's log-likelihood ratio G², the keyness statistic of
  corpus linguistics, which stays reliable for the small counts of rare phrases where a
  chi-squared approximation does not. Only phrases over-represented in the focus count,
  and only those in at least MIN_COMMENTS focus comments.
- Phrases that say the same thing are merged: walking down the ranking, a phrase whose
  focus comments are mostly (OVERLAP) those of a phrase already kept joins that one as a
  `related` phrase instead of taking a place of its own (试衣间 and 镜子, mirror and dark).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from feedback_api.insights.classifier import normalize
from feedback_api.insights.stopwords import STOP_WORDS

MIN_COMMENTS = 3
OVERLAP = 0.5
MAX_TOKENS = 3
# Only this many characters of a comment are read: a phrase worth a theme recurs in
# ordinary comments, and the bound keeps a hostile 10,000-character comment cheap.
MAX_CHARS = 1000

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(f"([{_HAN}]+)|((?:(?![{_HAN}])[^\\W_])+(?:'[^\\W_]+)?)|([^\\s])")
_CLAUSE_BREAK = re.compile(r"[^\w\s']")


def _han(token: str) -> bool:
    return "\u3400" <= token[0] <= "\ufaff"


def clauses(comment: str) -> list[list[str]]:
    """The comment's tokens, clause by clause."""
    import rjieba  # loaded where discovery runs, not by every API process at start

    out: list[list[str]] = [[]]
    for match in _TOKEN.finditer(normalize(comment[:MAX_CHARS])):
        han, word, other = match.groups()
        if han:
            out[-1].extend(t for t in rjieba.cut(han) if t.strip())
        elif word:
            out[-1].append(word)
        elif other and _CLAUSE_BREAK.match(other) and out[-1]:
            out.append([])
    return [c for c in out if c]


def _content(token: str) -> bool:
    if token in STOP_WORDS or token.isdigit():
        return False
    return len(token) >= 2 if _han(token) else len(token) >= 3


def _joined(tokens: Sequence[str]) -> str:
    """A phrase as a person would type it: Chinese tokens together, words with spaces."""
    out = tokens[0]
    for before, token in zip(tokens, tokens[1:], strict=False):
        out += token if _han(before) and _han(token) else " " + token
    return out


def phrases(comment: str) -> set[str]:
    """Every candidate phrase of a comment (each once)."""
    found: set[str] = set()
    for clause in clauses(comment):
        for start, first in enumerate(clause):
            if first in STOP_WORDS:
                continue
            for size in range(1, MAX_TOKENS + 1):
                gram = clause[start : start + size]
                if len(gram) < size:
                    break
                last = gram[-1]
                if size == 1 and not _content(first):
                    continue
                if last in STOP_WORDS or last.isdigit():
                    continue
                found.add(_joined(gram))
    return found


def g2(a: int, b: int, focus: int, rest: int) -> float:
    """Dunning's log-likelihood ratio for a phrase in `a` of `focus` comments and `b` of
    `rest` others; signed: negative when the phrase is rarer in the focus."""
    total = focus + rest
    if focus == 0 or rest == 0 or a + b == 0:
        return 0.0
    cells = (
        (a, focus, a + b),
        (focus - a, focus, total - a - b),
        (b, rest, a + b),
        (rest - b, rest, total - a - b),
    )
    value = 0.0
    for observed, row, column in cells:
        if observed > 0:
            value += observed * math.log(observed * total / (row * column))
    value *= 2
    return value if a * rest >= b * focus else -value


@dataclass
class Candidate:
    phrase: str
    focus: int  # focus comments with the phrase
    rest: int  # other comments with the phrase
    score: float  # G²
    comments: list[int] = field(default_factory=list)  # indices of its focus comments
    related: list[str] = field(default_factory=list)


def rank(
    focus: Sequence[str],
    rest: Sequence[str],
    *,
    known: Callable[[str], bool] | None = None,
    limit: int = 20,
    min_comments: int = MIN_COMMENTS,
) -> list[Candidate]:
    """The `limit` phrases most over-represented in `focus` against `rest`, merged as the
    module says. Phrases `known` says yes to (the dictionary matches them) are left out."""
    where: dict[str, list[int]] = defaultdict(list)
    for index, comment in enumerate(focus):
        for phrase in phrases(comment):
            where[phrase].append(index)
    frequent = {
        p: docs
        for p, docs in where.items()
        if len(docs) >= min_comments and not (known and known(p))
    }
    in_rest: dict[str, int] = defaultdict(int)
    for comment in rest:
        for phrase in phrases(comment) & frequent.keys():
            in_rest[phrase] += 1
    scored = sorted(
        (
            Candidate(p, len(docs), in_rest[p], g2(len(docs), in_rest[p], len(focus), len(rest)))
            for p, docs in frequent.items()
        ),
        key=lambda c: (-c.score, -c.focus, c.phrase),
    )
    kept: list[tuple[Candidate, set[int]]] = []
    for candidate in scored:
        if candidate.score < 0 or (rest and candidate.score == 0):
            break
        docs = set(frequent[candidate.phrase])
        for other, other_docs in kept:
            if len(docs & other_docs) >= OVERLAP * min(len(docs), len(other_docs)):
                if len(other.related) < 5:
                    other.related.append(candidate.phrase)
                break
        else:
            candidate.comments = sorted(docs)
            kept.append((candidate, docs))
            if len(kept) == limit:
                break
    return [c for c, _ in kept]
