from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response, StreamingResponse

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep, SettingsDep
from feedback_api.idempotency.dependencies import IdempotencyKeyHeader, run_idempotent
from feedback_api.keys.dependencies import BEARER_SECURITY, Work, require, unit_of_work
from feedback_api.kit.params import Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.kit.types import Text, Timestamp
from feedback_api.responses.schemas import (
    EXPORT_MEDIA_TYPES,
    MAX_TAG_LENGTH,
    SCALE_LIMIT,
    BatchRequest,
    BatchResult,
    Channel,
    Client,
    ExportFormat,
    Kind,
    ReplyRead,
    ReplyWrite,
    ResponseCreate,
    ResponseFilters,
    ResponseRead,
    ResponseUpdate,
)
from feedback_api.responses.service import response as response_service

router = APIRouter(prefix="/v1/responses", tags=["responses"])

ShortFilter = Annotated[str, Text(max_length=100)] | None
RefFilter = Annotated[str, Text(max_length=255)] | None
TagFilter = Annotated[str, Text(max_length=MAX_TAG_LENGTH)] | None
ScoreFilter = Annotated[int | None, Query(ge=-SCALE_LIMIT, le=SCALE_LIMIT)]

ResponsesWrite = Annotated[AuthContext, Depends(require(Scope.RESPONSES_WRITE))]
ResponsesRead = Annotated[AuthContext, Depends(require(Scope.RESPONSES_READ))]
# A publishable key used from a web page must list the page's origin (cors.py, checked
# in `require` before anything else).
RatingsSubmit = Annotated[
    AuthContext, Depends(require(Scope.RESPONSES_WRITE, allow_publishable=True))
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ResponseRead,
    responses={
        200: {
            "model": ResponseRead,
            "description": "Already stored: same `external_id` and "
            "content. The original is returned.",
        },
        **problem_responses(403, 409, body=True),
    },
    openapi_extra=BEARER_SECURITY,
)
async def create_response(
    body: ResponseCreate,
    request: Request,
    work: Annotated[
        Work,
        Depends(unit_of_work(Scope.RESPONSES_WRITE, allow_publishable=True), scope="function"),
    ],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Submit one piece of feedback.

    Works with a secret key (`responses:write`) or a publishable key. A publishable key may
    only use channel `app` or `web` and may not set `customer`, `agent_ref`, `location_ref`,
    `external_id` or `occurred_at`.

    Safe to retry: send `external_id` (your id for the feedback) and/or an
    `Idempotency-Key` header. Stored before the answer is sent."""
    session, auth, settings = work.session, work.auth, work.settings

    async def handler() -> tuple[int, ResponseRead]:
        # Public submissions (publishable keys) carry the client's IP and user agent, hashed
        # for duplicate and burst detection; a server's own address would tell nothing.
        client = (
            Client(
                request.client.host if request.client else None, request.headers.get("user-agent")
            )
            if auth.is_publishable
            else None
        )
        read, created = await response_service.create(
            session,
            auth,
            body,
            timedelta(seconds=settings.clock_skew_seconds),
            client,
            settings=settings,
        )
        return (201 if created else 200), read

    return await run_idempotent(
        session=session,
        auth=auth,
        settings=settings,
        request=request,
        key=idempotency_key,
        payload=body.model_dump(mode="json", exclude_unset=True),
        handler=handler,
    )


@router.post(
    "/batch",
    response_model=BatchResult,
    responses=problem_responses(403, body=True),
)
async def create_responses_batch(
    body: BatchRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    auth: ResponsesWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Submit up to 1,000 responses at once, e.g. a history import.

    Each item is validated on its own and gets its own result (`index`, `status`, `id` or
    `error`). Valid items are stored even when others fail, all in one transaction. Items
    with an `external_id` seen before answer 200 (same content) or 409 (different)."""

    async def handler() -> tuple[int, BatchResult]:
        result = await response_service.create_batch(
            session, auth, body.items, timedelta(seconds=settings.clock_skew_seconds)
        )
        return 200, result

    return await run_idempotent(
        session=session,
        auth=auth,
        settings=settings,
        request=request,
        key=idempotency_key,
        payload=body.model_dump(mode="json"),
        handler=handler,
    )


def response_filters(
    kind: Kind | None = None,
    channel: Channel | None = None,
    touchpoint: Annotated[ShortFilter, Query()] = None,
    survey: Annotated[ShortFilter, Query()] = None,
    customer: Annotated[RefFilter, Query(description="External ref.")] = None,
    tag: Annotated[TagFilter, Query()] = None,
    score_min: ScoreFilter = None,
    score_max: ScoreFilter = None,
    occurred_from: Annotated[
        Timestamp | None,
        Query(alias="from", description="Inclusive, on `occurred_at` (RFC 3339 with offset)."),
    ] = None,
    occurred_to: Annotated[
        Timestamp | None,
        Query(alias="to", description="Exclusive, on `occurred_at` (RFC 3339 with offset)."),
    ] = None,
    has_comment: bool | None = None,
) -> ResponseFilters:
    return ResponseFilters(
        kind=kind.value if kind else None,
        channel=channel.value if channel else None,
        touchpoint=touchpoint,
        survey=survey,
        customer=customer,
        tag=tag.strip().lower() if tag else None,
        score_min=score_min,
        score_max=score_max,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        has_comment=has_comment,
    )


FiltersDep = Annotated[ResponseFilters, Depends(response_filters)]


@router.get("", responses=problem_responses(403))
async def list_responses(
    session: SessionDep,
    auth: ResponsesRead,
    filters: FiltersDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ResponseRead]:
    """List responses, most recent `occurred_at` first, with filters."""
    after = parse_cursor(cursor, datetime, UUID)
    items, next_cursor = await response_service.list_page(
        session, auth.tenant_id, filters, limit=limit, after=after
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One response per line (NDJSON) or per row (CSV), oldest first.",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        },
        **problem_responses(403),
    },
)
async def export_responses(
    request: Request,
    auth: ResponsesRead,
    filters: FiltersDep,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.NDJSON,
) -> StreamingResponse:
    """Every response matching the filters (those of `GET /v1/responses`), streamed oldest
    first for BI tools and warehouses. Memory stays flat at any size: rows are read in
    pages of 1,000, each in its own short transaction, so a long export holds no snapshot
    open; responses written meanwhile may or may not appear. CSV text cells that start
    with `=`, `+`, `-`, `@` get a leading `'` so spreadsheets do not run them as formulas."""
    sessionmaker = request.app.state.sessionmaker
    body = response_service.export(sessionmaker, auth.tenant_id, filters, export_format)
    extension = export_format.value
    return StreamingResponse(
        body,
        media_type=EXPORT_MEDIA_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="responses.{extension}"'},
    )


@router.get("/{response_id:uuid}", responses=problem_responses(403, 404))
async def get_response(response_id: UUID, session: SessionDep, auth: ResponsesRead) -> ResponseRead:
    """One response by id."""
    return await response_service.get(session, auth.tenant_id, response_id)


@router.patch("/{response_id:uuid}", responses=problem_responses(403, 404, body=True))
async def update_response(
    response_id: UUID, body: ResponseUpdate, session: SessionDep, auth: ResponsesWrite
) -> ResponseRead:
    """Change a response's `tags` or `attributes` (each replaced as a whole when sent).

    Scores and comments are what the customer said, so they cannot be edited."""
    return await response_service.update(session, auth.tenant_id, response_id, body.changes())


@router.post(
    "/{response_id:uuid}/reply",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ReplyRead, "description": "The reply was edited."},
        **problem_responses(403, 404, body=True),
    },
)
async def reply_to_response(
    response_id: UUID,
    body: ReplyWrite,
    response: Response,
    session: SessionDep,
    auth: ResponsesWrite,
) -> ReplyRead:
    """Write the public reply to a response (201), or replace it (200, `version` + 1): one
    per response. It is shown beside the review in the public feed when the customer
    allowed publication. Every write is audited (version and key; not the text) and sends
    `response.replied`. Erasing the customer deletes it with their comment."""
    reply, created = await response_service.reply(session, auth, response_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return reply


@router.get("/{response_id:uuid}/reply", responses=problem_responses(403, 404))
async def get_reply(response_id: UUID, session: SessionDep, auth: ResponsesRead) -> ReplyRead:
    """The response's public reply; 404 when it has none."""
    return await response_service.get_reply(session, auth.tenant_id, response_id)
