"""Spikes: a sudden pile of top scores at one location or agent, against its own history.

Rule: top scores (the scale's maximum: 10 for NPS, 5 for CSAT, 7 for CES) per location and
agent are counted in buckets of `spike_window_hours`. The expected count of a bucket is the
group's own rate over the `spike_history_days` before it (at least one per history, so a new
group is not a spike by being new). A bucket spikes when it holds at least
`spike_min_count` top scores and the Poisson probability of that many or more is below
`spike_p_value`; its top scores are linked to the flag. Strength 0.8 plus 0.05 per factor of
ten the count exceeds the expectation, up to 0.95.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    dimension: str
    ref: str
    top: int  # top scores in the bucket
    history_top: int  # top scores in the history before it
    history_buckets: float  # the history's length in buckets


@dataclass(frozen=True, slots=True)
class Spike:
    bucket: Bucket
    expected: float
    p_value: float

    @property
    def strength(self) -> float:
        ratio = self.bucket.top / max(self.expected, 1e-9)
        return round(min(0.95, 0.8 + 0.05 * math.log10(max(ratio, 1.0))), 3)


def expected(bucket: Bucket) -> float:
    return max(bucket.history_top, 1) / bucket.history_buckets


def check(bucket: Bucket, *, min_count: int, p_value: float) -> Spike | None:
    if bucket.top < min_count:
        return None
    mean = expected(bucket)
    from scipy.stats import poisson  # loaded where the test runs (the worker)

    p = float(poisson.sf(bucket.top - 1, mean))
    return Spike(bucket, mean, p) if p < p_value else None
