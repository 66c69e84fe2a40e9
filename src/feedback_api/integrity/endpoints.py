from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, status

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep
from feedback_api.integrity.schemas import (
    FlagDecisionBody,
    FlagDetail,
    FlagRead,
    FlagStatus,
    FlagType,
    ManualFlagCreate,
    Report,
    ScreenFailure,
    ScreenRetried,
    ScreenRetry,
    SettingsRead,
    SettingsUpdate,
    SubjectType,
)
from feedback_api.integrity.service import integrity as integrity_service
from feedback_api.keys.dependencies import require
from feedback_api.kit.params import PERIOD_HELP, Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.kit.types import Bound, Text
from feedback_api.metrics.service import metric as metric_service

router = APIRouter(prefix="/v1/integrity", tags=["integrity"])

IntegrityRead = Annotated[AuthContext, Depends(require(Scope.INTEGRITY_READ))]
IntegrityWrite = Annotated[AuthContext, Depends(require(Scope.INTEGRITY_WRITE))]


@router.get("/flags", responses=problem_responses(403))
async def list_flags(
    session: SessionDep,
    auth: IntegrityRead,
    flag_status: Annotated[FlagStatus | None, Query(alias="status")] = None,
    flag_type: Annotated[FlagType | None, Query(alias="type")] = None,
    subject_type: SubjectType | None = None,
    subject_ref: Annotated[
        Annotated[str, Text(max_length=255)] | None,
        Query(description="Exact match, e.g. an agent ref or `ip:<hash>`."),
    ] = None,
    response_id: Annotated[UUID | None, Query(description="Flags linking this response.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[FlagRead]:
    """The review queue, newest first. `status=open` is what waits for a person."""
    items, next_cursor = await integrity_service.page(
        session,
        auth.tenant_id,
        filters={
            "status": flag_status.value if flag_status else None,
            "type_": flag_type.value if flag_type else None,
            "subject_type": subject_type.value if subject_type else None,
            "subject_ref": subject_ref,
            "response_id": response_id,
        },
        after=parse_cursor(cursor, datetime, UUID),
        limit=limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/flags",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, body=True),
)
async def create_flag(
    body: ManualFlagCreate, session: SessionDep, auth: IntegrityWrite
) -> FlagDetail:
    """Flag responses by hand (type `manual`), with a reason. The flag is confirmed at
    once, so they leave the metrics; dismiss it to count them again. This is the only way
    to keep a response out of the numbers: responses are never deleted, except by the
    customer's own erasure request."""
    return await integrity_service.create_manual(
        session, auth.tenant_id, body.response_ids, body.reason, actor_key_id=auth.key_id
    )


@router.get("/flags/{flag_id:uuid}", responses=problem_responses(403, 404))
async def get_flag(flag_id: UUID, session: SessionDep, auth: IntegrityRead) -> FlagDetail:
    """One flag with its evidence, the responses it links and every decision on it."""
    return await integrity_service.get(session, auth.tenant_id, flag_id)


@router.post("/flags/{flag_id:uuid}/confirm", responses=problem_responses(403, 404, body=True))
async def confirm_flag(
    flag_id: UUID, body: FlagDecisionBody, session: SessionDep, auth: IntegrityWrite
) -> FlagDetail:
    """The finding is right: its responses stay out of the metrics whatever its strength."""
    return await integrity_service.decide(
        session,
        auth.tenant_id,
        flag_id,
        FlagStatus.CONFIRMED,
        body.reason,
        actor_key_id=auth.key_id,
    )


@router.post("/flags/{flag_id:uuid}/dismiss", responses=problem_responses(403, 404, body=True))
async def dismiss_flag(
    flag_id: UUID, body: FlagDecisionBody, session: SessionDep, auth: IntegrityWrite
) -> FlagDetail:
    """The finding is wrong: its responses count again (unless another flag excludes
    them), and the detector will not pull them into a flag of this type again."""
    return await integrity_service.decide(
        session,
        auth.tenant_id,
        flag_id,
        FlagStatus.DISMISSED,
        body.reason,
        actor_key_id=auth.key_id,
    )


@router.get("/screen-failures", responses=problem_responses(403))
async def list_screen_failures(
    session: SessionDep, auth: IntegrityRead, cursor: Cursor = None, limit: Limit = 50
) -> Page[ScreenFailure]:
    """Responses the screen set aside because screening them failed, newest first. The rest
    of their batch was screened; these wait, unscreened by the detectors, until they are
    retried (after an upgrade that fixes the cause, say). Normally empty."""
    items, next_cursor = await integrity_service.screen_failures(
        session, auth.tenant_id, limit=limit, after=parse_cursor(cursor, datetime, UUID)
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post("/screen-failures/retry", responses=problem_responses(403, body=True))
async def retry_screen_failures(
    body: ScreenRetry, session: SessionDep, auth: IntegrityWrite
) -> ScreenRetried:
    """Queue set-aside responses (those listed, or all) for the screen again. One that
    fails again is set aside again."""
    queued = await integrity_service.retry_screen(session, auth.tenant_id, body.response_ids)
    return ScreenRetried(queued=queued)


@router.get("/settings", responses=problem_responses(403))
async def get_settings(session: SessionDep, auth: IntegrityRead) -> SettingsRead:
    """The exclusion threshold, rewards and every detector parameter in effect."""
    return await integrity_service.settings(session, auth.tenant_id)


@router.patch("/settings", responses=problem_responses(403, body=True))
async def update_settings(
    body: SettingsUpdate, session: SessionDep, auth: IntegrityWrite
) -> SettingsRead:
    """Change any of them. A new `exclude_threshold` applies to existing flags at once."""
    return await integrity_service.update_settings(
        session, auth.tenant_id, body.changes(), actor_key_id=auth.key_id
    )


@router.get("/report", responses=problem_responses(403))
async def integrity_report(
    session: SessionDep,
    auth: IntegrityRead,
    start: Annotated[
        Bound | None, Query(alias="from", description=f"Start, inclusive. {PERIOD_HELP}")
    ] = None,
    end: Annotated[Bound | None, Query(alias="to", description="End, exclusive.")] = None,
) -> Report:
    """How trustworthy the period's data is: the verified share, flags by type and
    status, exclusions, locations and agents significantly more positive than their peers
    (with n, p- and q-values), the in-person NPS uplift, and a weekly trend. Default
    period: the last 30 days."""
    lo, hi, period = await metric_service.period(session, auth.tenant_id, start, end)
    return await integrity_service.report(session, auth.tenant_id, lo, hi, period)
