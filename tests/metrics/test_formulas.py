"""The statistics against published reference values and their invariants.

tests/reference/stats-vectors.json is a verbatim copy of the project's reference vectors
(../shared/reference/); every value in it is checked here.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback_api.metrics import formulas as f
from feedback_api.metrics.measures import Histogram, compare, measure, needed_n
from tests.fixtures.paths import REFERENCE

VECTORS: dict[str, Any] = json.loads((REFERENCE / "stats-vectors.json").read_text())
PROPORTION = 1e-4
POINTS = 1e-2


def counts_of(case: dict[str, Any]) -> f.NpsCounts:
    return f.NpsCounts(case["promoters"], case["passives"], case["detractors"])


@pytest.mark.parametrize("case", VECTORS["nps"]["cases"])
def test_nps_cases(case: dict[str, Any]) -> None:
    counts = counts_of(case)
    assert f.nps(counts) == pytest.approx(case["nps"], abs=POINTS)
    if "variance" in case:
        assert f.nps_variance(counts) == pytest.approx(case["variance"], abs=PROPORTION)
    wald = f.nps_wald(counts)
    assert wald is not None
    assert (wald.low, wald.high) == pytest.approx(case["wald"], abs=POINTS)
    adjusted = f.nps_adjusted_wald(counts)
    assert (adjusted.interval.low, adjusted.interval.high) == pytest.approx(
        case["adjusted_wald"], abs=POINTS
    )
    if "adjusted_centre" in case:
        assert adjusted.centre == pytest.approx(case["adjusted_centre"], abs=POINTS)


def test_nps_population_variance() -> None:
    ref = VECTORS["nps"]["population_variance"]
    # shares of a population of 6: 3 promoters, 2 passives, 1 detractor
    counts = f.NpsCounts(3, 2, 1)
    assert counts.promoters / counts.n == pytest.approx(ref["p"], abs=PROPORTION)
    assert counts.passives / counts.n == pytest.approx(ref["passive"], abs=PROPORTION)
    assert counts.detractors / counts.n == pytest.approx(ref["d"], abs=PROPORTION)
    assert f.nps_variance(counts) == pytest.approx(ref["variance"], abs=PROPORTION)


def test_nps_two_period_test() -> None:
    ref = VECTORS["nps"]["two_period_test"]
    result = f.compare_nps(counts_of(ref["before"]), counts_of(ref["after"]))
    assert result is not None
    assert result.delta == pytest.approx(ref["delta"], abs=POINTS)
    assert result.standard_error == pytest.approx(ref["se_points"], abs=POINTS)
    assert result.statistic == pytest.approx(ref["z"], abs=1e-3)
    assert result.p_value == pytest.approx(ref["p_value"], abs=PROPORTION)
    assert result.significant is ref["significant_at_0_05"]


@pytest.mark.parametrize("case", VECTORS["csat"]["wilson"])
def test_wilson(case: dict[str, Any]) -> None:
    interval = f.wilson(case["k"], case["n"])
    assert interval is not None
    assert (interval.low, interval.high) == pytest.approx(case["interval"], abs=PROPORTION)


@pytest.mark.parametrize("case", VECTORS["csat"]["newcombe_difference"])
def test_newcombe_difference(case: dict[str, Any]) -> None:
    interval = f.newcombe_difference(case["k1"], case["n1"], case["k2"], case["n2"])
    assert interval is not None
    assert (interval.low, interval.high) == pytest.approx(case["interval"], abs=PROPORTION)


@pytest.mark.parametrize("case", VECTORS["ces"]["cases"])
def test_ces_t_interval(case: dict[str, Any]) -> None:
    histogram = Histogram.of(1, 7, case["scores"])
    estimate = f.mean_interval(list(histogram.scores), histogram.counts)
    assert estimate is not None
    assert estimate.interval is not None
    assert estimate.mean == pytest.approx(case["mean"], abs=PROPORTION)
    assert estimate.sd == pytest.approx(case["sd"], abs=PROPORTION)
    assert (estimate.interval.low, estimate.interval.high) == pytest.approx(
        case["t_interval"], abs=PROPORTION
    )
    result = measure("ces", histogram)
    assert result.value == pytest.approx(case["mean"])
    high = sum(1 for s in case["scores"] if s >= 5)
    assert result.share is not None
    assert result.share.count == high
    wilson = f.wilson(high, len(case["scores"]))
    assert wilson is not None
    assert result.share.interval is not None
    assert result.share.interval.low == pytest.approx(100 * wilson.low)


@pytest.mark.parametrize("case", VECTORS["sample_size"]["cases"])
def test_sample_size(case: dict[str, Any]) -> None:
    assert f.nps_sample_size(case["variance"], case["margin_points"]) == case["n"]


def test_z_value_matches_the_vectors() -> None:
    assert f.z_value(0.95) == pytest.approx(1.959964, abs=1e-6)


# --- Behaviour at the edges --------------------------------------------------------------


def test_no_data_gives_no_numbers() -> None:
    for kind, (low, high) in {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}.items():
        result = measure(kind, Histogram(low, high))
        assert (result.n, result.value, result.interval, result.margin) == (0, None, None, None)
    assert compare("nps", Histogram(0, 10), Histogram.of(0, 10, [9])) is None


def test_one_answer_has_a_mean_but_no_interval() -> None:
    result = measure("ces", Histogram.of(1, 7, [3]))
    assert result.value == 3
    assert result.interval is None
    assert result.sd is None


def test_all_promoters_still_get_an_honest_interval() -> None:
    result = measure("nps", Histogram.of(0, 10, [10] * 9))
    assert result.value == 100
    assert result.interval is not None
    assert result.interval.low == pytest.approx(43.37, abs=POINTS)


def test_csat_is_top_two_box_in_percent() -> None:
    result = measure("csat", Histogram.of(1, 5, [5, 4, 3, 2, 1]))
    assert result.value == pytest.approx(40.0)
    assert result.categories == {"satisfied": 2, "neutral": 1, "dissatisfied": 2}
    wilson = f.wilson(2, 5)
    assert wilson is not None
    assert result.interval is not None
    assert result.interval.high == pytest.approx(100 * wilson.high)


def test_rating_reports_mean_and_top_box() -> None:
    result = measure("rating", Histogram.of(1, 10, [10, 10, 7, 3]))
    assert result.value == pytest.approx(7.5)
    assert result.share is not None
    assert result.share.count == 2
    assert result.share.value == pytest.approx(50.0)


def test_csat_comparison_is_in_percentage_points() -> None:
    a = Histogram.of(1, 5, [5] * 48 + [1] * 32)  # 60 %
    b = Histogram.of(1, 5, [5] * 56 + [1] * 14)  # 80 %
    result = compare("csat", a, b)
    assert result is not None
    assert result.interval is not None
    assert result.delta == pytest.approx(20.0)
    # Newcombe's interval for 56/70 − 48/80 from the vectors, in points
    assert (result.interval.low, result.interval.high) == pytest.approx((5.24, 33.39), abs=0.01)
    assert result.significant


def test_welch_matches_scipy() -> None:
    from scipy import stats

    a_scores = [3, 4, 5, 5, 6, 2, 4, 4]
    b_scores = [5, 6, 7, 6, 7, 5, 6, 7, 7, 4]
    result = compare("ces", Histogram.of(1, 7, a_scores), Histogram.of(1, 7, b_scores))
    expected = stats.ttest_ind(b_scores, a_scores, equal_var=False)
    assert result is not None
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)


def test_identical_constant_samples_have_no_test() -> None:
    result = compare("ces", Histogram.of(1, 7, [4, 4, 4]), Histogram.of(1, 7, [4, 4]))
    assert result is not None
    assert (result.p_value, result.significant) == (None, False)


def test_needed_n_shrinks_with_a_wider_margin() -> None:
    histogram = Histogram.of(0, 10, [10, 9, 8, 3, 0, 10])
    assert needed_n("nps", histogram, 5) > needed_n("nps", histogram, 10)
    # no data yet: plan for the worst case variance of 1
    assert needed_n("nps", Histogram(0, 10), 5) == 1534
    assert needed_n("csat", Histogram(1, 5), 5) == 385  # p = 0.5, ±5 points


@pytest.mark.parametrize(
    ("kind", "low", "high", "score", "margin", "worst"),
    [
        ("nps", 0, 10, 10, 5, 1534),  # all promoters: Var = 0
        ("nps", 0, 10, 8, 5, 1534),  # all passives
        ("nps", 0, 10, 0, 5, 1534),  # all detractors
        ("csat", 1, 5, 5, 5, 385),  # p = 1
        ("csat", 1, 5, 1, 5, 385),  # p = 0
        ("ces", 1, 7, 4, 0.5, 139),  # sd = 0: the largest possible sd, 3
        ("rating", 1, 10, 10, 1, 78),  # sd = 4.5
    ],
)
def test_needed_n_plans_for_the_worst_case_when_every_answer_is_alike(
    kind: str, low: int, high: int, score: int, margin: float, worst: int
) -> None:
    """Zero variance seen is not zero variance to come: 40 identical answers must not
    claim that no more are needed."""
    alike = Histogram.of(low, high, [score] * 40)
    assert needed_n(kind, alike, margin) == needed_n(kind, Histogram(low, high), margin) == worst


# --- Properties ---------------------------------------------------------------------------

nps_scores = st.lists(st.integers(0, 10), min_size=1, max_size=400)


@given(nps_scores, st.floats(0.5, 0.999))
def test_nps_and_its_interval_stay_in_range(scores: list[int], confidence: float) -> None:
    result = measure("nps", Histogram.of(0, 10, scores), confidence)
    assert result.value is not None
    assert result.interval is not None
    assert -100 <= result.value <= 100
    assert -100 <= result.interval.low <= result.interval.high <= 100


@given(nps_scores)
def test_the_interval_contains_the_adjusted_centre(scores: list[int]) -> None:
    counts = f.NpsCounts.from_scores(Histogram.of(0, 10, scores).counts)
    adjusted = f.nps_adjusted_wald(counts)
    assert adjusted.interval.low <= adjusted.centre <= adjusted.interval.high


@given(nps_scores, st.randoms(use_true_random=False))
def test_order_of_answers_does_not_matter(scores: list[int], rnd: random.Random) -> None:
    shuffled = list(scores)
    rnd.shuffle(shuffled)
    assert measure("nps", Histogram.of(0, 10, scores)) == measure(
        "nps", Histogram.of(0, 10, shuffled)
    )


@given(st.lists(st.integers(1, 7), min_size=2, max_size=200))
def test_mean_interval_contains_the_mean(scores: list[int]) -> None:
    result = measure("ces", Histogram.of(1, 7, scores))
    assert result.value is not None
    assert result.interval is not None
    assert result.interval.low <= result.value + 1e-9
    assert result.value - 1e-9 <= result.interval.high


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_contains_the_observed_share(k: int, n: int) -> None:
    k = min(k, n)
    interval = f.wilson(k, n)
    assert interval is not None
    assert 0 <= interval.low <= k / n + 1e-12
    assert k / n - 1e-12 <= interval.high <= 1


@given(nps_scores, nps_scores)
def test_comparison_is_antisymmetric(a: list[int], b: list[int]) -> None:
    ha, hb = Histogram.of(0, 10, a), Histogram.of(0, 10, b)
    forward, backward = compare("nps", ha, hb), compare("nps", hb, ha)
    assert forward is not None
    assert backward is not None
    assert math.isclose(forward.delta, -backward.delta, abs_tol=1e-9)
    assert forward.p_value == backward.p_value
