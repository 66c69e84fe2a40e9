"""How much each driver (an indicator: mentions a theme, has a tag, was at a touchpoint)
explains a score, by Johnson's relative weights, with percentile-bootstrap intervals.

Why relative weights rather than the Shapley decomposition of R² (docs/insights.md): both
split the R² of a regression on correlated predictors into shares that add up to it, and
on indicator data they agree closely (tests/insights/test_importance.py compares them).
Shapley needs a regression for each of the 2^p subsets of drivers, in each bootstrap
replicate; relative weights need one eigendecomposition of the p × p correlation matrix,
and all replicates are solved together.

The data arrive compressed: one row per distinct (indicators, score) pattern with its count.
A bootstrap replicate of the responses is then a multinomial draw of those counts, so the
cost depends on the number of patterns, not of responses: comments mention a theme or two,
so 100,000 of them make a few thousand patterns. Adversarial data (every combination of 30
themes) make as many patterns as responses; the replicates are then fewer, down to 50, so
that patterns × replicates stay under WORK.

Pure numpy: no database, no web."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

Array = npt.NDArray[np.float64]

REPLICATES = 200
MIN_REPLICATES = 50
WORK = 4_000_000  # patterns × replicates per request: about a second
CHUNK = 25  # replicates solved together
SEED = 20261202  # fixed: the same data give the same intervals
_TOLERANCE = 1e-10


@dataclass(frozen=True, slots=True)
class Patterns:
    """Distinct response patterns: `x` (m × p, 0/1), the outcome `y` (m) and `counts` (m)."""

    x: Array
    y: Array
    counts: npt.NDArray[np.int64]

    @property
    def n(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True, slots=True)
class Fit:
    """One fit per row of weights: `r2` (B), `weights` (B × p: each driver's part of r2,
    adding up to it), `effects` (B × p, points of the outcome, NaN where a driver does not
    vary) and `shares` (B × p: the fraction of responses with each driver). A row whose
    outcome does not vary is NaN throughout."""

    r2: Array
    weights: Array
    effects: Array
    shares: Array


def _products(x: Array) -> sparse.csr_matrix:
    """Per pattern, the products x_i·x_j as a sparse row of p² (indicators are sparse: a
    comment mentions a theme or two), so that X'WX for every replicate is one product."""
    p = x.shape[1]
    columns = sparse.csr_matrix(x)
    left = columns[:, np.repeat(np.arange(p), p)]  # column i·p + j holds x_i
    right = columns[:, np.tile(np.arange(p), p)]  # and x_j
    return sparse.csr_matrix(left.multiply(right))


def fit_many(
    x: Array, y: Array, w: Array, *, exclusive: bool, products: sparse.csr_matrix | None = None
) -> Fit:
    """Relative weights and effects on the responses weighted by each row of `w` (B × m).

    Effects: for drivers that may occur together (themes, tags), the coefficients of the
    regression on all of them, so each effect holds the others fixed. For mutually exclusive
    ones (a touchpoint, a channel) no driver can be held fixed while another changes; the
    effect is then the driver's mean minus the mean of the other responses."""
    b, p = w.shape[0], x.shape[1]
    n = w.sum(axis=1)
    safe_n = np.where(n > 0, n, 1.0)
    mx = (w @ x) / safe_n[:, None]
    my = (w @ y) / safe_n
    syy = (w @ (y * y)) / safe_n - my * my
    sxy = (w @ (x * y[:, None])) / safe_n[:, None] - mx * my[:, None]
    pairs = _products(x) if products is None else products
    sxx = np.asarray(pairs.T @ w.T).T.reshape(b, p, p) / safe_n[:, None, None]
    sxx = sxx - mx[:, :, None] * mx[:, None, :]
    variances = np.diagonal(sxx, axis1=1, axis2=2).copy()
    active = variances > _TOLERANCE
    both = active[:, :, None] & active[:, None, :]
    sd = np.sqrt(np.where(active, variances, 1.0))
    eye = np.broadcast_to(np.eye(p), (b, p, p))
    # A driver that does not vary in a replicate stands apart (identity) and explains 0.
    rxx = np.where(both, sxx / (sd[:, :, None] * sd[:, None, :]), eye)
    rxy = np.where(active, sxy / (sd * np.sqrt(np.maximum(syy, _TOLERANCE))[:, None]), 0.0)
    eigenvalues, vectors = np.linalg.eigh(rxx)
    keep = eigenvalues > _TOLERANCE * np.maximum(eigenvalues.max(axis=1, keepdims=True), 1.0)
    root = np.where(keep, np.sqrt(np.where(keep, eigenvalues, 1.0)), 0.0)
    inverse_root = np.where(keep, 1 / np.where(keep, root, 1.0), 0.0)
    # Λ = R^½ (the correlations of the drivers with their closest orthonormal stand-ins),
    # β = R^-½ r (the outcome on those stand-ins); pseudo-inverses where drivers are
    # collinear (every response has exactly one channel).
    transposed = np.swapaxes(vectors, 1, 2)
    lam = (vectors * root[:, None, :]) @ transposed
    beta = np.einsum("bjk,bk->bj", vectors, inverse_root * np.einsum("bkj,bj->bk", transposed, rxy))
    weights = np.einsum("bjk,bk->bj", lam * lam, beta * beta)
    r2 = (beta * beta).sum(axis=1)
    if exclusive:
        effects = sxy / np.where(active, variances, 1.0)
    else:
        masked = np.where(both, sxx, 0.0)
        values, basis = np.linalg.eigh(masked)
        null = values <= _TOLERANCE * np.maximum(values.max(axis=1, keepdims=True), 1e-12)
        null &= np.isfinite(values)
        inverse = np.where(null, 0.0, 1 / np.where(null, 1.0, values))
        coefficients = np.einsum(
            "bjk,bk->bj", basis, inverse * np.einsum("bkj,bj->bk", np.swapaxes(basis, 1, 2), sxy)
        )
        # A driver in a direction the data leave free (it always occurs with another, or
        # with the sum of others) has no effect of its own that the data could tell: any
        # split between them fits the same. Say so (NaN) rather than pick one (pinv's).
        free = np.einsum("bjk,bk->bj", basis * basis, null.astype(float)) > 1e-6
        effects = np.where(free & active, np.nan, coefficients)
    effects = np.where(active, effects, np.nan)
    valid = (n > 0) & (syy > _TOLERANCE)
    nan = np.nan
    return Fit(
        np.where(valid, r2, nan),
        np.where(valid[:, None], weights, nan),
        np.where(valid[:, None], effects, nan),
        np.where(valid[:, None], mx, nan),
    )


def fit(x: Array, y: Array, w: Array, *, exclusive: bool) -> Fit | None:
    """One fit (`fit_many` with one row of weights); None when the outcome does not vary."""
    result = fit_many(x, y, w[None, :], exclusive=exclusive)
    if not np.isfinite(result.r2[0]):
        return None
    return Fit(result.r2[0], result.weights[0], result.effects[0], result.shares[0])


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Importance:
    """Point estimates with bootstrap percentile intervals. `importance` is each driver's
    percent of the explained variance (they add up to 100); `impact` is effect × share:
    how many points of the overall score the driver accounts for."""

    n: int
    r2: Estimate
    importance: list[Estimate]
    effect: list[Estimate | None]
    impact: list[Estimate | None]
    replicates: int


def _estimate(point: float, draws: Array, confidence: float) -> Estimate | None:
    draws = draws[np.isfinite(draws)]
    if not np.isfinite(point) or draws.size == 0:
        return None
    tail = 50 * (1 - confidence)
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(float(point), float(low), float(high))


def importance(
    patterns: Patterns,
    *,
    exclusive: bool,
    confidence: float = 0.95,
    replicates: int = REPLICATES,
    seed: int = SEED,
) -> Importance | None:
    """Relative weights of every column of `patterns.x`, with bootstrap intervals. None
    when the outcome does not vary. With many distinct patterns the replicates are fewer
    (at least MIN_REPLICATES), so that one request's work and memory stay bounded."""
    counts = patterns.counts.astype(np.float64)
    m = len(counts)
    replicates = max(MIN_REPLICATES, min(replicates, WORK // max(m, 1)))
    x, products = patterns.x, _products(patterns.x)
    point_fit = fit_many(x, patterns.y, counts[None, :], exclusive=exclusive, products=products)
    if not np.isfinite(point_fit.r2[0]):
        return None
    rng = np.random.default_rng(seed)
    parts = []
    for first in range(0, replicates, CHUNK):  # bounded memory: CHUNK × m weights at once
        size = min(CHUNK, replicates - first)
        draws = rng.multinomial(patterns.n, counts / counts.sum(), size=size)
        parts.append(
            fit_many(patterns.x, patterns.y, draws.astype(np.float64), exclusive=exclusive)
        )
    point = Fit(point_fit.r2[0], point_fit.weights[0], point_fit.effects[0], point_fit.shares[0])
    boot = Fit(*(np.concatenate([getattr(f, name) for f in parts]) for name in Fit.__slots__))
    usable = np.isfinite(boot.r2) & (boot.r2 > _TOLERANCE)
    r2 = np.where(usable, boot.r2, np.nan)
    shares = 100 * boot.weights / np.where(usable, boot.r2, np.nan)[:, None]
    impacts = boot.effects * boot.shares
    p = patterns.x.shape[1]
    # Nothing explained (R² 0: the drivers make no difference): every share is 0.
    weights = 100 * point.weights / point.r2 if point.r2 > _TOLERANCE else 0 * point.weights
    return Importance(
        n=patterns.n,
        r2=_estimate(100 * float(point.r2), 100 * r2, confidence)
        or Estimate(100 * float(point.r2), 0, 100),
        importance=[
            _estimate(float(weights[j]), shares[:, j], confidence)
            or Estimate(float(weights[j]), 0.0, 100.0)
            for j in range(p)
        ],
        effect=[
            _estimate(float(point.effects[j]), boot.effects[:, j], confidence) for j in range(p)
        ],
        impact=[
            _estimate(float(point.effects[j] * point.shares[j]), impacts[:, j], confidence)
            for j in range(p)
        ],
        replicates=int(usable.sum()),
    )
