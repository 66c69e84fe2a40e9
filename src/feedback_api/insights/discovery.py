"""Discovered theme candidates (`GET /v1/insights/theme-candidates`): the recurring phrases
of the selection's comments that the dictionary does not cover yet, ranked by how
characteristic they are of the focus (insights/phrases.py), and their acceptance into the
dictionary."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.insights import phrases
from feedback_api.insights.cpu import offload
from feedback_api.insights.report import negative_range
from feedback_api.insights.repository import InsightRepository
from feedback_api.insights.schemas import (
    CandidateFocus,
    ThemeCandidate,
    ThemeCandidates,
)
from feedback_api.insights.service import current_classifier
from feedback_api.metrics.schemas import Integrity, MetricKind
from feedback_api.metrics.service import MetricQuery, share_value
from feedback_api.metrics.service import metric as metric_service

# The latest this many comments of the selection are read: phrases that recur show in a
# sample this size, and it bounds the work of one request (about a second).
MAX_COMMENTS = 20_000
EXAMPLES = 5


async def candidates(
    session: AsyncSession, kind: MetricKind, query: MetricQuery, focus: CandidateFocus, limit: int
) -> ThemeCandidates:
    lo, hi, period, limits = await metric_service.frame(session, query)
    selection = query.selection
    rows = await InsightRepository(session).comments(
        selection, lo, hi, valid_only=query.integrity is Integrity.VALID, limit=MAX_COMMENTS + 1
    )
    sampled = len(rows) > MAX_COMMENTS
    rows = rows[:MAX_COMMENTS]
    if focus is CandidateFocus.NEGATIVE:
        low, high = negative_range(kind, selection.scale_min, selection.scale_max)
        mine = [r for r in rows if low <= r[1] <= high]
        others = [r[2] for r in rows if not low <= r[1] <= high]
    else:
        mine, others = rows, []
    dictionary = await current_classifier(session, selection.tenant_id)
    # A phrase shared by fewer people than a small cell could single them out.
    floor = (
        phrases.MIN_COMMENTS if limits.small_cells else max(phrases.MIN_COMMENTS, limits.min_cell)
    )

    def work() -> list[phrases.Candidate]:
        return phrases.rank(
            [r[2] for r in mine],
            others,
            known=lambda phrase: bool(dictionary.themes(phrase)),
            limit=limit,
            min_comments=floor,
        )

    found = await offload(work)  # up to about a second of CPU
    return ThemeCandidates(
        kind=kind,
        period=period,
        integrity=query.integrity,
        focus=focus,
        focus_comments=len(mine),
        other_comments=len(others),
        sampled=sampled,
        min_comments=floor,
        items=[
            ThemeCandidate(
                phrase=c.phrase,
                comments=c.focus,
                other_comments=c.rest,
                share=share_value("comments", c.focus, len(mine), query.confidence),
                keyness=round(c.score, 3) if others else None,
                related=c.related,
                examples=[mine[i][0] for i in c.comments[:EXAMPLES]],
            )
            for c in found
        ],
    )
