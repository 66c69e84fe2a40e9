"""`GET /v1/insights/themes`: per theme, how often it is mentioned and what the responses
that mention it score against the rest, with the metrics' intervals, tests and small-cell
rules."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.insights.repository import InsightRepository, ThemeRepository, ThemeTally
from feedback_api.insights.schemas import ThemeReport, ThemeStat
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.schemas import Integrity, MetricKind
from feedback_api.metrics.selection import Selection
from feedback_api.metrics.service import (
    Limits,
    MetricQuery,
    Tally,
    compare_tallies,
    metric_value,
    share_value,
)
from feedback_api.metrics.service import metric as metric_service

EXAMPLES = 5
ALPHA = 0.05


def negative_range(kind: MetricKind, low: int, high: int) -> tuple[int, int]:
    """The scores of a negative answer: NPS detractors 0–6, CSAT 1–2, CES 1–3, the lower
    half of a rating's scale."""
    if kind is MetricKind.NPS:
        return 0, 6
    if kind is MetricKind.CSAT:
        return 1, 2
    if kind is MetricKind.CES:
        return 1, 3
    return low, low + (high - low + 1) // 2 - 1


def _negative(kind: MetricKind, h: Histogram) -> tuple[str, int]:
    lo, hi = negative_range(kind, h.scale_min, h.scale_max)
    return f"{lo}–{hi}", h.count_between(lo, hi)


class _Tallies:
    """Histograms by theme (None: the base), counting excluded responses apart."""

    def __init__(self, rows: list[ThemeTally], low: int, high: int, *, valid_only: bool) -> None:
        self.histograms: dict[str | None, Histogram] = defaultdict(lambda: Histogram(low, high))
        self.excluded: dict[str | None, int] = defaultdict(int)
        self.low, self.high = low, high
        for row in rows:
            if row.excluded:
                self.excluded[row.theme] += row.n
                if valid_only:
                    continue
            self.histograms[row.theme].add(row.score, row.n)

    def tally(self, theme: str | None) -> Tally:
        return Tally(self.histograms[theme], self.excluded[theme])

    def rest(self, theme: str) -> Tally:
        base, mentions = self.histograms[None], self.histograms[theme]
        rest = Histogram(self.low, self.high)
        rest.add_counts([b - m for b, m in zip(base.counts, mentions.counts, strict=True)])
        return Tally(rest, self.excluded[None] - self.excluded[theme])


def tallies_of(
    rows: list[ThemeTally], low: int, high: int, valid_only: bool
) -> dict[str | None, Histogram]:
    """Score histograms by theme (None: the base), excluded responses only when asked."""
    return dict(_Tallies(rows, low, high, valid_only=valid_only).histograms)


async def theme_histograms(
    session: AsyncSession, selection: Selection, lo: datetime, hi: datetime, *, valid_only: bool
) -> dict[str | None, Histogram]:
    """For other domains (actions): score histograms of the responses with a comment or tag
    (None) and of those mentioning each theme (and `tag:<tag>`), in [lo, hi)."""
    rows = await InsightRepository(session).theme_tallies(selection, lo, hi)
    return tallies_of(rows, selection.scale_min, selection.scale_max, valid_only)


async def theme_report(session: AsyncSession, kind: MetricKind, query: MetricQuery) -> ThemeReport:
    lo, hi, period, limits = await metric_service.frame(session, query)
    selection = query.selection
    valid_only = query.integrity is Integrity.VALID
    repo = InsightRepository(session)
    tallies = _Tallies(
        await repo.theme_tallies(selection, lo, hi),
        selection.scale_min,
        selection.scale_max,
        valid_only=valid_only,
    )
    examples = await repo.examples(selection, lo, hi, valid_only=valid_only, per=EXAMPLES)
    names = {
        t.key: next(iter(t.names.values()), None)
        for t in await ThemeRepository(session).all(selection.tenant_id)
    }
    base = tallies.histograms[None].n
    items = [
        _stat(kind, key, names.get(key), tallies, base, examples.get(key, []), query, limits)
        for key in tallies.histograms
        if key is not None and tallies.histograms[key].n > 0
    ]
    items.sort(key=lambda s: (-s.mentions, s.key))
    return ThemeReport(
        kind=kind,
        period=period,
        integrity=query.integrity,
        confidence=query.confidence,
        min_cell=limits.min_cell,
        base=base,
        items=items,
    )


def _stat(
    kind: MetricKind,
    key: str,
    name: str | None,
    tallies: _Tallies,
    base: int,
    examples: list[UUID],
    query: MetricQuery,
    limits: Limits,
) -> ThemeStat:
    with_theme, without = tallies.tally(key), tallies.rest(key)
    mentions = with_theme.histogram.n
    hidden = limits.suppressed(mentions)
    label, negative = _negative(kind, with_theme.histogram)
    return ThemeStat(
        key=key,
        name=name,
        source="tag" if key.startswith("tag:") else "dictionary",
        mentions=mentions,
        share=share_value("mentions", mentions, base, query.confidence),
        negative=None if hidden else share_value(label, negative, mentions, query.confidence),
        with_theme=metric_value(with_theme, kind, query.confidence, limits),
        without_theme=metric_value(without, kind, query.confidence, limits),
        # with − without: compare_tallies gives b − a
        difference=compare_tallies(kind, without, with_theme, limits, query.confidence, ALPHA),
        examples=[] if hidden else examples,
    )
