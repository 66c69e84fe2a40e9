"""`detailed=true`: comments that say something specific, not only "good service".

Pure. The rule (docs/public-feeds.md), on the comment after masking: at least
`MIN_CONTENT_WORDS` content words, where a content word is a word of letters that is not a
marker (`[name]` …) and not in `GENERIC` (praise, complaint and filler words that carry no
particulars: "very good service, thanks"). Chinese has no spaces: each Han character left
after removing `GENERIC_ZH` phrases counts as half a word (two characters make about one
word), so 12 characters of particulars count as 6 words.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MIN_CONTENT_WORDS = 6

GENERIC = _words(
    """
    a an the and or but so very really quite too also just all it its it's this that was is are
    be been were i we you my our your me us they he she them his her of to in on at for with as
    by from not no yes good great nice fine ok okay excellent perfect amazing awesome super
    fantastic wonderful best better bad terrible awful horrible poor worst worse happy satisfied
    love loved like liked service services experience thanks thank friendly staff everything
    nothing always never overall recommend highly well done job product products gut sehr super
    toll danke schlecht alles service freundlich bien très merci excellent bon mauvais
    """
)
GENERIC_ZH = (
    "非常",
    "很好",
    "不错",
    "满意",
    "服务",
    "谢谢",
    "感谢",
    "好评",
    "差评",
    "一般",
    "很差",
    "很棒",
    "推荐",
    "喜欢",
    "还行",
    "可以",
    "太差",
    "很",
    "好",
    "差",
    "棒",
    "的",
    "了",
    "也",
    "都",
    "是",
    "我",
    "们",
    "就",
    "还",
    "真",
    "太",
)
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")
_MARKER = re.compile(r"\[(?:email|link|handle|phone|number|name)\]")


def content_words(masked: str) -> float:
    text = _MARKER.sub(" ", masked)
    for phrase in GENERIC_ZH:
        text = text.replace(phrase, " ")
    han = len(_HAN.findall(text))
    text = _HAN.sub(" ", text)
    latin = sum(1 for w in _WORD.findall(text) if w.lower() not in GENERIC)
    return latin + han / 2


def is_detailed(masked: str | None) -> bool:
    return masked is not None and content_words(masked) >= MIN_CONTENT_WORDS
