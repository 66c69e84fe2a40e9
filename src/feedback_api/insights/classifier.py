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
- The work per comment is linear in its length and in the matches; a dictionary holds at
  most MAX_DICTIONARY_TERMS terms (insights.schemas), which bounds the matches.

A negated mention ("not slow", 不慢) is still a mention: the theme is what the customer
talks about; whether it was good or bad is the score's to say.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
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


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    stem: str = _STEMMER.stemWord(word)
    # Snowball keeps a final e in some stems and not in their inflections (queue, queu-ing):
    # drop it everywhere, on both sides.
    return stem[:-1] if len(stem) > 3 and stem.endswith("e") else stem


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(_stem(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass(frozen=True, slots=True)
class ThemeTerms:
    key: str
    keywords: Sequence[str]
    aliases: Sequence[str] = ()
    negative_keywords: Sequence[str] = ()


class _Terms:
    """One theme's terms of one kind (positive or negative), ready to search."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.substrings: list[str] = []
        # first stem -> the stem sequences that start with it, longest first
        self.phrases: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for term in terms:
            folded = normalize(term).strip()
            if _CJK.search(folded):
                self.substrings.append(folded)
            elif stems := tuple(w for w, _, _ in _words(folded)):
                self.phrases[stems[0]].append(stems)
        for phrases in self.phrases.values():
            phrases.sort(key=len, reverse=True)
        self.substrings = sorted(set(self.substrings), key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.substrings or self.phrases)

    def spans(self, text: str, words: Sequence[tuple[str, int, int]]) -> Iterator[Span]:
        """Every match, lazily (a caller that needs one stops at the first)."""
        for term in self.substrings:
            at = text.find(term)
            while at != -1:
                yield at, at + len(term)
                at = text.find(term, at + 1)
        for index, (stem, start, _) in enumerate(words):
            for phrase in self.phrases.get(stem, ()):
                stop = index + len(phrase)
                if stop <= len(words) and all(
                    words[index + k][0] == phrase[k] for k in range(1, len(phrase))
                ):
                    yield start, words[stop - 1][2]

    def uncovered(self, text: str, words: Sequence[tuple[str, int, int]]) -> list[int]:
        """Prefix counts of the characters no match covers: a span [a, b) lies inside the
        matches when uncovered[b] == uncovered[a]. Linear in the text and the matches."""
        depth = [0] * (len(text) + 1)
        for a, b in self.spans(text, words):
            depth[a] += 1
            depth[b] -= 1
        prefix, running, count = [0], 0, 0
        for change in depth[:-1]:
            running += change
            count += running == 0
            prefix.append(count)
        return prefix


@dataclass(frozen=True, slots=True)
class _Compiled:
    key: str
    positive: _Terms
    negative: _Terms


class Classifier:
    """A dictionary compiled once, applied to many comments."""

    def __init__(self, themes: Iterable[ThemeTerms]) -> None:
        compiled = []
        for theme in themes:
            positive = _Terms([*theme.keywords, *theme.aliases])
            if positive:
                compiled.append(_Compiled(theme.key, positive, _Terms(theme.negative_keywords)))
        self._themes = tuple(compiled)

    def __bool__(self) -> bool:
        return bool(self._themes)

    def themes(self, comment: str | None) -> list[str]:
        """The keys of the themes `comment` mentions, in dictionary order."""
        if not comment or not self._themes:
            return []
        text = normalize(comment)
        words = _words(text)
        return [t.key for t in self._themes if _mentions(t, text, words)]


def _mentions(theme: _Compiled, text: str, words: Sequence[tuple[str, int, int]]) -> bool:
    hits = theme.positive.spans(text, words)
    if not theme.negative:
        return next(hits, None) is not None
    first = next(hits, None)
    if first is None:
        return False
    free = theme.negative.uncovered(text, words)
    return any(free[b] != free[a] for a, b in (first, *hits))
