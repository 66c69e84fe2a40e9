"""`GET /v1/insights/segments`: the customer-attribute values, and pairs of values, whose
metric differs from everyone else's, with false-discovery control (docs/insights.md).

The search (`find`), in rounds:
1. Every value of each attribute (the most frequent MAX_VALUES), and every pair of values of
   two attributes, with at least `min_n` responses in it and outside it, is tested against
   everyone else with the metrics' two-sample test; Benjamini–Hochberg across all tests.
2. Of the significant segments, the strongest is reported: a value, or a pair that also
   differs from the rest of each of its values (else one of them explains it). A value
   gives way to a pair inside it when, without the pair, the rest of the value no longer
   differs: the pair is the finding, the value only contains it.
3. The next round repeats 1 and 2 with the responses of the reported segments set aside on
   both sides, until nothing is significant. So one real difference is reported once: its
   values, its complements (`returning` when `new` scores low) and the pairs that overlap
   it no longer differ once it is set aside, and are listed as explained.
Each round is a full Benjamini–Hochberg over what is left, so when nothing is left to find,
a round reports nothing falsely with probability at most `fdr`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import InvalidRequest
from feedback_api.insights.cpu import offload
from feedback_api.insights.drivers import MIN_N
from feedback_api.insights.repository import InsightRepository
from feedback_api.insights.schemas import (
    ExplainedSegment,
    Segment,
    SegmentCondition,
    SegmentReport,
)
from feedback_api.insights.trends import benjamini_hochberg
from feedback_api.kit.types import ATTRIBUTE_KEY_PATTERN
from feedback_api.metrics import measures
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.schemas import Integrity, MetricKind
from feedback_api.metrics.service import (
    MetricQuery,
    Tally,
    compare_tallies,
    metric_value,
    share_value,
)
from feedback_api.metrics.service import metric as metric_service

MAX_ATTRIBUTES = 5
MAX_VALUES = 20  # per attribute, the most frequent
MAX_EXPLAINED = 100  # explained segments listed, the most significant first

Condition = tuple[int, str]  # (attribute index, value)
Key = tuple[Condition, ...]  # one condition, or two of different attributes


def _minus(a: Histogram, b: Histogram) -> Histogram:
    out = Histogram(a.scale_min, a.scale_max)
    out.add_counts([x - y for x, y in zip(a.counts, b.counts, strict=True)])
    return out


@dataclass(slots=True)
class Found:
    tests: dict[Key, float | None]  # p-values
    q_values: dict[Key, float]
    reported: list[Key]
    explained: dict[Key, Key]  # significant, but explained by this reported key
    segments: dict[Key, Histogram]
    values_not_tested: int = 0
    total: Histogram | None = field(default=None)
    # reported segment → (its responses, everyone else's, q) in the round it was found
    rounds: dict[Key, tuple[Histogram, Histogram, float]] = field(default_factory=dict)


class _Cells:
    """The cells as arrays: each cell's value index per attribute (−1: none, or a value
    beyond the most frequent) and its score counts. A segment's histogram over the cells
    not set aside is then a weighted bincount, whatever the number of cells."""

    def __init__(
        self,
        cells: dict[tuple[str | None, ...], Histogram],
        attributes: int,
        max_values: int,
    ) -> None:
        keys = list(cells)
        width = len(next(iter(cells.values())).counts) if cells else 1
        self.counts = np.array([cells[k].counts for k in keys], dtype=np.int64).reshape(
            len(keys), width
        )
        sizes = self.counts.sum(axis=1)
        self.values: list[list[str]] = []
        self.index = np.full((len(keys), attributes), -1, dtype=np.int64)
        self.not_tested = 0
        for i in range(attributes):
            totals: dict[str, int] = defaultdict(int)
            for key, n in zip(keys, sizes, strict=True):
                value = key[i]
                if value is not None:
                    totals[value] += int(n)
            ranked = sorted(totals, key=lambda v: (-totals[v], v))
            kept = ranked[:max_values]
            self.not_tested += len(ranked) - len(kept)
            self.values.append(kept)
            position = {v: j for j, v in enumerate(kept)}
            self.index[:, i] = [position.get(key[i], -1) for key in keys]  # type: ignore[arg-type]

    def mask(self, key: Key) -> npt.NDArray[np.bool_]:
        out = np.ones(len(self.counts), dtype=bool)
        for i, value in key:
            out &= self.index[:, i] == self.values[i].index(value)
        return out

    def histograms(self, keep: npt.NDArray[np.bool_]) -> dict[Key, npt.NDArray[np.int64]]:
        """Every value's and pair's score counts over the cells kept."""
        out: dict[Key, npt.NDArray[np.int64]] = {}
        columns = self.counts.shape[1]
        attributes = self.index.shape[1]

        def add(keys: list[Key], slot: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_]) -> None:
            rows = valid & keep
            sums = np.stack(
                [
                    np.bincount(slot[rows], weights=self.counts[rows, s], minlength=len(keys))
                    for s in range(columns)
                ],
                axis=1,
            ).astype(np.int64)
            for j, key in enumerate(keys):
                if sums[j].any():
                    out[key] = sums[j]

        for i in range(attributes):
            names: list[Key] = [((i, v),) for v in self.values[i]]
            if names:
                add(names, np.maximum(self.index[:, i], 0), self.index[:, i] >= 0)
        for i, j in combinations(range(attributes), 2):
            width = len(self.values[j])
            pairs: list[Key] = [((i, a), (j, b)) for a in self.values[i] for b in self.values[j]]
            if pairs:
                slot = np.maximum(self.index[:, i], 0) * width + np.maximum(self.index[:, j], 0)
                add(pairs, slot, (self.index[:, i] >= 0) & (self.index[:, j] >= 0))
        return out


def find(
    cells: dict[tuple[str | None, ...], Histogram],
    attributes: int,
    kind: MetricKind,
    *,
    low: int,
    high: int,
    fdr: float,
    min_n: int,
    max_values: int = MAX_VALUES,
) -> Found:
    """The search over `cells`: histograms by the tuple of attribute values (None: the
    customer lacks it). Pure."""
    table = _Cells(cells, attributes, max_values)

    def histogram(counts: npt.NDArray[np.int64]) -> Histogram:
        h = Histogram(low, high)
        h.add_counts([int(c) for c in counts])
        return h

    strength: dict[Key, float] = {}  # |test statistic|: orders ties of p-values at 0

    def p_value(
        inside: npt.NDArray[np.int64], other: npt.NDArray[np.int64], key: Key | None = None
    ) -> float | None:
        if inside.sum() < min_n or other.sum() < min_n:
            return None
        a, b = histogram(other), histogram(inside)
        result = measures.compare(kind.value, a, b, alpha=fdr)
        if result is None or result.p_value is None:
            # No variance on either side (every answer alike): the test is undefined, and
            # the difference is as clear as it gets when the two values differ at all.
            values = (measures.measure(kind.value, a).value, measures.measure(kind.value, b).value)
            if None in values:
                return None
            separated = values[0] != values[1]
            if key is not None:
                strength[key] = math.inf if separated else 0.0
            return 0.0 if separated else 1.0
        if key is not None:
            strength[key] = abs(result.statistic or 0.0)
        return result.p_value

    reported: list[Key] = []
    aside = np.zeros(len(table.counts), dtype=bool)
    first: dict[Key, float | None] = {}
    first_q: dict[Key, float] = {}
    first_segments: dict[Key, npt.NDArray[np.int64]] = {}
    # per reported segment: its responses and everyone else's in the round it was found
    # (without the segments reported before it), and its q-value there
    rounds: dict[Key, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], float]] = {}
    while True:
        # Each round: every segment against everyone else, both without the responses of
        # the segments reported so far, and Benjamini–Hochberg across all of them.
        remaining = table.histograms(~aside)
        rest = table.counts[~aside].sum(axis=0)
        tests = {k: p_value(h, rest - h, k) for k, h in remaining.items()}
        tested = [k for k, p in tests.items() if p is not None]
        q_values = dict(
            zip(tested, benjamini_hochberg([tests[k] or 0.0 for k in tested]), strict=True)
        )
        if not reported:
            first, first_q, first_segments = tests, q_values, remaining
        significant = [k for k in tested if q_values[k] <= fdr and k not in reported]
        if not significant:
            break

        def specific(pair: Key, values: dict[Key, npt.NDArray[np.int64]] = remaining) -> bool:
            """A pair differs from the rest of each of its two values (a rest too small to
            test does not count against it: the pair is then nearly all of the value)."""
            inside = values[pair]
            for c in pair:
                p = p_value(inside, values[(c,)] - inside)
                if p is not None and p > fdr:
                    return False
            return True

        eligible = [k for k in significant if len(k) == 1 or specific(k)]
        if not eligible:
            break  # only pairs that differ through one of their values
        chosen = min(eligible, key=lambda k: (tests[k] or 0.0, -strength[k], k))
        if len(chosen) == 1:
            # A value may be significant through a pair inside it: report the pair instead
            # when, without it, the rest of the value does not differ.
            value = chosen
            for pair in sorted(
                (k for k in eligible if len(k) == 2 and value[0] in k),
                key=lambda k: (tests[k] or 0.0, -strength[k]),
            ):
                remainder = remaining[value] - remaining[pair]
                if not _differs(p_value(remainder, rest - remaining[value]), fdr):
                    chosen = pair
                    break
        reported.append(chosen)
        rounds[chosen] = (remaining[chosen], rest - remaining[chosen], q_values[chosen])
        aside |= table.mask(chosen)
    masks = {r: table.mask(r) for r in reported}
    explained: dict[Key, Key] = {}
    candidates = sorted(
        (k for k in first_q if first_q[k] <= fdr and k not in masks), key=lambda k: first_q[k]
    )
    for key in candidates[:MAX_EXPLAINED] if reported else []:
        inside = table.mask(key)

        def left(r: Key, members: npt.NDArray[np.bool_] = inside) -> float:
            """The key against everyone else, both without the responses of `r`."""
            kept = ~masks[r]
            p = p_value(
                table.counts[members & kept].sum(axis=0), table.counts[~members & kept].sum(axis=0)
            )
            return 1.0 if p is None else p

        # What accounts for it: the reported segment whose responses, set aside, leave the
        # least difference.
        explained[key] = max(reported, key=left)
    total = histogram(table.counts.sum(axis=0)) if len(table.counts) else Histogram(low, high)
    return Found(
        first,
        first_q,
        reported,
        explained,
        {k: histogram(h) for k, h in first_segments.items()},
        table.not_tested,
        total,
        {k: (histogram(a), histogram(b), q) for k, (a, b, q) in rounds.items()},
    )


_ATTRIBUTE = re.compile(ATTRIBUTE_KEY_PATTERN)


def attribute_names(raw: str) -> list[str]:
    """`attr=tier,region,lifecycle`: one to MAX_ATTRIBUTES distinct customer attributes."""
    names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not names or len(names) > MAX_ATTRIBUTES:
        raise InvalidRequest.at(
            ("query", "attr"),
            "attribute_count",
            f"name one to {MAX_ATTRIBUTES} customer attributes, comma-separated",
        )
    for name in names:
        if not _ATTRIBUTE.fullmatch(name):
            raise InvalidRequest.at(
                ("query", "attr"),
                "attribute_name",
                "attribute names are letters, digits and _.- (up to 64)",
                detail=f"{name[:70]!r} is not an attribute name",
            )
    return names


def _delta(kind: MetricKind, inside: Histogram, total: Histogram) -> float | None:
    result = measures.compare(kind.value, _minus(total, inside), inside)
    return None if result is None else result.delta


def _differs(p: float | None, fdr: float) -> bool:
    return p is not None and p <= fdr


def _nested(a: Key, b: Key) -> bool:
    """One segment lies inside the other (its conditions include the other's)."""
    return set(a) <= set(b) or set(b) <= set(a)


def _conditions(key: Key, names: Sequence[str]) -> list[SegmentCondition]:
    return [SegmentCondition(attribute=names[i], value=v) for i, v in key]


async def segment_report(
    session: AsyncSession,
    kind: MetricKind,
    query: MetricQuery,
    attributes: list[str],
    fdr: float,
) -> SegmentReport:
    lo, hi, period, limits = await metric_service.frame(session, query)
    selection = query.selection
    valid_only = query.integrity is Integrity.VALID
    rows = await InsightRepository(session).segment_tallies(selection, lo, hi, attributes)
    low, high = selection.scale_min, selection.scale_max
    cells: dict[tuple[str | None, ...], Histogram] = defaultdict(lambda: Histogram(low, high))
    excluded: dict[tuple[str | None, ...], int] = defaultdict(int)
    for values, is_excluded, score, n in rows:
        if is_excluded:
            excluded[values] += n
            if valid_only:
                continue
        cells[values].add(score, n)
    floor = MIN_N if limits.small_cells else max(MIN_N, limits.min_cell)
    found = await offload(
        lambda: find(dict(cells), len(attributes), kind, low=low, high=high, fdr=fdr, min_n=floor)
    )
    total = found.total or Histogram(low, high)
    confidence = query.confidence
    items = []
    shown: list[tuple[Key, int]] = []  # what a reader sees, to check subtractions against
    for index, key in enumerate(found.reported):
        # As found: without the segments reported before it, against everyone else left.
        inside, others, q_value = found.rounds[key]
        segment, rest = Tally(inside), Tally(others)
        shown.append((key, inside.n))
        items.append(
            Segment(
                conditions=_conditions(key, attributes),
                n=inside.n,
                share=share_value("responses", inside.n, inside.n + others.n, confidence),
                metric=metric_value(segment, kind, confidence, limits),
                rest=metric_value(rest, kind, confidence, limits),
                difference=compare_tallies(kind, rest, segment, limits, confidence, fdr),
                q_value=q_value,
                set_aside=[_conditions(k, attributes) for k in found.reported[:index]],
            )
        )
    items.sort(key=lambda s: (-abs(s.difference.delta) if s.difference else 0, s.q_value))
    explained = []
    for key, by in sorted(found.explained.items(), key=lambda kv: found.q_values[kv[0]]):
        n = found.segments[key].n
        # A value and a pair inside it, both shown, differ by the responses of the value
        # outside the pair: too few of them would be given away by subtraction.
        leaks = not limits.small_cells and any(
            _nested(key, other) and 0 < abs(n - m) < limits.min_cell for other, m in shown
        )
        explained.append(
            ExplainedSegment(
                conditions=_conditions(key, attributes),
                n=n,
                delta=None if leaks else _delta(kind, found.segments[key], total),
                q_value=found.q_values[key],
                explained_by=_conditions(by, attributes),
            )
        )
        if not leaks:
            shown.append((key, n))
    return SegmentReport(
        kind=kind,
        period=period,
        integrity=query.integrity,
        confidence=confidence,
        min_cell=limits.min_cell,
        fdr=fdr,
        min_n=floor,
        attributes=attributes,
        base=total.n,
        overall=metric_value(Tally(total, sum(excluded.values())), kind, confidence, limits),
        tested=sum(p is not None for p in found.tests.values()),
        values_not_tested=found.values_not_tested,
        items=items,
        explained=explained,
    )
