from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query

from feedback_api.db import SessionDep
from feedback_api.exceptions import InvalidRequest
from feedback_api.kit.periods import Interval
from feedback_api.kit.schemas import problem_responses
from feedback_api.kit.types import Bound, Text
from feedback_api.metrics.filters import (
    ATTR_PREFIX,
    FiltersDep,
    metric_query,
)
from feedback_api.metrics.schemas import (
    GROUP_MAX_LENGTH,
    GROUP_PATTERN,
    Breakdown,
    Comparison,
    MetricKind,
    MetricResult,
    Summary,
    Trend,
)
from feedback_api.metrics.service import MetricQuery
from feedback_api.metrics.service import metric as metric_service
from feedback_api.responses.schemas import Channel

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])

MAX_SEGMENT_VALUE = 255


def _with_segment(query: MetricQuery, segment: str | None, name: str) -> MetricQuery:
    if segment is None:
        return query
    dimension, _, value = segment.partition(":")
    selection = query.selection
    if dimension.startswith(ATTR_PREFIX):
        attr = (dimension[len(ATTR_PREFIX) :], value)
        return replace(
            query, selection=replace(selection, attributes=(*selection.attributes, attr))
        )
    if dimension == "tag":
        value = value.strip().lower()
    if getattr(selection, dimension) is not None:
        raise InvalidRequest.at(
            ("query", name),
            "segment_conflict",
            f"drop the {dimension} filter or the segment",
            detail=f"`{name}` segments by {dimension}, which the filters already fix",
        )
    if dimension == "channel" and value not in {c.value for c in Channel}:
        raise InvalidRequest.at(
            ("query", name),
            "unknown_channel",
            "unknown channel",
            detail=f"`{name}`: unknown channel {value!r}",
        )
    fixed: dict[str, Any] = {dimension: value}
    return replace(query, selection=replace(selection, **fixed))


Alpha = Annotated[float, Query(gt=0, lt=0.5, description="Significance level.")]
SEGMENT_PATTERN = GROUP_PATTERN[:-1] + rf":[^\n\u0000]{{1,{MAX_SEGMENT_VALUE}}}$"
Segment = Annotated[
    Annotated[
        str, Text(max_length=GROUP_MAX_LENGTH + 1 + MAX_SEGMENT_VALUE, pattern=SEGMENT_PATTERN)
    ]
    | None,
    Query(description="`dimension:value`, e.g. `channel:in_person` or `attr.tier:gold`."),
]


@router.get("/summary", responses=problem_responses(403))
async def metrics_summary(session: SessionDep, filters: FiltersDep, alpha: Alpha = 0.05) -> Summary:
    """NPS, CSAT and CES for the period beside the period of the same length just before,
    with whether each changed significantly (z-test, Newcombe, Welch t-test). A period with
    fewer responses than the tenant's `metrics_min_cell_n` (default 5) shows its n but no
    values (`suppressed: true`) and no change, unless the key holds `metrics:small_cells`."""
    query = MetricQuery(
        selection=replace(filters.selection, kind="nps", scale_min=0, scale_max=10),
        start=filters.start,
        end=filters.end,
        integrity=filters.integrity,
        confidence=filters.confidence,
        small_cells=filters.small_cells,
    )
    return await metric_service.summary(session, query, alpha)


@router.get("/{kind}", responses=problem_responses(403))
async def get_metric(
    kind: MetricKind,
    session: SessionDep,
    filters: FiltersDep,
    target_margin: Annotated[
        float | None,
        Query(
            # Below 0.01 the answer overflows any realistic n (and 5e-324 divided by zero).
            ge=0.01,
            le=100,
            description="Also say how many responses a ±margin interval "
            "needs (NPS points, CSAT percentage points, or points on the mean's scale), "
            "0.01 to 100.",
        ),
    ] = None,
) -> MetricResult:
    """One metric over a period: value, n, confidence interval, margin, counts per
    category, the score distribution, and a `low_sample` flag.

    Filtered or not, a result of fewer responses than the tenant's `metrics_min_cell_n`
    (default 5) shows n but nothing computed from the scores (`suppressed: true`), so
    that it cannot single out the people who answered, unless the key holds
    `metrics:small_cells`.

    Example: `GET /v1/metrics/nps?from=2026-07-01&to=2026-10-01&channel=app`."""
    return await metric_service.metric(session, metric_query(kind, filters), target_margin)


@router.get("/{kind}/trend", responses=problem_responses(403))
async def get_trend(
    kind: MetricKind,
    session: SessionDep,
    filters: FiltersDep,
    interval: Annotated[
        Interval, Query(description="Bucket size, in the tenant's time zone (weeks start Monday).")
    ] = Interval.WEEK,
) -> Trend:
    """The metric per day, week or month of the period. Every bucket is present, empty
    ones with n = 0 and null value; at most 1,000 buckets. A bucket of fewer responses
    than the tenant's `metrics_min_cell_n` shows n only (`suppressed: true`), unless the
    key holds `metrics:small_cells`."""
    return await metric_service.trend(session, metric_query(kind, filters), interval)


@router.get("/{kind}/breakdown", responses=problem_responses(403))
async def get_breakdown(
    kind: MetricKind,
    session: SessionDep,
    filters: FiltersDep,
    by: Annotated[
        Annotated[str, Text(max_length=GROUP_MAX_LENGTH, pattern=GROUP_PATTERN)],
        Query(
            description="channel, touchpoint, survey, tag, agent_ref, "
            "location_ref, language, or attr.<name> (a customer attribute).",
        ),
    ],
) -> Breakdown:
    """The metric per group, largest first. Groups with fewer responses than the tenant's
    minimum cell size (default 5) are merged into one `other` row, and if that row is still
    too small the smallest groups join it, so no small cell can single out a person; only
    when all groups together are too small is that one row `suppressed`. With `by=tag` a
    response counts in each of its tags (and once in `other`). A key holding
    `metrics:small_cells` gets every group on its own, unmerged."""
    return await metric_service.breakdown(session, metric_query(kind, filters), by)


@router.get("/{kind}/compare", responses=problem_responses(403))
async def compare_metric(
    kind: MetricKind,
    session: SessionDep,
    filters: FiltersDep,
    a_from: Annotated[Bound | None, Query(description="Period a (default `from`).")] = None,
    a_to: Annotated[Bound | None, Query(description="Default `to`.")] = None,
    b_from: Annotated[Bound | None, Query(description="Period b (default `from`).")] = None,
    b_to: Annotated[Bound | None, Query(description="Default `to`.")] = None,
    a_segment: Segment = None,
    b_segment: Segment = None,
    alpha: Alpha = 0.05,
) -> Comparison:
    """Did it change? b − a with the fitting test: two periods
    (`a_from&a_to&b_from&b_to`), or two segments of one period
    (`a_segment=channel:in_person&b_segment=channel:web`), or both. A side of fewer
    responses than the tenant's `metrics_min_cell_n` shows n only (`suppressed: true`)
    and there is no comparison, unless the key holds `metrics:small_cells`."""
    periods = (a_from, a_to, b_from, b_to)
    if all(p is None for p in periods) and a_segment is None and b_segment is None:
        raise InvalidRequest.at(
            ("query", "a_from"),
            "comparison_required",
            "nothing to compare",
            detail="give two periods (a_from, a_to, b_from, b_to) "
            "or two segments (a_segment, b_segment)",
        )
    base = metric_query(kind, filters)
    a = replace(base, start=a_from or filters.start, end=a_to or filters.end)
    b = replace(base, start=b_from or filters.start, end=b_to or filters.end)
    a = _with_segment(a, a_segment, "a_segment")
    b = _with_segment(b, b_segment, "b_segment")
    return await metric_service.compare(session, a, b, segments=(a_segment, b_segment), alpha=alpha)
