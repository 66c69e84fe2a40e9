"""The theme dictionary: `/v1/themes`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import Response

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep
from feedback_api.insights.discovery import candidates
from feedback_api.insights.priorities import priorities
from feedback_api.insights.report import theme_report
from feedback_api.insights.schemas import (
    THEME_KEY_PATTERN,
    CandidateAccept,
    CandidateFocus,
    DriverBy,
    DriverReport,
    PriorityReport,
    RisingThemes,
    SegmentReport,
    ThemeCandidates,
    ThemeList,
    ThemeRead,
    ThemeReport,
    ThemeTrend,
    ThemeUpsert,
)
from feedback_api.insights.service import theme as theme_service
from feedback_api.insights.trends import rising, theme_trend
from feedback_api.keys.dependencies import require
from feedback_api.kit.http import json_response
from feedback_api.kit.periods import Interval
from feedback_api.kit.schemas import problem_responses
from feedback_api.metrics.filters import FilterParamsDep, Filters, metric_query
from feedback_api.metrics.schemas import MetricKind

router = APIRouter(prefix="/v1", tags=["insights"])

InsightsRead = Annotated[AuthContext, Depends(require(Scope.INSIGHTS_READ))]
InsightsWrite = Annotated[AuthContext, Depends(require(Scope.INSIGHTS_WRITE))]
Key = Annotated[
    str,
    Path(
        max_length=64,
        pattern=THEME_KEY_PATTERN,
        description="The theme's key: lowercase letters, digits and `_`.",
    ),
]


@router.get("/themes", responses=problem_responses(403))
async def list_themes(session: SessionDep, auth: InsightsRead) -> ThemeList:
    """The tenant's theme dictionary, and whether stored comments are classified with its
    current version yet (`classification.up_to_date`)."""
    return await theme_service.list(session, auth.tenant_id)


@router.get("/themes/{key}", responses=problem_responses(403, 404))
async def get_theme(key: Key, session: SessionDep, auth: InsightsRead) -> ThemeRead:
    """One theme of the dictionary."""
    return await theme_service.get(session, auth.tenant_id, key)


@router.put(
    "/themes/{key}",
    response_model=ThemeRead,
    responses={
        201: {"model": ThemeRead, "description": "Created."},
        **problem_responses(403, 409, body=True),
    },
)
async def put_theme(
    key: Key, body: ThemeUpsert, session: SessionDep, auth: InsightsWrite
) -> Response:
    """Create or replace a theme (201 created, 200 replaced; safe to repeat).

    New comments are classified with it from the moment this answers; comments already
    stored are re-classified by the worker in the background, in chunks (watch
    `classification.up_to_date` on `GET /v1/themes`). 409 `too_many_themes` beyond 500."""
    read, created = await theme_service.put(session, auth.tenant_id, key, body)
    return json_response(201 if created else 200, read)


@router.delete(
    "/themes/{key}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404)
)
async def delete_theme(key: Key, session: SessionDep, auth: InsightsWrite) -> None:
    """Remove a theme from the dictionary; its mentions stop counting at once and are
    cleared by the background re-classification."""
    await theme_service.delete(session, auth.tenant_id, key)


def insight_filters(params: FilterParamsDep, auth: InsightsRead) -> Filters:
    return params.of(auth)


InsightFilters = Annotated[Filters, Depends(insight_filters)]
Fdr = Annotated[
    float,
    Query(
        gt=0,
        lt=1,
        allow_inf_nan=False,
        description="The false-discovery rate to control across the tests (Benjamini–Hochberg).",
    ),
]


@router.get("/insights/themes", responses=problem_responses(403))
async def theme_insights(
    session: SessionDep,
    filters: InsightFilters,
    kind: Annotated[MetricKind, Query(description="The metric to compare by.")] = MetricKind.NPS,
) -> ThemeReport:
    """What customers talk about, and what it costs: for each theme of the dictionary (and
    each tag, as `tag:<tag>`) among the responses with a comment or tag in the period, its
    mentions and share, the share of negative answers among them, and the metric of the
    responses mentioning it against the others, with the difference's interval and test.
    Takes the metrics' filters (`from`, `to`, channel … `attr.<name>`); excluded responses
    count only with `integrity=all`; small cells are withheld as in the metrics."""
    return await theme_report(session, kind, metric_query(kind, filters))


@router.get("/insights/theme-candidates", responses=problem_responses(403))
async def theme_candidates(
    session: SessionDep,
    filters: InsightFilters,
    kind: Annotated[
        MetricKind, Query(description="The metric whose negative answers are the focus.")
    ] = MetricKind.NPS,
    focus: Annotated[
        CandidateFocus,
        Query(
            description="`negative` (default): phrases characteristic of the comments of "
            "negative answers, against the selection's other comments, ranked by "
            "log-likelihood (G²); `all`: the most frequent phrases of all comments."
        ),
    ] = CandidateFocus.NEGATIVE,
    limit: Annotated[int, Query(ge=1, le=100, description="How many candidates.")] = 20,
) -> ThemeCandidates:
    """Themes your dictionary lacks: the recurring phrases of the period's comments (Chinese
    segmented, English words; one to three words; stop words and words of mere praise or
    blame left out), ranked as `focus` says, with phrases found in the same comments merged
    (`related`). Phrases the dictionary already matches are left out, and so are phrases
    in fewer comments than a small cell. Reads the latest 20,000 comments of the selection
    (`sampled`). Accept one with `POST /v1/insights/theme-candidates/accept`."""
    return await candidates(session, kind, metric_query(kind, filters), focus, limit)


@router.post(
    "/insights/theme-candidates/accept",
    response_model=ThemeRead,
    responses={
        201: {"model": ThemeRead, "description": "A new theme."},
        **problem_responses(403, 409, body=True),
    },
)
async def accept_candidate(
    body: CandidateAccept, session: SessionDep, auth: InsightsWrite
) -> Response:
    """Accept a discovered phrase: a new theme `key` (201, origin `discovered`) with the
    phrase and `keywords` as its keywords, or, when `key` exists, the phrase added to its
    keywords (200). Stored comments are re-classified in the background, as after a PUT."""
    read, created = await theme_service.accept(session, auth.tenant_id, body)
    return json_response(201 if created else 200, read)


TrendKey = Annotated[
    str,
    Path(
        max_length=100,
        pattern=r"^([a-z0-9][a-z0-9_]{0,63}|tag:[^\x00-\x1f]{1,64})$",
        description="A theme's key, or `tag:<tag>` for a tag.",
    ),
]


@router.get("/insights/themes/rising", responses=problem_responses(403))
async def rising_themes(
    session: SessionDep,
    filters: InsightFilters,
    kind: Annotated[MetricKind, Query(description="The metric's filters apply.")] = MetricKind.NPS,
    fdr: Fdr = 0.05,
) -> RisingThemes:
    """Themes (and tags) whose share of comments grew from the period of the same length
    just before to this one (`from`, `to`; default the last 30 days): a one-sided
    two-proportion test per theme with at least 10 mentions now and 30 responses with text
    on each side, Benjamini–Hochberg across the themes tested. The worker also looks each
    week and sends `theme.rising` once per theme and week."""
    return await rising(session, kind, metric_query(kind, filters), fdr)


@router.get("/insights/themes/{key}/trend", responses=problem_responses(403, 404))
async def theme_trend_endpoint(
    key: TrendKey,
    session: SessionDep,
    filters: InsightFilters,
    kind: Annotated[MetricKind, Query(description="The metric to report.")] = MetricKind.NPS,
    interval: Annotated[
        Interval, Query(description="Buckets at local midnights of the tenant's time zone.")
    ] = Interval.WEEK,
) -> ThemeTrend:
    """One theme (or `tag:<tag>`) over time: per day, week or month, the responses with a
    comment or tag, how many mention it, the share with its interval, and the metric of
    those mentioning it (withheld for small cells). Takes the metrics' filters."""
    return await theme_trend(session, kind, metric_query(kind, filters), key, interval)


@router.get("/insights/drivers", responses=problem_responses(403))
async def drivers(
    session: SessionDep,
    filters: InsightFilters,
    kind: Annotated[MetricKind, Query(description="The score to explain.")] = MetricKind.NPS,
    by: Annotated[
        DriverBy,
        Query(
            description="The drivers: the dictionary's `theme`s (responses with a comment), "
            "`tag`s, `touchpoint`s or `channel`s (every response)."
        ),
    ] = DriverBy.THEME,
) -> DriverReport:
    """What moves the score: for each theme, tag, touchpoint or channel, its importance
    (percent of the explained variance, Johnson's relative weights), its effect in points
    of the metric, its impact on the overall metric (effect × share) and how it does now,
    with percentile-bootstrap intervals and n. Drivers with fewer than `min_n` responses
    with them, or without them, are listed as not estimable and never ranked. The effects
    are associations in the data, not proof of cause. Takes the metrics' filters."""
    from feedback_api.insights.drivers import driver_report  # numpy: loaded on first use

    return await driver_report(session, kind, metric_query(kind, filters), by)


@router.get("/insights/segments", responses=problem_responses(403))
async def segments(
    session: SessionDep,
    filters: InsightFilters,
    attr: Annotated[
        str,
        Query(
            max_length=400,
            pattern=r"^[A-Za-z0-9_.,\- ]+$",
            description="One to five customer attributes, comma-separated: "
            "`tier,region,lifecycle`.",
            examples=["tier,region,lifecycle"],
        ),
    ],
    kind: Annotated[MetricKind, Query(description="The metric to compare.")] = MetricKind.NPS,
    fdr: Fdr = 0.05,
) -> SegmentReport:
    """Who scores differently, without guessing the cross-tab: every value of the named
    customer attributes, and every pair of values of two of them ("new customers in East
    China"), is tested against everyone else (the metrics' two-sample test; at least
    `min_n` responses in and outside it), with Benjamini–Hochberg across all tests. A
    difference is reported once: a pair that differs only through one of its values, or a
    value that differs only through a pair inside it, is listed under `explained`. Takes
    the metrics' filters."""
    from feedback_api.insights.segments import attribute_names, segment_report  # numpy

    names = attribute_names(attr)
    return await segment_report(session, kind, metric_query(kind, filters), names, fdr)


@router.get("/insights/priorities", responses=problem_responses(403))
async def priority_matrix(
    session: SessionDep,
    filters: InsightFilters,
    kind: Annotated[MetricKind, Query(description="The score to improve.")] = MetricKind.NPS,
    min_impact: Annotated[
        float | None,
        Query(
            ge=0,
            le=200,
            allow_inf_nan=False,
            description="Points of the metric a cost must reach to be high impact (default "
            "1 % of the metric's span: 2 NPS points, 1 CSAT point, 0.06 on CES).",
        ),
    ] = None,
    low_effort_days: Annotated[
        float,
        Query(
            gt=0,
            le=100_000,
            allow_inf_nan=False,
            description="An action's effort estimate counts as low up to this many person-days.",
        ),
    ] = 10.0,
) -> PriorityReport:
    """Where to act first: every theme and touchpoint with its impact on the metric (from
    the drivers: effect × share, with its bootstrap interval), high when it is a certain
    cost of at least `min_impact` points, against the effort to fix it (a linked
    improvement action's estimate, `effort_days` of `/v1/actions` scoped to the theme or
    touchpoint), in the quadrants quick wins, major projects, fill-ins and not now. Without
    an estimate the effort is unknown and the item unplaced; the largest costs come first
    either way. Takes the metrics' filters."""
    query = metric_query(kind, filters)
    return await priorities(session, kind, query, min_impact, low_effort_days=low_effort_days)
