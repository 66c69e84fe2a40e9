"""The statistics behind NPS, CSAT and CES: pure functions, no I/O.

Conventions: proportions are in [0, 1], NPS in points [-100, 100]. A two-sample comparison
is always "b minus a" (a = before / baseline, b = after / other). Intervals are two-sided at
the given confidence. Where a statistic is undefined (no data, one answer for a standard
deviation, zero variance for a test) the functions return None rather than a number that
looks precise; callers show null.

Sources (see ../shared/reference/stats-vectors.json for the test vectors):
- NPS adjusted-Wald: Rocks (2016), The American Statistician 70:365 — add 0.75 promoters,
  1.5 passives and 0.75 detractors (n + 3), centre the Wald interval on the adjusted NPS,
  clip to [-100, 100]; the raw NPS stays the point estimate.
- Wilson score interval: Wilson (1927).
- Difference of proportions: Newcombe (1998), Stat Med 17:873, method 10 (hybrid score).
- Means: Student t interval; two means: Welch's t-test with Satterthwaite degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

NPS_PROMOTER_MIN = 9  # 9–10
NPS_DETRACTOR_MAX = 6  # 0–6
ADJUST_PROMOTERS = 0.75
ADJUST_PASSIVES = 1.5
ADJUST_DETRACTORS = 0.75
NORMAL = NormalDist()
# Student t comes from scipy.special (not scipy.stats: the same functions for a third of
# the import time), imported on first use so that every CLI command and worker does not pay
# half a second at start-up for it.


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass(frozen=True, slots=True)
class Comparison:
    """A two-sample test of b − a."""

    test: str
    delta: float
    interval: Interval | None
    p_value: float | None
    significant: bool
    statistic: float | None = None
    standard_error: float | None = None
    degrees_of_freedom: float | None = None


def z_value(confidence: float) -> float:
    """The two-sided normal quantile, e.g. 1.959964 for 0.95."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return NORMAL.inv_cdf(1 - (1 - confidence) / 2)


def t_value(confidence: float, degrees_of_freedom: float) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(degrees_of_freedom, 1 - (1 - confidence) / 2))


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


# --- NPS -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NpsCounts:
    promoters: int
    passives: int
    detractors: int

    @property
    def n(self) -> int:
        return self.promoters + self.passives + self.detractors

    @classmethod
    def from_scores(cls, counts: Sequence[int]) -> NpsCounts:
        """From an 11-bin histogram of scores 0–10."""
        if len(counts) != 11:
            raise ValueError("an NPS histogram has 11 bins (scores 0–10)")
        return cls(
            promoters=sum(counts[NPS_PROMOTER_MIN:]),
            passives=sum(counts[NPS_DETRACTOR_MAX + 1 : NPS_PROMOTER_MIN]),
            detractors=sum(counts[: NPS_DETRACTOR_MAX + 1]),
        )


def nps(counts: NpsCounts) -> float | None:
    """100 × (promoters − detractors) / n."""
    if counts.n == 0:
        return None
    return 100 * (counts.promoters - counts.detractors) / counts.n


def _nps_variance(promoters: float, detractors: float, n: float) -> float:
    p, d = promoters / n, detractors / n
    return p + d - (p - d) ** 2


def nps_variance(counts: NpsCounts) -> float | None:
    """Per-respondent variance of the −1/0/+1 scores: p + d − (p − d)²."""
    if counts.n == 0:
        return None
    return _nps_variance(counts.promoters, counts.detractors, counts.n)


def nps_wald(counts: NpsCounts, confidence: float = 0.95) -> Interval | None:
    """The plain Wald interval. Collapses to zero width at 100 % promoters: for reference
    only, never reported."""
    value, variance = nps(counts), nps_variance(counts)
    if value is None or variance is None:
        return None
    margin = z_value(confidence) * 100 * math.sqrt(variance / counts.n)
    return Interval(_clip(value - margin, -100, 100), _clip(value + margin, -100, 100))


@dataclass(frozen=True, slots=True)
class AdjustedWald:
    centre: float
    margin: float
    interval: Interval


def nps_adjusted_wald(counts: NpsCounts, confidence: float = 0.95) -> AdjustedWald:
    """Defined for every n, even 0 (then it spans nearly everything, as it should)."""
    promoters = counts.promoters + ADJUST_PROMOTERS
    detractors = counts.detractors + ADJUST_DETRACTORS
    n = counts.n + ADJUST_PROMOTERS + ADJUST_PASSIVES + ADJUST_DETRACTORS
    centre = 100 * (promoters - detractors) / n
    margin = z_value(confidence) * 100 * math.sqrt(_nps_variance(promoters, detractors, n) / n)
    interval = Interval(_clip(centre - margin, -100, 100), _clip(centre + margin, -100, 100))
    return AdjustedWald(centre=centre, margin=margin, interval=interval)


def compare_nps(
    a: NpsCounts, b: NpsCounts, *, confidence: float = 0.95, alpha: float = 0.05
) -> Comparison | None:
    """Two independent samples: z = (NPS_b − NPS_a) / sqrt(Var_a/n_a + Var_b/n_b)."""
    value_a, value_b = nps(a), nps(b)
    var_a, var_b = nps_variance(a), nps_variance(b)
    if value_a is None or value_b is None or var_a is None or var_b is None:
        return None
    delta = value_b - value_a
    se = 100 * math.sqrt(var_a / a.n + var_b / b.n)
    if se == 0:
        return Comparison("z", delta, None, None, False, standard_error=0.0)
    z = delta / se
    p_value = 2 * NORMAL.cdf(-abs(z))
    margin = z_value(confidence) * se
    return Comparison(
        "z",
        delta,
        Interval(delta - margin, delta + margin),
        p_value,
        p_value < alpha,
        statistic=z,
        standard_error=se,
    )


def nps_sample_size(variance: float, margin_points: float, confidence: float = 0.95) -> int:
    """Responses needed for a ±margin (NPS points) adjusted-Wald interval:
    z² · Var / (E/100)² − 3. Use Var = 1 when nothing is known (the worst case)."""
    if margin_points <= 0:
        raise ValueError("the margin must be positive")
    needed = z_value(confidence) ** 2 * variance / (margin_points / 100) ** 2 - 3
    return max(math.ceil(needed - 1e-9), 0)


# --- Proportions (CSAT, top-box shares) -------------------------------------------------


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval | None:
    if n == 0:
        return None
    if not 0 <= k <= n:
        raise ValueError("need 0 <= k <= n")
    z = z_value(confidence)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(max(centre - margin, 0.0), min(centre + margin, 1.0))


def newcombe_difference(
    k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95
) -> Interval | None:
    """Interval for p1 − p2 (Newcombe's hybrid score method)."""
    first, second = wilson(k1, n1, confidence), wilson(k2, n2, confidence)
    if first is None or second is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    delta = p1 - p2
    low = delta - math.sqrt((p1 - first.low) ** 2 + (second.high - p2) ** 2)
    high = delta + math.sqrt((first.high - p1) ** 2 + (p2 - second.low) ** 2)
    return Interval(low, high)


def compare_proportions(
    k_a: int, n_a: int, k_b: int, n_b: int, *, confidence: float = 0.95, alpha: float = 0.05
) -> Comparison | None:
    """p_b − p_a with Newcombe's interval and the pooled two-proportion z-test's p-value.
    `significant` follows the p-value; the two agree except in rare borderline cases."""
    if n_a == 0 or n_b == 0:
        return None
    interval = newcombe_difference(k_b, n_b, k_a, n_a, confidence)
    delta = k_b / n_b - k_a / n_a
    pooled = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return Comparison("newcombe", delta, interval, None, False, standard_error=0.0)
    z = delta / se
    p_value = 2 * NORMAL.cdf(-abs(z))
    return Comparison(
        "newcombe", delta, interval, p_value, p_value < alpha, statistic=z, standard_error=se
    )


def proportion_sample_size(margin: float, confidence: float = 0.95, p: float = 0.5) -> int:
    """Responses for a ±margin (a proportion) interval: z² p(1 − p) / E² (p = 0.5 is the
    worst case)."""
    if margin <= 0:
        raise ValueError("the margin must be positive")
    return math.ceil(z_value(confidence) ** 2 * p * (1 - p) / margin**2 - 1e-9)


# --- Means (CES, ratings) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeanEstimate:
    n: int
    mean: float
    sd: float | None
    interval: Interval | None


def mean_interval(
    values: Sequence[float], weights: Sequence[int], confidence: float = 0.95
) -> MeanEstimate | None:
    n = sum(weights)
    if n == 0:
        return None
    mean = sum(v * w for v, w in zip(values, weights, strict=True)) / n
    if n < 2:
        return MeanEstimate(n, mean, None, None)
    squares = sum(w * (v - mean) ** 2 for v, w in zip(values, weights, strict=True))
    sd = math.sqrt(squares / (n - 1))
    margin = t_value(confidence, n - 1) * sd / math.sqrt(n)
    return MeanEstimate(n, mean, sd, Interval(mean - margin, mean + margin))


def compare_means(
    a: MeanEstimate, b: MeanEstimate, *, confidence: float = 0.95, alpha: float = 0.05
) -> Comparison | None:
    """Welch's t-test of mean_b − mean_a."""
    if a.sd is None or b.sd is None:
        return None
    delta = b.mean - a.mean
    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        return Comparison("welch_t", delta, None, None, False, standard_error=0.0)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    t = delta / se
    from scipy.special import stdtr

    p_value = float(2 * stdtr(df, -abs(t)))
    margin = t_value(confidence, df) * se
    return Comparison(
        "welch_t",
        delta,
        Interval(delta - margin, delta + margin),
        p_value,
        p_value < alpha,
        statistic=t,
        standard_error=se,
        degrees_of_freedom=df,
    )


def mean_sample_size(sd: float, margin: float, confidence: float = 0.95) -> int:
    """Responses for a ±margin interval around a mean: (z · sd / E)²."""
    if margin <= 0:
        raise ValueError("the margin must be positive")
    return math.ceil((z_value(confidence) * sd / margin) ** 2 - 1e-9)
