"""From a score histogram to what each metric reports, and two histograms to a test.

Pure: the service sums histograms from storage; everything statistical happens here.
CSAT and shares are reported in percent (0–100) beside NPS points; means on their scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from feedback_api.metrics import formulas as f

CSAT_SATISFIED_MIN = 4  # top two boxes of 1–5
CES_HIGH_MIN = 5  # the share answering 5–7


@dataclass(slots=True)
class Histogram:
    """Counts per score from `scale_min` to `scale_max`."""

    scale_min: int
    scale_max: int
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (self.scale_max - self.scale_min + 1)
        if len(self.counts) != self.scale_max - self.scale_min + 1:
            raise ValueError("one count per score on the scale")

    @property
    def n(self) -> int:
        return sum(self.counts)

    @property
    def scores(self) -> range:
        return range(self.scale_min, self.scale_max + 1)

    def add(self, score: int, count: int) -> None:
        self.counts[score - self.scale_min] += count

    def add_counts(self, counts: Sequence[int]) -> None:
        for index, count in enumerate(counts):
            self.counts[index] += count

    def merged(self, other: Histogram) -> Histogram:
        merged = Histogram(self.scale_min, self.scale_max, list(self.counts))
        merged.add_counts(other.counts)
        return merged

    def count_between(self, low: int, high: int) -> int:
        return sum(c for s, c in zip(self.scores, self.counts, strict=True) if low <= s <= high)

    @classmethod
    def of(cls, scale_min: int, scale_max: int, scores: Iterable[int]) -> Histogram:
        histogram = cls(scale_min, scale_max)
        for score in scores:
            histogram.add(score, 1)
        return histogram


@dataclass(frozen=True, slots=True)
class Share:
    """A proportion in percent with its Wilson interval."""

    label: str
    count: int
    value: float | None
    interval: f.Interval | None


@dataclass(frozen=True, slots=True)
class Measure:
    kind: str
    n: int
    value: float | None
    interval: f.Interval | None
    margin: float | None
    categories: dict[str, int]
    share: Share | None = None
    sd: float | None = None


def _percent(interval: f.Interval | None) -> f.Interval | None:
    return None if interval is None else f.Interval(100 * interval.low, 100 * interval.high)


def proportion(label: str, k: int, n: int, confidence: float) -> Share:
    """k of n in percent, with the Wilson interval."""
    interval = _percent(f.wilson(k, n, confidence))
    return Share(label, k, 100 * k / n if n else None, interval)


def measure(kind: str, histogram: Histogram, confidence: float = 0.95) -> Measure:
    n = histogram.n
    if kind == "nps":
        counts = f.NpsCounts.from_scores(histogram.counts)
        adjusted = f.nps_adjusted_wald(counts, confidence)
        return Measure(
            kind,
            n,
            f.nps(counts),
            adjusted.interval if n else None,
            adjusted.margin if n else None,
            {
                "promoters": counts.promoters,
                "passives": counts.passives,
                "detractors": counts.detractors,
            },
        )
    if kind == "csat":
        satisfied = histogram.count_between(CSAT_SATISFIED_MIN, histogram.scale_max)
        neutral = histogram.count_between(CSAT_SATISFIED_MIN - 1, CSAT_SATISFIED_MIN - 1)
        share = proportion("4–5", satisfied, n, confidence)
        return Measure(
            kind,
            n,
            share.value,
            share.interval,
            share.interval.half_width if share.interval else None,
            {"satisfied": satisfied, "neutral": neutral, "dissatisfied": n - satisfied - neutral},
        )
    # ces and rating: a mean on the scale, and a top share
    estimate = f.mean_interval(list(histogram.scores), histogram.counts, confidence)
    if kind == "ces":
        high = histogram.count_between(CES_HIGH_MIN, histogram.scale_max)
        middle = histogram.count_between(CES_HIGH_MIN - 1, CES_HIGH_MIN - 1)
        share = proportion("5–7", high, n, confidence)
        categories = {"high": high, "middle": middle, "low": n - high - middle}
    else:
        top = histogram.counts[-1]
        share = proportion(str(histogram.scale_max), top, n, confidence)
        categories = {"top": top, "rest": n - top}
    return Measure(
        kind,
        n,
        estimate.mean if estimate else None,
        estimate.interval if estimate else None,
        estimate.interval.half_width if estimate and estimate.interval else None,
        categories,
        share=share,
        sd=estimate.sd if estimate else None,
    )


def compare(
    kind: str, a: Histogram, b: Histogram, *, confidence: float = 0.95, alpha: float = 0.05
) -> f.Comparison | None:
    """b − a with the test that fits the metric; None when it is undefined (no data)."""
    if kind == "nps":
        return f.compare_nps(
            f.NpsCounts.from_scores(a.counts),
            f.NpsCounts.from_scores(b.counts),
            confidence=confidence,
            alpha=alpha,
        )
    if kind == "csat":
        k_a = a.count_between(CSAT_SATISFIED_MIN, a.scale_max)
        k_b = b.count_between(CSAT_SATISFIED_MIN, b.scale_max)
        result = f.compare_proportions(k_a, a.n, k_b, b.n, confidence=confidence, alpha=alpha)
        if result is None:
            return None
        # in percentage points, like the CSAT values themselves
        return f.Comparison(
            result.test,
            100 * result.delta,
            _percent(result.interval),
            result.p_value,
            result.significant,
            statistic=result.statistic,
            standard_error=None if result.standard_error is None else 100 * result.standard_error,
        )
    estimate_a = f.mean_interval(list(a.scores), a.counts, confidence)
    estimate_b = f.mean_interval(list(b.scores), b.counts, confidence)
    if estimate_a is None or estimate_b is None:
        return None
    return f.compare_means(estimate_a, estimate_b, confidence=confidence, alpha=alpha)


def needed_n(kind: str, histogram: Histogram, margin: float, confidence: float = 0.95) -> int:
    """Responses needed for ±margin (in the metric's unit), using the variance observed so
    far, or the worst case when none is seen yet: no answers, one answer (means), or every
    answer alike (variance 0 would claim that no more answers are needed)."""
    if kind == "nps":
        variance = f.nps_variance(f.NpsCounts.from_scores(histogram.counts))
        if not variance:  # None or 0.0: plan for the worst case, Var = 1
            variance = 1.0
        return f.nps_sample_size(variance, margin, confidence)
    if kind == "csat":
        n = histogram.n
        p = histogram.count_between(CSAT_SATISFIED_MIN, histogram.scale_max) / n if n else 0.5
        if p in (0.0, 1.0):  # no spread seen yet: plan for the worst case
            p = 0.5
        return f.proportion_sample_size(margin / 100, confidence, p=p)
    estimate = f.mean_interval(list(histogram.scores), histogram.counts, confidence)
    if estimate is None or not estimate.sd:  # none, one answer, or all alike
        sd = (histogram.scale_max - histogram.scale_min) / 2  # the largest possible
    else:
        sd = estimate.sd
    return f.mean_sample_size(sd, margin, confidence)
