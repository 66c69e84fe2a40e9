"""Masking personal data in text shown in the public feeds (comments, replies, summaries).

Pure: the feeds service gathers the names the tenant knows and calls `mask`. Each finding is
replaced by a neutral marker (`[email]`, `[link]`, `[handle]`, `[phone]`, `[number]`,
`[name]`). The passes, in order (docs/public-feeds.md gives the method and its limits):

1. e-mail addresses; 2. URLs (with a scheme, `www.`, or a bare domain under a common
top-level domain); 3. @handles; 4. phone numbers, by libphonenumber's matcher for the
tenant's region and a few others; 5. any other run of 7 or more digits (order, card and
account numbers, phone numbers the matcher missed), dates left alone; 6. names: given
names and surnames after an honorific (Mr, Frau, Madame …), Chinese surnames before 先生 /
女士 / 小姐 … or after 小 / 老, the names the tenant knows (the customer's, the agent's,
ticket assignees'), and a capitalised given name from a compact list with the capitalised
word after it.

Masking errs on the side of hiding: a word that only looks like a name may be masked too.
Markers are private-use characters while the passes run, so that no pass reads another's
marker (a customer called "Link" must not turn `[link]` into `[[name]]`), and a comment
cannot forge one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

EMAIL, URL, HANDLE, PHONE, NUMBER, NAME = (chr(0xE000 + i) for i in range(1, 7))
MARKERS = {
    EMAIL: "[email]",
    URL: "[link]",
    HANDLE: "[handle]",
    PHONE: "[phone]",
    NUMBER: "[number]",
    NAME: "[name]",
}
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_TLDS = (
    "com|net|org|info|biz|io|co|app|shop|online|site|me|ly|to|tv|"
    "de|at|ch|fr|uk|eu|nl|be|it|es|pl|cn|hk|tw|jp|kr|sg|au|ca|us|ru|in|br"
)
# Addresses written to get past filters: "jo(at)mail.com", "jo [at] mail [dot] com",
# "jo＠mail.com" (full width), "jo @ mail.com"; under a common top-level domain only, so
# that "@name" and "5 @ noon" stay what they are.
_GAP = r"[ \t\u00a0]*"
_AT = rf"(?:{_GAP}[@\uff20\ufe6b]{_GAP}|{_GAP}[(\[{{<]{_GAP}at{_GAP}[)\]}}>]{_GAP})"
_DOT = rf"(?:{_GAP}[(\[{{<]{_GAP}dot{_GAP}[)\]}}>]{_GAP}|[.\uff0e\u3002])"
_EMAIL_SPELLED = re.compile(
    rf"[\w.%+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)*?{_DOT}(?:{_TLDS})(?![\w-])", re.IGNORECASE
)
# Trailing punctuation is the sentence's, not the link's.
_URL_END = r"(?=[.,;:!?)\]\"'»”’]*(?:\s|$))"
_URL = re.compile(
    rf"(?:\b(?:https?|ftp)://|\bwww\.)\S+?{_URL_END}"
    rf"|\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b(?:[/?#]\S*?)?{_URL_END}",
    re.IGNORECASE,
)
# After a letter, digit or @ it is part of a word or an address, not a handle.
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_][A-Za-z0-9_.]{1,30}")
# A run of digits with the separators phone, card and order numbers are written with.
# Spaces include the no-break, thin and narrow no-break ones (French typography writes
# "06 12 34 56 78" with U+202F), dashes the typographic ones.
_DIGIT_RUN = re.compile(
    r"\+?\(?\d[\d \t\u00a0\u2000-\u200a\u202f\u205f\u3000().\-\u2010-\u2015\u2212/]*\d\)?"
)
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}/\d{1,2}/\d{1,2}")
_DASHES = re.compile("[\u2010-\u2015\u2212]")
MIN_DIGITS = 7
PHONE_REGIONS = ("US", "DE", "GB", "FR", "CN", "AT", "CH")

_WORD = r"[^\W\d_][\w'’-]*"
# In any case: abbreviations and titles that are no everyday word.
_HONORIFICS = (
    "mr|mrs|ms|mx|dr|prof|herr|frau|madame|mme|monsieur|mademoiselle|mlle|señor|senor|"
    "señora|senora|signor|signora|meneer|mevrouw"
)
# Capitalised only: these are also words ("I miss the old box", "yes sir").
_CAPITALISED_HONORIFICS = "Miss|Sir|Madam|Fr|Hr|Sr|Sra|Srta|Sig|Dott"
_TITLE = rf"(?i:{_HONORIFICS})|{_CAPITALISED_HONORIFICS}"
_HONORIFIC = re.compile(
    rf"\b(?P<title>(?:(?:{_TITLE})\.?\s+)*(?:{_TITLE})\.?)(?P<gap>\s+)"
    rf"(?P<first>{_WORD})(?P<rest>[ \t]+{_WORD})?"
)
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CN_SURNAMES = (
    "欧阳|司马|上官|诸葛|东方|王|李|张|刘|陈|杨|黄|赵|吴|周|徐|孙|马|朱|胡|郭|何|高|林|罗|"
    "郑|梁|谢|宋|唐|许|韩|冯|邓|曹|彭|曾|肖|田|董|袁|潘|于|蒋|蔡|余|杜|叶|程|苏|魏|吕|丁|任|"
    "沈|姚|卢|姜|崔|钟|谭|陆|汪|范|金|石|廖|贾|夏|韦|付|方|白|邹|孟|熊|秦|邱|江|尹|薛|闫|段|"
    "雷|侯|龙|史|陶|黎|贺|顾|毛|郝|龚|邵|万|钱|严|覃|武|戴|莫|孔|向|汤|常|温|康|施|文|牛|樊|"
    "葛|邢|安|齐|易|乔|伍|庞|颜|倪|庄|聂|章|鲁|岳|翟|殷|詹|申|欧|耿|关|兰|焦|俞|左|柳|甘|祝|"
    "包|宁|尚|符|舒|阮|柯|纪|梅|童|凌|毕|单|季|裴|霍|涂|成|苗|谷|盛|曲|翁|冉|骆|蓝|路|游|辛|"
    "靳|管|柴|蒙|鲍|华|喻|祁|蒲|房|滕|屈|饶|解|牟|艾|尤|阳|时|穆|农|司|卓|古|吉|缪|简|车|项|"
    "连|芦|麦|褚|娄|窦|戚|岑|景|党|宫|费|卜|冷|晏|席|卫|米|柏|宗|瞿|桂|全|佟|应|臧|闵|苟|邬|"
    "边|卞|姬|师|和|仇|栾|隋|商|刁|沙|荣|巫|寇|桑|郎|甄|丛|仲|虞|敖|巩|明|佘|池|查|麻|苑|迟|邝"
)
_CN_SURNAME = re.compile(rf"(?:{_CN_SURNAMES})")
# Titles that follow a Chinese surname (王先生, 李女士, 张经理); the given name may sit
# between (张伟先生).
_CN_TITLE = re.compile(rf"(?<=[{_CJK}])(?:先生|女士|小姐|太太|夫人|师傅|老师|经理|阿姨|大哥|大姐)")
# 小王, 老李: how staff are often named. Only the commonest surnames, to spare words.
_CN_FAMILIAR = re.compile(
    r"[小老](?:王|李|张|刘|陈|杨|黄|赵|吴|周|徐|孙|朱|胡|郭|林|罗|郑|梁|宋|唐|韩)"
)

# Common given names (English, German, French, Spanish, Italian, Dutch, Nordic, Polish,
# Turkish, Arabic, Indian, and Chinese in pinyin), leaving out those that are also
# common words (Will, Mark, May, Grace, Frank, Bill, Rose, Hope …).
GIVEN_NAMES = _words(
    """
    Aaron Adam Adrian Ahmed Aisha Alan Albert Alex Alexander Alexandra Ali Alice Alicia Amanda
    Amelia Amy Andrea Andreas Andrew Angela Anita Anja Anke Anna Anne Annika Anton Antonio Arjun
    Arthur Ayşe Barbara Ben Benjamin Bernd Birgit Brian Carla Carlos Carmen Caroline Catherine
    Charlotte Chen Chloe Chris Christian Christina Christine Claire Claudia Daniel Daniela David
    Deepak Diana Diego Dieter Dirk Elena Elif Elisabeth Elizabeth Ella Emily Emma Emre Eric Erik
    Eva Fatima Felix Fernando Florian Francesca Francesco François Frederik Gabriel Gabriele
    George Georg Giulia Giuseppe Hannah Hans Harry Heike Helen Helga Henrik Ingrid Isabel
    Isabella Jacob James Jana Jane Jason Javier Jennifer Jens Jessica Joanna Johann Johannes
    John Jonas Jorge José Joseph Juan Julia Julian Juliane Jürgen Karin Karl Katarzyna Kate
    Katharina Katrin Kevin Klaus Laura Lea Lena Leon Li Lin Linda Lisa Liu Louis Luca Lucas Lucy
    Luis Lukas Magdalena Manuel Marco Maria Marie Marina Mario Markus Martin Martina Mary Matteo
    Matthew Matthias Maximilian Mehmet Melanie Michael Michelle Miguel Mohammed Monika Mustafa
    Nadia Natalie Nicole Niklas Nina Olga Oliver Olivia Pablo Paolo Patrick Paul Peter Petra
    Philipp Pierre Piotr Priya Rahul Rajesh Ralf Rebecca Richard Robert Sabine Sandra Sara Sarah
    Sebastian Sergio Simon Simone Sofia Sophie Stefan Stefanie Stephanie Steven Susanne Sven
    Tanja Thomas Tim Tobias Tom Ursula Uwe Valentina Vanessa Victoria Wang Wei Wolfgang Xavier
    Yan Yusuf Zhang Zoe
    """
)
_GIVEN = re.compile(
    r"(?<![\w-])(?:" + "|".join(sorted(GIVEN_NAMES, key=len, reverse=True)) + r")(?![\w-])"
    r"(?P<surname>\s+[A-ZÀ-ÖØ-Þ][\w'’-]+)?"
)
# Words that may follow a name with a capital without being a surname.
_NOT_SURNAMES = _words(
    """
    I The A An And But Or So Thanks Thank Very Was Is Has Had Did Who Which Der Die Das Und Ist
    War Hat Sehr Le La Les Et Est
    """
)
MIN_KNOWN_NAME = 2
_APOSTROPHES = "'’ʼ"
_JOINERS = _APOSTROPHES + "-"


def _phones(text: str, region: str | None) -> str:
    regions = ([region] if region and region not in PHONE_REGIONS else []) + list(PHONE_REGIONS)
    for code in regions:
        spans = [
            (m.start, m.end)
            for m in phonenumbers.PhoneNumberMatcher(
                text, code, leniency=phonenumbers.Leniency.VALID
            )
        ]
        for start, end in reversed(spans):
            found = text[start:end]
            # "(+49 30 1234567)": the matcher takes the opening bracket, not the closing one
            if found.startswith("(") and ")" not in found:
                start += 1
            text = text[:start] + PHONE + text[end:]
    return text


def _digit_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if sum(c.isdigit() for c in run) < MIN_DIGITS:
        return run
    if _DATE.fullmatch(_DASHES.sub("-", run.strip("() "))):
        return run
    digits = sum(c.isdigit() for c in run)
    # A run written as a phone number is written with a + or a trunk 0 (or an area code in
    # brackets) and holds at most 15 digits (E.164).
    if run[0] in "+(0" and digits <= 15:
        return PHONE
    return NUMBER


def _honorific(match: re.Match[str]) -> str:
    first = match.group("first")
    if first[0] in MARKERS:
        return match.group(0)
    rest = match.group("rest")
    keep_rest = ""
    if rest is not None:
        word = rest.strip()
        # The second word is a surname only when capitalised: "Mr Smith was kind".
        if not word[0].isupper() or word in _NOT_SURNAMES:
            keep_rest = rest
    return f"{match.group('title')}{match.group('gap')}{NAME}{keep_rest}"


def _chinese_titles(text: str) -> str:
    """X先生 → [name]先生, masking the shortest surname-led run of one to three characters
    before the title (谢谢王先生 masks 王, not 谢谢王); without a known surname, the one
    character before it."""
    out: list[str] = []
    last = 0
    for match in _CN_TITLE.finditer(text):
        start = match.start()
        if start < last:
            continue
        begin = None
        for width in (1, 2, 3, 4):
            lo = start - width
            if lo < last or not all("\u3400" <= c <= "\ufaff" for c in text[lo:start]):
                break
            if _CN_SURNAME.fullmatch(text[lo : lo + 1]) or _CN_SURNAME.fullmatch(text[lo : lo + 2]):
                begin = lo
                break
        if begin is None:
            begin = start - 1
        out.append(text[last:begin])
        out.append(NAME)
        last = start
    out.append(text[last:])
    return "".join(out)


def _given(match: re.Match[str]) -> str:
    surname = match.group("surname")
    if surname is not None and surname.strip() in _NOT_SURNAMES:
        return NAME + surname
    return NAME


def name_tokens(names: Iterable[str | None]) -> set[str]:
    """The parts of known names worth masking: each word of a Latin-script name (at least
    two letters), and a Chinese name whole."""
    tokens: set[str] = set()
    for name in names:
        if not name:
            continue
        cleaned = _PRIVATE_USE.sub("", name)
        if "@" in cleaned:  # an assignee given as an address: its local part's words
            cleaned = cleaned.split("@", 1)[0]
        for part in re.split(r"[\s._,;:/()]+", cleaned):
            part = part.strip(_JOINERS)
            # "O'Brien-Nakamura" whole, and "Brien", "Nakamura" as they may be written
            for piece in (part, *re.split(f"[{_JOINERS}]+", part)):
                letters = sum(c.isalpha() for c in piece)
                if letters >= MIN_KNOWN_NAME and letters == len(re.sub(f"[{_JOINERS}]", "", piece)):
                    tokens.add(piece)
    return tokens


def known_names_pattern(tokens: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(tokens), key=len, reverse=True)
    if not ordered:
        return None
    # No word boundaries inside Chinese (no spaces); whole words elsewhere.
    # An apostrophe is any of them: "O'Brien" is also written "O’Brien".
    latin = [
        re.sub(f"[{_APOSTROPHES}]", f"[{_APOSTROPHES}]", re.escape(t))
        for t in ordered
        if not re.search(f"[{_CJK}]", t)
    ]
    cjk = [re.escape(t) for t in ordered if re.search(f"[{_CJK}]", t)]
    parts = []
    if latin:
        parts.append(r"(?<![\w])(?:" + "|".join(latin) + r")(?![\w])")
    if cjk:
        parts.append("(?:" + "|".join(cjk) + ")")
    return re.compile("|".join(parts), re.IGNORECASE)


def mask(
    text: str,
    *,
    known: re.Pattern[str] | Iterable[re.Pattern[str] | None] | None = None,
    region: str | None = None,
) -> str:
    """`text` with personal data replaced by markers; `known`: the pattern (or patterns)
    of the names the tenant knows."""
    text = _PRIVATE_USE.sub("", text)
    text = _EMAIL.sub(EMAIL, text)
    text = _EMAIL_SPELLED.sub(EMAIL, text)
    text = _URL.sub(URL, text)
    text = _HANDLE.sub(HANDLE, text)
    text = _phones(text, region)
    text = _DIGIT_RUN.sub(_digit_run, text)
    text = _HONORIFIC.sub(_honorific, text)
    text = _chinese_titles(text)
    text = _CN_FAMILIAR.sub(NAME, text)
    text = _GIVEN.sub(_given, text)  # before the known names: "Anna Müller" is one name
    for pattern in [known] if isinstance(known, re.Pattern) else known or ():
        if pattern is not None:
            text = pattern.sub(NAME, text)
    for marker, shown in MARKERS.items():
        text = text.replace(marker, shown)
    return text
