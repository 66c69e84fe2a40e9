from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from feedback_api.insights.classifier import matches_something
from feedback_api.kit.schemas import InputSchema
from feedback_api.kit.types import Text
from feedback_api.metrics.schemas import (
    Bounds,
    ComparisonResult,
    Integrity,
    MetricKind,
    MetricValue,
    Period,
    Share,
)

MAX_THEMES = 500
MAX_TERMS = 200
# Keywords, aliases and negative keywords of all themes together: bounds the work of
# classifying one comment (insights/classifier.py).
MAX_DICTIONARY_TERMS = 3000
THEME_KEY_PATTERN = r"^[a-z0-9][a-z0-9_]{0,63}$"

ThemeKey = Annotated[
    str,
    Text(max_length=64, pattern=THEME_KEY_PATTERN),
    Field(
        description="Your key for the theme: lowercase letters, digits and `_`, e.g. "
        "`fitting_room_light`. Tags are themes too, reported as `tag:<tag>`.",
        examples=["fitting_room_light"],
    ),
]
Term = Annotated[str, Text(min_length=1, max_length=100)]
LanguageKey = Annotated[str, Text(max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
ThemeName = Annotated[str, Text(min_length=1, max_length=100)]


def _unique(terms: list[str]) -> list[str]:
    """Terms keep their order; a repeat (ignoring case) is dropped."""
    seen: dict[str, str] = {}
    for term in terms:
        seen.setdefault(term.casefold(), term)
    return list(seen.values())


Terms = Annotated[list[Term], Field(max_length=MAX_TERMS), AfterValidator(_unique)]


class ThemeUpsert(InputSchema):
    """A theme of the dictionary. A comment mentions it when one of `keywords` or `aliases`
    appears in it (Chinese, Japanese and Korean terms anywhere, other terms as whole words,
    case and width ignored), outside every match of its `negative_keywords`."""

    names: dict[LanguageKey, ThemeName] = Field(
        default_factory=dict,
        max_length=20,
        description='What to call the theme, per language: `{"en": "Fitting-room light", '
        '"zh": "试衣间灯光"}`.',
    )
    keywords: Terms = Field(
        default_factory=list,
        description="Words and short phrases that name the theme, in every language your "
        "customers write, e.g. `试衣间`, `镜子`, `fitting room`. Up to 200.",
    )
    aliases: Terms = Field(
        default_factory=list,
        description="Other ways customers put it (`changing room`, `更衣室`); matched like "
        "keywords. Up to 200.",
    )
    negative_keywords: Terms = Field(
        default_factory=list,
        description="Phrases that contain a keyword but mean something else: a keyword "
        "inside one of them does not count (`dark green` for a keyword `dark`). Up to 200.",
    )

    @model_validator(mode="after")
    def _needs_a_term(self) -> ThemeUpsert:
        if not any(matches_something(t) for t in (*self.keywords, *self.aliases)):
            raise PydanticCustomError(
                "no_terms",
                "a theme needs at least one keyword or alias with a letter, digit or CJK "
                "character to match comments",
            )
        return self


class ThemeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    names: dict[str, str]
    keywords: list[str]
    aliases: list[str]
    negative_keywords: list[str]
    origin: Literal["manual", "discovered"] = Field(
        description="`manual`: written by you; `discovered`: accepted from the candidates."
    )
    created_at: datetime
    updated_at: datetime


class Classification(BaseModel):
    dictionary_version: int = Field(description="Bumped by every change to the dictionary.")
    classified_version: int = Field(
        description="Every comment stored before the dictionary reached this version is "
        "classified with it (or a later one)."
    )
    up_to_date: bool = Field(
        description="True when stored comments are classified with the current dictionary; "
        "after a change the worker re-classifies them in the background."
    )


class ThemeList(BaseModel):
    items: list[ThemeRead] = Field(description=f"By key; at most {MAX_THEMES}.")
    classification: Classification


class ThemeStat(BaseModel):
    key: str = Field(description="The theme's key; a tag is reported as `tag:<tag>`.")
    name: str | None = Field(description="The dictionary's name in the first language listed.")
    source: Literal["dictionary", "tag"]
    mentions: int = Field(description="Responses (with a comment or tag) that mention it.")
    share: Share = Field(
        description="Mentions as a percent of the responses with a comment or tag, with "
        "the Wilson interval."
    )
    negative: Share | None = Field(
        description="Of the mentions, the percent of negative answers (NPS detractors 0–6, "
        "CSAT 1–2, CES 1–3, a rating's lower half). Null when `with_theme` is suppressed."
    )
    with_theme: MetricValue = Field(description="The metric over the responses mentioning it.")
    without_theme: MetricValue = Field(
        description="The metric over the other responses with a comment or tag."
    )
    difference: ComparisonResult | None = Field(
        description="`with_theme` − `without_theme` with its interval and test (the "
        "metrics' two-sample test). Null when a side is suppressed or empty."
    )
    examples: list[UUID] = Field(
        description="Up to five of the latest responses mentioning it (empty when the "
        "mentions are a small cell)."
    )


class ThemeReport(BaseModel):
    kind: MetricKind
    period: Period
    integrity: Integrity
    confidence: float
    min_cell: int
    base: int = Field(description="Responses in the selection with a comment or a tag.")
    items: list[ThemeStat] = Field(description="Themes with at least one mention, most first.")


class CandidateFocus(StrEnum):
    NEGATIVE = "negative"
    ALL = "all"


class ThemeCandidate(BaseModel):
    phrase: str = Field(description="The recurring phrase, as customers wrote it (normalised).")
    comments: int = Field(description="Focus comments that contain it.")
    other_comments: int = Field(description="The selection's other comments that contain it.")
    share: Share = Field(description="`comments` as a percent of the focus comments.")
    keyness: float | None = Field(
        description="Dunning's log-likelihood ratio G² of the phrase in the focus comments "
        "against the others (above 3.84: p < 0.05, above 10.83: p < 0.001, for one phrase "
        "taken alone). Null with `focus=all`, which ranks by `comments`."
    )
    related: list[str] = Field(
        description="Phrases found mostly in the same comments (merged into this one): "
        "keywords to consider for the same theme."
    )
    examples: list[UUID] = Field(description="Up to five of the latest comments with it.")


class ThemeCandidates(BaseModel):
    kind: MetricKind
    period: Period
    integrity: Integrity
    focus: CandidateFocus
    focus_comments: int = Field(description="Comments read as the focus.")
    other_comments: int = Field(description="Comments read as the reference.")
    sampled: bool = Field(
        description="True when the selection held more comments than are read (the latest "
        "are read)."
    )
    min_comments: int = Field(description="A phrase in fewer focus comments is not listed.")
    items: list[ThemeCandidate] = Field(
        description="Most characteristic first; phrases the dictionary already matches are "
        "left out."
    )


class CandidateAccept(InputSchema):
    """A discovered phrase into the dictionary."""

    phrase: Term = Field(description="The candidate's `phrase` (or any term of your own).")
    key: ThemeKey
    names: dict[LanguageKey, ThemeName] = Field(
        default_factory=dict,
        max_length=20,
        description="Names for a new theme; ignored when the theme exists.",
    )
    keywords: Terms = Field(
        default_factory=list, description="More keywords with it, such as its `related`."
    )


class ThemeTrendBucket(BaseModel):
    start: datetime = Field(description="In the tenant's time zone.")
    end: datetime
    base: int = Field(description="Responses with a comment or tag in the bucket.")
    mentions: int = Field(description="Of those, the ones that mention the theme.")
    share: Share = Field(description="Mentions as a percent of `base`, with the Wilson interval.")
    with_theme: MetricValue = Field(description="The metric over the responses mentioning it.")


class ThemeTrend(BaseModel):
    key: str
    kind: MetricKind
    interval: str
    period: Period
    integrity: Integrity
    confidence: float
    min_cell: int
    buckets: list[ThemeTrendBucket]


class RisingTheme(BaseModel):
    key: str = Field(description="The theme's key; a tag is `tag:<tag>`.")
    mentions: int = Field(description="Mentions in the period.")
    previous_mentions: int | None = Field(
        description="Mentions in the period before. Null when either count is a small cell."
    )
    share: Share = Field(description="Of the period's responses with a comment or tag.")
    previous_share: Share | None
    change: Bounds | None = Field(
        description="Newcombe interval of the change in share, in percentage points."
    )
    ratio: float | None = Field(description="Share now ÷ share before (3.0: tripled).")
    p_value: float | None = Field(
        description="One-sided pooled two-proportion z-test of growth; null when not tested, "
        "or when a count is a small cell."
    )
    q_value: float | None = Field(
        description="The p-value adjusted for the number of themes tested (Benjamini–Hochberg)."
    )
    tested: bool = Field(
        description="False when the theme has fewer than `min_mentions` mentions now, or a "
        "period fewer than `min_base` responses with text."
    )
    rising: bool = Field(description="Tested and q_value ≤ `fdr`.")


class RisingThemes(BaseModel):
    kind: MetricKind
    period: Period
    previous_period: Period = Field(description="The period of the same length just before.")
    integrity: Integrity
    fdr: float = Field(description="The false-discovery rate controlled across the themes.")
    min_mentions: int
    min_base: int
    base: int
    previous_base: int
    items: list[RisingTheme] = Field(description="Rising first, then by q-value.")


class DriverBy(StrEnum):
    THEME = "theme"
    TAG = "tag"
    TOUCHPOINT = "touchpoint"
    CHANNEL = "channel"


class Estimate(BaseModel):
    value: float
    interval: Bounds = Field(description="Percentile-bootstrap interval at `confidence`.")


class NotEstimable(StrEnum):
    TOO_FEW = "too_few_responses"
    TOO_FEW_WITHOUT = "too_few_without"
    NOT_IN_MODEL = "not_in_model"
    NO_VARIANCE = "no_variance"
    WITHHELD = "withheld"


class Driver(BaseModel):
    key: str = Field(
        description="The theme's key, `tag:<tag>`, the touchpoint or the channel, as `by` says."
    )
    name: str | None = Field(description="A theme's name in the dictionary's first language.")
    n: int = Field(description="Responses in the base with this driver.")
    share: Share = Field(description="n as a percent of the base, with the Wilson interval.")
    performance: MetricValue = Field(
        description="The metric over the responses with this driver: how it does now."
    )
    estimable: bool = Field(
        description="False: too few responses with it (or without it) to estimate its "
        "importance, beyond the model's drivers, or withheld. Not ranked then."
    )
    reason: NotEstimable | None = Field(
        description="Why not estimable. `withheld`: a touchpoint or channel whose numbers, "
        "beside the others', would let a small cell be worked out by subtraction (it is "
        "counted with the small ones, as a breakdown of the metrics merges them)."
    )
    rank: int | None = Field(description="1 = the most important, by `importance`.")
    importance: Estimate | None = Field(
        description="Percent of the explained variance of the score (Johnson's relative "
        "weights; the model's drivers add up to 100, or are all 0 when they explain "
        "nothing). A percentile-bootstrap interval of a share bounded by 0 and 100 may "
        "leave out its point value when that lies at the edge."
    )
    effect: Estimate | None = Field(
        description="Points of the metric: themes and tags, the regression coefficient "
        "(holding the other drivers fixed); touchpoints and channels, the driver's mean "
        "minus the other responses' mean. Negative: it pulls the score down. Null when the "
        "data cannot tell it from others' (it always occurs with another theme, or with "
        "the sum of others)."
    )
    impact: Estimate | None = Field(
        description="effect × share: the points of the overall metric this driver "
        "accounts for (−3: without it, the metric would be about 3 points higher)."
    )


class DriverReport(BaseModel):
    kind: MetricKind
    by: DriverBy
    period: Period
    integrity: Integrity
    confidence: float
    min_cell: int
    method: Literal["relative_weights"] = "relative_weights"
    min_n: int = Field(
        description="Responses needed with, and without, a driver for it to be estimated."
    )
    max_drivers: int = Field(
        description="The model takes at most this many drivers, most frequent first."
    )
    replicates: int = Field(description="Bootstrap replicates behind the intervals.")
    base: int = Field(
        description="Responses the model reads: those with a comment for `by=theme`, "
        "every response of the selection otherwise."
    )
    overall: MetricValue = Field(description="The metric over the base.")
    r_squared: Estimate | None = Field(
        description="Percent of the score's variance the model's drivers explain together."
    )
    items: list[Driver] = Field(
        description="Estimable drivers by rank, then the others, most frequent first; at most 200."
    )
    not_listed: int = Field(description="Drivers beyond the 200 listed (all not estimable).")


class SegmentCondition(BaseModel):
    attribute: str = Field(description="The customer attribute's name.")
    value: str = Field(description="Its value, as text.")


class Segment(BaseModel):
    conditions: list[SegmentCondition] = Field(
        description="One attribute value, or two of different attributes (both hold)."
    )
    n: int = Field(description="Responses of customers in the segment.")
    share: Share = Field(description="n as a percent of the base.")
    metric: MetricValue = Field(description="The metric over the segment.")
    rest: MetricValue = Field(description="The metric over everyone else in the base.")
    difference: ComparisonResult | None = Field(
        description="`metric` − `rest`, with the metrics' two-sample test and interval."
    )
    q_value: float = Field(
        description="The test's p-value adjusted for every segment tested in the round that "
        "found it (Benjamini–Hochberg)."
    )
    set_aside: list[list[SegmentCondition]] = Field(
        description="Segments reported before this one, whose responses were set aside when "
        "it was found: `n`, `metric`, `rest` and `difference` are without them."
    )


class ExplainedSegment(BaseModel):
    conditions: list[SegmentCondition]
    n: int
    delta: float | None = Field(
        description="Its difference from everyone else. Null when, beside a segment it lies "
        "in or contains, it would give a small cell away by subtraction."
    )
    q_value: float
    explained_by: list[SegmentCondition] = Field(
        description="The segment that accounts for its difference: a reported pair inside "
        "it (the rest of it does not differ from everyone else), or one of its two values "
        "(the pair does not differ from the rest of that value)."
    )


class SegmentReport(BaseModel):
    kind: MetricKind
    period: Period
    integrity: Integrity
    confidence: float
    min_cell: int
    fdr: float = Field(description="The false-discovery rate controlled across the tests.")
    min_n: int = Field(
        description="Responses needed in a segment, and outside it, for it to be tested."
    )
    attributes: list[str]
    base: int = Field(
        description="Responses in the selection. Those whose customer lacks an attribute "
        "count in everyone else."
    )
    overall: MetricValue
    tested: int = Field(description="Segments tested: values and pairs of values.")
    values_not_tested: int = Field(
        description="Attribute values beyond the most frequent per attribute; not tested."
    )
    items: list[Segment] = Field(
        description="Segments that differ significantly from everyone else, the largest "
        "difference first."
    )
    explained: list[ExplainedSegment] = Field(
        description="Segments that differ significantly from everyone else too, but only "
        "through another segment (`explained_by`); the 100 most significant."
    )


class Quadrant(StrEnum):
    QUICK_WINS = "quick_wins"
    MAJOR_PROJECTS = "major_projects"
    FILL_INS = "fill_ins"
    NOT_NOW = "not_now"


class Effort(BaseModel):
    level: Literal["low", "high"]
    source: Literal["action"] = Field(
        description="Where the estimate comes from: a linked improvement action."
    )
    action_id: UUID | None = None


class Priority(BaseModel):
    dimension: Literal["theme", "touchpoint"]
    key: str
    name: str | None
    n: int = Field(description="Responses with it (the drivers' base).")
    performance: MetricValue = Field(description="How the responses with it score now.")
    effect: Estimate | None = Field(description="From the drivers: points of the metric.")
    impact: Estimate | None = Field(
        description="From the drivers: effect × share, the points of the overall metric it "
        "accounts for (negative: what it costs)."
    )
    estimable: bool = Field(description="False: too few responses to estimate (drivers).")
    impact_level: Literal["high", "low"] | None = Field(
        description="`high`: a cost for sure (the impact interval lies below 0) of at least "
        "`min_impact` points. `low`: the rest of the estimable ones. Null when not estimable."
    )
    effort: Effort | None = Field(
        description="The effort to fix it, from a linked improvement action's estimate; "
        "null when none exists (unknown)."
    )
    quadrant: Quadrant | None = Field(
        description="quick_wins (high impact, low effort), major_projects (high, high), "
        "fill_ins (low, low), not_now (low, high). Null while the effort is unknown or the "
        "impact not estimable."
    )


class PriorityReport(BaseModel):
    kind: MetricKind
    period: Period
    integrity: Integrity
    confidence: float
    min_impact: float = Field(
        description="Points of the metric a cost must reach to count as high impact."
    )
    low_effort_days: float = Field(
        description="An action's effort estimate is low up to this many person-days."
    )
    overall: MetricValue = Field(description="The metric over every response of the selection.")
    items: list[Priority] = Field(
        description="Themes and touchpoints, the largest cost first; strengths (impact ≥ 0) "
        "and the not estimable last."
    )
    quadrants: dict[Quadrant, int] = Field(description="How many items in each quadrant.")
    unplaced: int = Field(
        description="Estimable items without a quadrant yet: their effort is unknown."
    )
