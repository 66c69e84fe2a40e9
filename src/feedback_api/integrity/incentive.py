"""Incentive wording: texts that trade a reward for a rating ("五星好评返现", "5 stars for a
free coffee"). Pure. A signal, not proof: a customer may quote the offer they were made.

Text is normalised first (NFKC, so full-width "５星" is "5星"; lower case; spaces collapsed).
A *strong* cue ties a reward to a rating or review; a *weak* cue is a reward word alone.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

RATING = r"(?:5|five|10|ten|full)[\s-]*stars?|(?:5|五)\s*星|好评|五分|满分|rating|review|rate us"
REWARD = (
    r"free|gift|voucher|coupon|discount|cash\s*back|refund|返现|返利|红包|送|礼品|有礼|"
    r"优惠券|代金券|立减|免单"
)
STRONG = (
    re.compile(rf"(?:{RATING}).{{0,24}}?(?:{REWARD})"),
    re.compile(rf"(?:{REWARD}).{{0,24}}?(?:{RATING})"),
    re.compile(r"in exchange for (?:a |an |your )?(?:positive |good |honest )?(?:review|rating)"),
)
WEAK = re.compile(rf"(?:{REWARD})")


@dataclass(frozen=True, slots=True)
class Signal:
    strength: float  # 0 none, 0.4 a reward word, 0.9 a reward tied to a rating
    matches: tuple[str, ...]


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


def incentive_signal(text: str | None) -> Signal:
    if not text:
        return Signal(0.0, ())
    norm = normalise(text)
    strong = tuple(m.group(0) for pattern in STRONG for m in pattern.finditer(norm))
    if strong:
        return Signal(0.9, strong)
    weak = tuple(m.group(0) for m in WEAK.finditer(norm))
    return Signal(0.4, weak) if weak else Signal(0.0, ())
