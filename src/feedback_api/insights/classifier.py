"""Which themes of a dictionary a comment mentions. Pure: no database, no I/O.

The rule (docs/insights.md):
- Text and terms are compared after Unicode NFKC and case folding, so full-width letters,
  `Ｆｉｔｔｉｎｇ` and `FITTING` match `fitting`.
- A term with CJK characters matches as a substring (Chinese has no spaces; segmenting
  first would split 试衣间 differently in different sentences).
- Any other term matches whole words: the text's words (runs of letters and digits; a CJK
  character ends a word, so `app很好用` holds the word `app`) and the term's words are
  compared by their English Snowball stems, so `fitting room` matches `fitting-rooms`,
  `freeze` matches `freezing`, `points` matches `1 point`; punctuation and spaces between
  words do not matter. Stems are coarse: `fitting` alone would also match `fit`, so write
  the phrase (`fitting room`).
- A theme is mentioned when one of its keywords or aliases matches and that match does not
  lie inside the matches of its negative keywords (`delivery` in "delivery fee" is not
  the delivery-speed theme when "delivery fee" is a negative keyword there). A negative
  keyword blocks only what lies inside it, not the whole comment.
- All terms of all themes sit in two tries (one of characters for CJK terms, one of word
  stems for the rest), walked once from each position of the comment: the work is the
  comment's length times the depth of the walks, whatever the dictionary's size. A walk
  records, per theme, only its longest match. A dictionary whose tries let one walk meet
  more than MAX_AMBIGUITY terms is refused when it is written, and a comment that would
  still take more than STEP_BUDGET steps (a hostile text made of a dictionary's terms
  repeated) is left unclassified and logged, so that no comment holds up the process.

A negated mention ("not slow", 不慢) is still a mention: the theme is what the customer
talks about; whether it was good or bad is the score's to say.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_CHARS}]")
# A word: letters and digits, but not CJK characters (which \w includes).
_WORD = re.compile(f"(?:(?![{_CJK_CHARS}])[^\\W_])+")
_STEMMER = snowballstemmer.stemmer("english")

Span = tuple[int, int]


def normalize(text: str) -> str:
    """The form both comments and terms are compared in."""
    return unicodedata.normalize("NFKC", text).casefold()


def matches_something(term: str) -> bool:
    """Whether a term can match a comment at all (it has a letter, digit or CJK character)."""
    folded = normalize(term)
    return bool(_CJK.search(folded) or _WORD.search(folded))


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    stem: str = _STEMMER.stemWord(word)
    # Snowball keeps a final e in some stems and not in their inflections (queue, queu-ing):
    # drop it everywhere, on both sides.
    return stem[:-1] if len(stem) > 3 and stem.endswith("e") else stem


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(_stem(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


MAX_AMBIGUITY = 64
STEP_BUDGET = 200_000


@dataclass(frozen=True, slots=True)
class ThemeTerms:
    key: str
    keywords: Sequence[str]
    aliases: Sequence[str] = ()
    negative_keywords: Sequence[str] = ()


class _Node:
    __slots__ = ("children", "entries")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        # (theme index, negative?) of the terms that end here
        self.entries: tuple[tuple[int, bool], ...] = ()

    def insert(self, path: Sequence[str], entry: tuple[int, bool]) -> None:
        node = self
        for part in path:
            node = node.children.setdefault(part, _Node())
        if entry not in node.entries:
            node.entries = (*node.entries, entry)

    def ambiguity(self) -> int:
        """The most terms one walk from the root can meet."""
        best, stack = 0, [(self, 0)]
        while stack:
            node, met = stack.pop()
            met += len(node.entries)
            best = max(best, met)
            stack.extend((child, met) for child in node.children.values())
        return best


class OverBudget(Exception):
    """A comment that would take more than STEP_BUDGET steps to classify."""


class Classifier:
    """A dictionary compiled once, applied to many comments."""

    def __init__(self, themes: Iterable[ThemeTerms]) -> None:
        self._chars, self._words = _Node(), _Node()
        keys: list[str] = []
        for theme in themes:
            index, usable = len(keys), False
            for negative, terms in (
                (False, [*theme.keywords, *theme.aliases]),
                (True, theme.negative_keywords),
            ):
                for term in terms:
                    folded = normalize(term).strip()
                    if _CJK.search(folded):
                        self._chars.insert(folded, (index, negative))
                    elif stems := [w for w, _, _ in _words(folded)]:
                        self._words.insert(stems, (index, negative))
                    else:
                        continue
                    usable = usable or not negative
            keys.append(theme.key if usable else "")
        self._keys = tuple(keys)

    def __bool__(self) -> bool:
        return any(self._keys)

    @property
    def ambiguity(self) -> int:
        return max(self._chars.ambiguity(), self._words.ambiguity())

    def themes(self, comment: str | None) -> list[str]:
        """The keys of the themes `comment` mentions, in dictionary order. `OverBudget`
        for a comment that would take too long (see the module's docstring)."""
        if not comment or not self:
            return []
        text = normalize(comment)
        words = _words(text)
        found: dict[tuple[int, bool], list[Span]] = defaultdict(list)
        budget = _walk(self._chars, list(text), [(i, i + 1) for i in range(len(text))], found)
        _walk(self._words, [w for w, _, _ in words], [(a, b) for _, a, b in words], found, budget)
        mentioned = []
        for index, key in enumerate(self._keys):
            hits = found.get((index, False))
            if key and hits and _free(hits, found.get((index, True)), len(text)):
                mentioned.append(key)
        return mentioned


def _walk(
    root: _Node,
    parts: Sequence[str],
    spans: Sequence[Span],
    found: dict[tuple[int, bool], list[Span]],
    budget: int = STEP_BUDGET,
) -> int:
    """Walk the trie from each position; record per (theme, polarity) the longest match
    that starts there. Returns the budget left."""
    for start in range(len(parts)):
        node = root.children.get(parts[start])
        if node is None:
            continue
        longest: dict[tuple[int, bool], int] = {}
        at = start
        while node is not None:
            budget -= 1 + len(node.entries)
            if budget < 0:
                raise OverBudget
            for entry in node.entries:
                longest[entry] = at
            at += 1
            node = node.children.get(parts[at]) if at < len(parts) else None
        for entry, end in longest.items():
            found[entry].append((spans[start][0], spans[end][1]))
    return budget


def _free(hits: list[Span], blocked: list[Span] | None, length: int) -> bool:
    """Whether a hit lies outside the blocked spans' union."""
    if not blocked:
        return True
    depth = [0] * (length + 1)
    for a, b in blocked:
        depth[a] += 1
        depth[b] -= 1
    free, running, count = [0], 0, 0
    for change in depth[:-1]:
        running += change
        count += running == 0
        free.append(count)
    return any(free[b] != free[a] for a, b in hits)
