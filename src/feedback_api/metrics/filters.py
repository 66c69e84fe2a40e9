"""The metric filters every report on responses takes (`from`, `to`, channel, touchpoint,
survey, tag, agent, location, language, verified, integrity, confidence, scale and
`attr.<name>=<value>`), as one FastAPI dependency: the metrics endpoints and the other
reports over the same responses read them the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query, Request
from pydantic_core import PydanticCustomError

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.exceptions import InvalidRequest
from feedback_api.keys.dependencies import require
from feedback_api.kit.params import PERIOD_HELP
from feedback_api.kit.types import Bound, Text, check_storable
from feedback_api.metrics.schemas import Integrity, MetricKind
from feedback_api.metrics.selection import Selection
from feedback_api.metrics.service import MetricQuery, scale_for
from feedback_api.responses.schemas import Channel

MetricsRead = Annotated[AuthContext, Depends(require(Scope.METRICS_READ))]
NIL = UUID(int=0)

ATTR_PREFIX = "attr."
ATTR_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")
MAX_ATTR_VALUE = 255
MAX_ATTR_FILTERS = 5

# Exact-match text filters, as long as the field they match may be.
ShortFilter = Annotated[str, Text(max_length=100)]
TagFilter = Annotated[str, Text(max_length=64)]
RefFilter = Annotated[str, Text(max_length=255)]
LanguageFilter = Annotated[str, Text(max_length=35)]


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters of one request, bound to the caller's tenant and powers."""

    start: Bound | None
    end: Bound | None
    selection: Selection
    integrity: Integrity
    confidence: float
    scale_min: int | None
    scale_max: int | None
    small_cells: bool


@dataclass(frozen=True, slots=True)
class FilterParams:
    """The filters as the query string gives them, before they are bound to a caller (the
    endpoint's own scope dependency authenticates it)."""

    filters: Filters  # for the nil tenant, without small cells

    def of(self, auth: AuthContext) -> Filters:
        return replace(
            self.filters,
            selection=replace(self.filters.selection, tenant_id=auth.tenant_id),
            small_cells=Scope.METRICS_SMALL_CELLS.value in auth.scopes,
        )


def _attributes(request: Request) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for name, value in request.query_params.multi_items():
        if not name.startswith(ATTR_PREFIX):
            continue
        attr = name[len(ATTR_PREFIX) :]
        if not ATTR_NAME.fullmatch(attr) or len(value) > MAX_ATTR_VALUE:
            raise InvalidRequest.at(
                ("query", name),
                "attribute_filter",
                "attr.<name>=<value>: name of letters, digits and _.:-, "
                f"up to 64; value up to {MAX_ATTR_VALUE} characters",
                detail=f"`{name}` is not a valid attribute filter",
            )
        try:
            check_storable(value)
        except PydanticCustomError as exc:
            raise InvalidRequest.at(
                ("query", name), exc.type, exc.message(), detail=f"`{name}`: {exc.message()}"
            ) from None
        found.append((attr, value))
    if len(found) > MAX_ATTR_FILTERS:
        raise InvalidRequest.at(
            ("query", f"{ATTR_PREFIX}{found[MAX_ATTR_FILTERS][0]}"),
            "too_many_attribute_filters",
            f"at most {MAX_ATTR_FILTERS} attr.<name> filters",
        )
    return tuple(found)


def filter_params(
    request: Request,
    start: Annotated[
        Bound | None,
        Query(
            alias="from",
            description=f"Start, inclusive. {PERIOD_HELP} Default: 30 days before `to`.",
        ),
    ] = None,
    end: Annotated[
        Bound | None,
        Query(
            alias="to",
            description=f"End, exclusive. {PERIOD_HELP} Default: the end of "
            "today, so the default period is the last 30 days including today.",
        ),
    ] = None,
    channel: Channel | None = None,
    touchpoint: Annotated[ShortFilter | None, Query()] = None,
    survey: Annotated[ShortFilter | None, Query()] = None,
    tag: Annotated[TagFilter | None, Query()] = None,
    agent_ref: Annotated[RefFilter | None, Query()] = None,
    location_ref: Annotated[RefFilter | None, Query()] = None,
    language: Annotated[LanguageFilter | None, Query()] = None,
    verified: Annotated[
        bool, Query(description="Only responses verified by a signed invitation.")
    ] = False,
    integrity: Annotated[
        Integrity,
        Query(
            description="`valid` (default) counts only responses not excluded by an "
            "integrity decision; `all` counts them too."
        ),
    ] = Integrity.VALID,
    confidence: Annotated[
        float, Query(ge=0.5, le=0.999, description="Confidence level of the intervals.")
    ] = 0.95,
    scale_min: Annotated[
        int | None, Query(ge=-1000, le=1000, description="Rating metrics only: the scale.")
    ] = None,
    scale_max: Annotated[int | None, Query(ge=-1000, le=1000)] = None,
) -> FilterParams:
    """Also accepts `attr.<name>=<value>` (repeatable): the customer's attribute, as text."""
    filters = Filters(
        start=start,
        end=end,
        selection=Selection(
            tenant_id=NIL,
            kind="",
            scale_min=0,  # set per kind by _query
            scale_max=0,
            channel=channel.value if channel else None,
            touchpoint=touchpoint,
            survey=survey,
            tag=tag.strip().lower() if tag else None,
            agent_ref=agent_ref,
            location_ref=location_ref,
            language=language,
            attributes=_attributes(request),
            verified_only=verified,
        ),
        integrity=integrity,
        confidence=confidence,
        scale_min=scale_min,
        scale_max=scale_max,
        small_cells=False,
    )
    return FilterParams(filters)


FilterParamsDep = Annotated[FilterParams, Depends(filter_params)]


def metric_filters(params: FilterParamsDep, auth: MetricsRead) -> Filters:
    return params.of(auth)


FiltersDep = Annotated[Filters, Depends(metric_filters)]


def metric_query(kind: MetricKind, filters: Filters) -> MetricQuery:
    low, high = scale_for(kind, filters.scale_min, filters.scale_max)
    return MetricQuery(
        selection=replace(filters.selection, kind=kind.value, scale_min=low, scale_max=high),
        start=filters.start,
        end=filters.end,
        integrity=filters.integrity,
        confidence=filters.confidence,
        small_cells=filters.small_cells,
    )
