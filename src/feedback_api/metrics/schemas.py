from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


class MetricKind(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"
    RATING = "rating"


class Integrity(StrEnum):
    VALID = "valid"
    ALL = "all"


GROUP_PATTERN = (
    r"^(channel|touchpoint|survey|tag|agent_ref|location_ref|language|"
    r"attr\.[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63})$"
)
#: The longest group name: `attr.` and 64 characters.
GROUP_MAX_LENGTH = len("attr.") + 64


class Period(BaseModel):
    from_: datetime = Field(
        serialization_alias="from", description="Inclusive, in the tenant's time zone."
    )
    to: datetime = Field(description="Exclusive, in the tenant's time zone.")
    timezone: str = Field(description="The tenant's time zone, which sets day boundaries.")


class Bounds(BaseModel):
    low: float
    high: float


class Share(BaseModel):
    label: str = Field(description="Which scores count, e.g. `5–7`.")
    count: int
    value: float | None = Field(description="Percent of n; null when n = 0.")
    interval: Bounds | None = Field(description="Wilson interval, in percent.")


WITHHELD = "Null when `suppressed`."


class MetricValue(BaseModel):
    n: int = Field(description="Responses counted. Always shown, also when `suppressed`.")
    suppressed: bool = Field(
        default=False,
        description="Why the values are missing: true when 0 < n < `min_cell` (the "
        "tenant's `metrics_min_cell_n`, default 5) and the key does not hold "
        "`metrics:small_cells`. So few answers would single out the people who gave them, "
        "so everything computed from their scores is withheld: `value`, `interval`, "
        "`margin`, `categories`, `share`, `sd` and `distribution` are null, and no "
        "comparison is made with this cell. `n`, `low_sample` and `excluded` stay. To see "
        "a value, widen the period or drop a filter.",
    )
    value: float | None = Field(
        description="NPS in points (−100…100), CSAT in percent (share of 4–5 on 1–5), "
        f"CES and rating as the mean score. Null when n = 0. {WITHHELD}"
    )
    interval: Bounds | None = Field(
        description="Confidence interval: adjusted-Wald for NPS (clipped to ±100; not "
        "centred on `value` by design), Wilson for CSAT, Student t for means. Null when "
        f"undefined (n = 0; n = 1 for a mean). {WITHHELD}"
    )
    margin: float | None = Field(
        description=f"Half the interval's width, in `value`'s unit. {WITHHELD}"
    )
    low_sample: bool = Field(
        description="n is below the tenant's threshold (default 30): read with care."
    )
    categories: dict[str, int] | None = Field(
        description="NPS: promoters (9–10) / passives (7–8) / detractors (0–6). CSAT: "
        "satisfied (4–5) / neutral (3) / dissatisfied (1–2). CES: high (5–7) / middle (4) / "
        "low (1–3). Rating: top (the scale's maximum) / rest. Null when `suppressed`: in a "
        "cell of 2, `detractors: 2` is both answers."
    )
    share: Share | None = Field(
        default=None,
        description=f"CES: the share answering 5–7. Rating: the top-box share. {WITHHELD}",
    )
    sd: float | None = Field(
        default=None, description=f"Sample standard deviation (means). {WITHHELD}"
    )
    distribution: list[int] | None = Field(
        description=f"Responses per score, from `scale_min` to `scale_max`. {WITHHELD}"
    )
    excluded: int = Field(
        description="Responses here that integrity flags keep out of the metrics (counted "
        "in n only with `integrity=all`)."
    )


class MetricResult(MetricValue):
    kind: MetricKind
    scale_min: int
    scale_max: int
    confidence: float
    period: Period
    integrity: Integrity
    min_cell: int = Field(
        description="The tenant's `metrics_min_cell_n`: cells with fewer responses are "
        "`suppressed`, unless the key holds `metrics:small_cells`."
    )
    needed_n: int | None = Field(
        default=None,
        description="With `target_margin`: responses needed for that margin, using the "
        "variance seen so far, or the worst case when there is none (no answers, one "
        "answer for a mean, every answer alike, or a `suppressed` cell).",
    )


class TrendBucket(MetricValue):
    start: datetime = Field(description="Inclusive; a local boundary except for the first.")
    end: datetime = Field(description="Exclusive.")


class Trend(BaseModel):
    kind: MetricKind
    interval: Literal["day", "week", "month"]
    scale_min: int
    scale_max: int
    confidence: float
    period: Period
    integrity: Integrity
    min_cell: int = Field(
        description="The tenant's `metrics_min_cell_n`: cells with fewer responses are "
        "`suppressed`, unless the key holds `metrics:small_cells`."
    )
    buckets: list[TrendBucket] = Field(
        description="Every bucket of the period in order, empty ones included (n = 0); "
        "each one is a cell, `suppressed` on its own when it is too small."
    )


class BreakdownRow(MetricValue):
    key: str | None = Field(
        description="The group's value; null for responses without one (e.g. no touchpoint)."
    )
    other: bool = Field(
        default=False,
        description="True for the row that merges groups smaller than the tenant's minimum "
        "cell size (then `key` is null and `groups` says how many were merged). With "
        "`by=tag` it counts each of its responses once, however many merged tags it has.",
    )
    groups: int = Field(default=1, description="Groups in this row (more than 1 for other).")


class Breakdown(BaseModel):
    kind: MetricKind
    by: str
    scale_min: int
    scale_max: int
    confidence: float
    period: Period
    integrity: Integrity
    min_cell: int = Field(
        description="The tenant's `metrics_min_cell_n`. Groups with fewer responses are "
        "merged into `other`, and while `other` is smaller the smallest groups join it, so "
        "no group is hidden beside the others (it could be worked out from them). Only "
        "`other` can be `suppressed`, when it is the only row: all groups together hold "
        "fewer responses. A key holding `metrics:small_cells` gets every group on its own, "
        "unmerged."
    )
    rows: list[BreakdownRow] = Field(
        description="Largest n first; the merged `other` row, if any, last."
    )


class ComparisonResult(BaseModel):
    test: Literal["z", "newcombe", "welch_t"] = Field(
        description="NPS: z-test of the difference; CSAT: Newcombe's hybrid score interval "
        "with a pooled two-proportion z-test p-value; CES/rating: Welch's t-test."
    )
    delta: float = Field(description="b − a, in the metric's unit (CSAT: percentage points).")
    interval: Bounds | None
    p_value: float | None = Field(description="Two-sided. Null when the test is undefined.")
    significant: bool = Field(description="p_value < alpha.")
    alpha: float
    statistic: float | None = None
    degrees_of_freedom: float | None = None


class CompareSide(BaseModel):
    period: Period
    segment: str | None = Field(description="`dimension:value`, or null for all.")
    metric: MetricValue


class Comparison(BaseModel):
    kind: MetricKind
    scale_min: int
    scale_max: int
    confidence: float
    integrity: Integrity
    min_cell: int = Field(
        description="The tenant's `metrics_min_cell_n`: cells with fewer responses are "
        "`suppressed`, unless the key holds `metrics:small_cells`."
    )
    a: CompareSide
    b: CompareSide
    comparison: ComparisonResult | None = Field(
        description="Null when one side has no responses or is `suppressed` (the "
        "difference and the other side would give its value away)."
    )


class SummaryItem(BaseModel):
    current: MetricValue
    previous: MetricValue
    change: ComparisonResult | None = Field(
        description="Current minus previous; null when either period has no responses or "
        "is `suppressed`."
    )


class Summary(BaseModel):
    period: Period
    previous_period: Period = Field(description="The same length, just before `period`.")
    confidence: float
    integrity: Integrity
    min_cell: int = Field(
        description="The tenant's `metrics_min_cell_n`: cells with fewer responses are "
        "`suppressed`, unless the key holds `metrics:small_cells`."
    )
    nps: SummaryItem
    csat: SummaryItem
    ces: SummaryItem
