"""Relative weights against the exact Shapley decomposition of R², and the recovery of known
drivers from synthetic data (pure: no database)."""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pytest

from feedback_api.insights.importance import Patterns, fit, importance


def _r2(x: np.ndarray, y: np.ndarray, columns: tuple[int, ...]) -> float:
    if not columns:
        return 0.0
    design = np.column_stack([np.ones(len(y)), x[:, list(columns)]])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(1 - residual @ residual / ((y - y.mean()) @ (y - y.mean())))


def shapley_r2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The exact Shapley (LMG) decomposition: every subset's regression."""
    p = x.shape[1]
    r2 = {s: _r2(x, y, s) for k in range(p + 1) for s in combinations(range(p), k)}
    values = np.zeros(p)
    for j in range(p):
        for s, value in r2.items():
            if j in s:
                continue
            with_j = tuple(sorted((*s, j)))
            weight = factorial(len(s)) * factorial(p - len(s) - 1) / factorial(p)
            values[j] += weight * (r2[with_j] - value)
    return values


def _synthetic(
    seed: int, n: int = 3000, effects: tuple[float, ...] = (-60, -35, -15, 0, 0)
) -> tuple[np.ndarray, np.ndarray]:
    """NPS-coded outcomes (−100, 0, 100) from correlated theme indicators with known
    effects on the latent score."""
    rng = np.random.default_rng(seed)
    p = len(effects)
    shared = rng.random(n) < 0.3  # a bad day: several themes more likely at once
    x = np.column_stack(
        [(rng.random(n) < np.where(shared, 0.35, 0.12)).astype(float) for _ in range(p)]
    )
    latent = 40 + x @ np.array(effects) + rng.normal(0, 45, n)
    y = np.where(latent > 50, 100.0, np.where(latent > 0, 0.0, -100.0))
    return x, y


def _compress(x: np.ndarray, y: np.ndarray) -> Patterns:
    rows, counts = np.unique(np.column_stack([x, y]), axis=0, return_counts=True)
    return Patterns(rows[:, :-1], rows[:, -1], counts.astype(np.int64))


@pytest.mark.parametrize("seed", range(5))
def test_relative_weights_agree_with_the_exact_shapley_decomposition(seed: int) -> None:
    x, y = _synthetic(seed)
    exact = shapley_r2(x, y)
    result = fit(x, y, np.ones(len(y)), exclusive=False)
    assert result is not None
    assert result.r2 == pytest.approx(_r2(x, y, tuple(range(x.shape[1]))), abs=1e-9)
    assert result.weights.sum() == pytest.approx(result.r2, abs=1e-9)
    # within half a percent of the score's variance, and in the same order
    assert np.abs(result.weights - exact).max() < 0.005
    assert list(np.argsort(-result.weights)[:3]) == list(np.argsort(-exact)[:3])


def test_compressed_patterns_give_what_the_raw_responses_give() -> None:
    x, y = _synthetic(1)
    raw = fit(x, y, np.ones(len(y)), exclusive=False)
    patterns = _compress(x, y)
    compressed = fit(patterns.x, patterns.y, patterns.counts.astype(float), exclusive=False)
    assert raw is not None
    assert compressed is not None
    assert compressed.r2 == pytest.approx(raw.r2)
    np.testing.assert_allclose(compressed.weights, raw.weights, atol=1e-12)
    np.testing.assert_allclose(compressed.effects, raw.effects, atol=1e-9)


def test_known_drivers_are_recovered_in_order_over_seeds() -> None:
    hits = 0
    for seed in range(40):
        x, y = _synthetic(100 + seed)
        result = importance(_compress(x, y), exclusive=False)
        assert result is not None
        order = np.argsort([-e.value for e in result.importance])
        hits += list(order[:3]) == [0, 1, 2]
        # the effects have the planted sign and the intervals cover the no-effect drivers
        effect = [e for e in result.effect if e is not None]
        assert effect[0].high < 0
        assert effect[1].high < 0
    assert hits >= 38


def test_no_effect_drivers_have_intervals_at_zero_and_small_importance() -> None:
    x, y = _synthetic(7)
    result = importance(_compress(x, y), exclusive=False)
    assert result is not None
    covered = sum(e is not None and e.low <= 0 <= e.high for e in result.effect[3:])
    assert covered == 2
    assert sum(i.value for i in result.importance) == pytest.approx(100)
    assert all(i.value < 5 for i in result.importance[3:])


def test_exclusive_categories_effect_is_the_difference_of_means() -> None:
    rng = np.random.default_rng(3)
    category = rng.integers(0, 3, 2000)
    y = np.where(category == 0, 20.0, 60.0) + rng.normal(0, 10, 2000)
    x = np.column_stack([(category == k).astype(float) for k in range(3)])
    result = fit(x, y, np.ones(len(y)), exclusive=True)
    assert result is not None
    expected = y[category == 0].mean() - y[category != 0].mean()
    assert result.effects[0] == pytest.approx(expected)
    # collinear one-hot columns: R² is still the share of variance between categories
    between = sum(
        (category == k).mean() * (y[category == k].mean() - y.mean()) ** 2 for k in range(3)
    )
    assert result.r2 == pytest.approx(between / y.var(), rel=1e-6)
    assert result.weights.sum() == pytest.approx(result.r2)


def test_an_outcome_without_variance_explains_nothing() -> None:
    x = np.array([[1.0], [0.0]])
    assert fit(x, np.array([5.0, 5.0]), np.ones(2), exclusive=False) is None
    assert (
        importance(Patterns(x, np.array([5.0, 5.0]), np.array([10, 10])), exclusive=False) is None
    )
