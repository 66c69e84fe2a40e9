"""Which themes of a dictionary a comment mentions. Pure: no database, no I/O.

The rule (docs/insights.md):
- Text and terms are compared after Unicode NFKC and case folding, so full-width letters,
  `Ｆｉｔｔｉｎｇ` and `FITTING` match `fitting`.
- A term with CJK characters matches as a substring (Chinese has no spaces; segmenting
  first would split 试衣间 differently in different sentences). A Latin term matches whole
  words, any run of spaces or punctuation between its words, and a few English endings
  on its last word (`mirror` matches `mirrors`, `crash` matches `crashed`, `crashing`).
- A theme is mentioned when one of its keywords or aliases matches and that match does not
  lie inside a match of one of its negative keywords (`delivery` in "delivery fee" is not
  the delivery-speed theme when "delivery fee" is a negative keyword there).

A negated mention ("not slow", 不慢) is still a mention: the theme is what the customer
talks about; whether it was good or bad is the score's to say.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Han, Hiragana/Katakana and Hangul: scripts written without spaces between words.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"\w+")
# English endings a keyword's last word may carry (plural, past, progressive, comparative).
_ENDINGS = r"(?:s|es|d|ed|ing|er|est)?"


def normalize(text: str) -> str:
    """The form both comments and terms are compared in."""
    return unicodedata.normalize("NFKC", text).casefold()


def _pattern(term: str) -> str | None:
    """The regular expression for one dictionary term, or None for a term with no letters."""
    folded = normalize(term).strip()
    if _CJK.search(folded):
        return re.escape(folded)
    words = _WORD.findall(folded)
    if not words:
        return None
    body = r"\W+".join(re.escape(w) for w in words)
    return rf"(?<!\w){body}{_ENDINGS}(?!\w)"


def _union(terms: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first, so that an alternation prefers "fitting room" over "fitting".
    patterns = sorted({p for t in terms if (p := _pattern(t))}, key=len, reverse=True)
    return re.compile("|".join(patterns)) if patterns else None


@dataclass(frozen=True, slots=True)
class ThemeTerms:
    key: str
    keywords: Sequence[str]
    aliases: Sequence[str] = ()
    negative_keywords: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class _Compiled:
    key: str
    positive: re.Pattern[str]
    negative: re.Pattern[str] | None


class Classifier:
    """A dictionary compiled once, applied to many comments."""

    def __init__(self, themes: Iterable[ThemeTerms]) -> None:
        compiled = []
        for theme in themes:
            positive = _union([*theme.keywords, *theme.aliases])
            if positive is not None:
                compiled.append(_Compiled(theme.key, positive, _union(theme.negative_keywords)))
        self._themes = tuple(compiled)

    def __bool__(self) -> bool:
        return bool(self._themes)

    def themes(self, comment: str | None) -> list[str]:
        """The keys of the themes `comment` mentions, in dictionary order."""
        if not comment or not self._themes:
            return []
        text = normalize(comment)
        return [t.key for t in self._themes if _mentions(t, text)]


def _mentions(theme: _Compiled, text: str) -> bool:
    hits = [m.span() for m in theme.positive.finditer(text)]
    if not hits or theme.negative is None:
        return bool(hits)
    blocked = [m.span() for m in theme.negative.finditer(text)]
    return any(not any(b0 <= h0 and h1 <= b1 for b0, b1 in blocked) for h0, h1 in hits)
