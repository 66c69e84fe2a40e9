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

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

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
    total = Histogram(low, high)
    singles: dict[Condition, Histogram] = defaultdict(lambda: Histogram(low, high))
    for values, h in cells.items():
        total.add_counts(h.counts)
        for i, v in enumerate(values):
            if v is not None:
                singles[(i, v)].add_counts(h.counts)
    kept: set[Condition] = set()
    not_tested = 0
    for i in range(attributes):
        mine = sorted((c for c in singles if c[0] == i), key=lambda c: (-singles[c].n, c[1]))
        kept.update(mine[:max_values])
        not_tested += max(0, len(mine) - max_values)
    members: dict[tuple[str | None, ...], list[Key]] = {}
    segments: dict[Key, Histogram] = {}
    for values, h in cells.items():
        present = [(i, v) for i, v in enumerate(values) if v is not None and (i, v) in kept]
        keys: list[Key] = [(c,) for c in present] + list(combinations(present, 2))
        members[values] = keys
        for key in keys:
            segments.setdefault(key, Histogram(low, high)).add_counts(h.counts)

    strength: dict[Key, float] = {}  # |test statistic|: orders ties of p-values at 0

    def p_value(inside: Histogram, other: Histogram, key: Key | None = None) -> float | None:
        if inside.n < min_n or other.n < min_n:
            return None
        result = measures.compare(kind.value, other, inside, alpha=fdr)
        if result is None:
            return None
        if key is not None:
            strength[key] = abs(result.statistic or 0.0)
        return result.p_value

    reported: list[Key] = []
    first: dict[Key, float | None] = {}
    first_q: dict[Key, float] = {}
    while True:
        # Each round: every segment against everyone else, both without the responses of
        # the segments reported so far, and Benjamini–Hochberg across all of them.
        aside_cells = [v for v in cells if any(_inside(v, r) for r in reported)]
        rest = Histogram(low, high)
        rest.add_counts(total.counts)
        aside: dict[Key, Histogram] = {}
        for values in aside_cells:
            rest = _minus(rest, cells[values])
            for key in members[values]:
                aside.setdefault(key, Histogram(low, high)).add_counts(cells[values].counts)
        remaining = {k: _minus(h, aside[k]) if k in aside else h for k, h in segments.items()}
        tests = {k: p_value(h, _minus(rest, h), k) for k, h in remaining.items()}
        tested = [k for k, p in tests.items() if p is not None]
        q_values = dict(
            zip(tested, benjamini_hochberg([tests[k] or 0.0 for k in tested]), strict=True)
        )
        if not reported:
            first, first_q = tests, q_values
        significant = [k for k in tested if q_values[k] <= fdr and k not in reported]
        if not significant:
            break

        def specific(pair: Key, values: dict[Key, Histogram] = remaining) -> bool:
            """A pair differs from the rest of each of its two values."""
            inside = values[pair]
            return all(_differs(p_value(inside, _minus(values[(c,)], inside)), fdr) for c in pair)

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
                without = _minus(remaining[value], remaining[pair])
                if not _differs(p_value(without, _minus(rest, remaining[value])), fdr):
                    chosen = pair
                    break
        reported.append(chosen)
    explained: dict[Key, Key] = {}
    for key in first:
        if key in reported or key not in first_q or first_q[key] > fdr:
            continue
        # What accounts for it: the reported segment whose responses, set aside, leave the
        # least difference.
        explained[key] = max(
            reported,
            key=lambda r: _retest(cells, key, [r], p_value, low, high) or 1.0,
            default=(key[0],),
        )
    return Found(first, first_q, reported, explained, segments, not_tested, total)


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


def _inside(values: tuple[str | None, ...], key: Key) -> bool:
    return all(values[i] == v for i, v in key)


def _retest(
    cells: dict[tuple[str | None, ...], Histogram],
    key: Key,
    aside: list[Key],
    p_value: Callable[[Histogram, Histogram], float | None],
    low: int,
    high: int,
) -> float | None:
    """`key` against everyone else, both without the responses of the segments `aside`."""
    inside, other = Histogram(low, high), Histogram(low, high)
    for values, h in cells.items():
        if any(_inside(values, a) for a in aside):
            continue
        (inside if _inside(values, key) else other).add_counts(h.counts)
    return p_value(inside, other)


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
    for key in found.reported:
        inside = found.segments[key]
        segment, rest = Tally(inside), Tally(_minus(total, inside))
        items.append(
            Segment(
                conditions=_conditions(key, attributes),
                n=inside.n,
                share=share_value("responses", inside.n, total.n, confidence),
                metric=metric_value(segment, kind, confidence, limits),
                rest=metric_value(rest, kind, confidence, limits),
                difference=compare_tallies(kind, rest, segment, limits, confidence, fdr),
                q_value=found.q_values[key],
            )
        )
    items.sort(key=lambda s: (-abs(s.difference.delta) if s.difference else 0, s.q_value))
    explained = [
        ExplainedSegment(
            conditions=_conditions(key, attributes),
            n=found.segments[key].n,
            delta=_delta(kind, found.segments[key], total),
            q_value=found.q_values[key],
            explained_by=_conditions(by, attributes),
        )
        for key, by in sorted(found.explained.items(), key=lambda kv: found.q_values[kv[0]])
    ]
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
