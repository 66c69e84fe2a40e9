from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response, status

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep, SettingsDep
from feedback_api.invitations.schemas import (
    SURVEY_KEY_MAX,
    SURVEY_KEY_PATTERN,
    ContactRulesRead,
    ContactRulesUpdate,
    DeliveryReport,
    Eligibility,
    FunnelStats,
    InvitationBatch,
    InvitationBatchResult,
    InvitationChannel,
    InvitationCreate,
    InvitationFilters,
    InvitationRead,
    RotateRequest,
    SigningKeyRead,
    StatsBy,
    Status,
    SurveyCreate,
    SurveyRead,
    SurveyUpdate,
    Unsubscribed,
    UnsubscribeRequest,
)
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.keys.dependencies import require
from feedback_api.kit.params import PERIOD_HELP, Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.kit.types import Bound, ExternalRef, Text

router = APIRouter(prefix="/v1", tags=["invitations"])

InvitationsRead = Annotated[AuthContext, Depends(require(Scope.INVITATIONS_READ))]
InvitationsWrite = Annotated[AuthContext, Depends(require(Scope.INVITATIONS_WRITE))]
CustomersWrite = Annotated[AuthContext, Depends(require(Scope.CUSTOMERS_WRITE))]
KeysManage = Annotated[AuthContext, Depends(require(Scope.KEYS_MANAGE))]
SurveyKeyText = Annotated[
    str, Text(min_length=1, max_length=SURVEY_KEY_MAX, pattern=SURVEY_KEY_PATTERN)
]
SurveyKeyPath = Annotated[SurveyKeyText, Path(description="The survey's key.")]
RefText = Annotated[str, Text(min_length=1, max_length=255)]


# --- surveys ------------------------------------------------------------------------------


@router.post(
    "/surveys",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409, body=True),
)
async def create_survey(
    body: SurveyCreate, session: SessionDep, auth: InvitationsWrite
) -> SurveyRead:
    """Define what to ask and when: the question per language, the scale, the delay after
    the trigger, how long links stay open, reminders and the survey's cooldown. A key that
    exists is a 409 `survey_key_taken`."""
    return await invitation_service.create_survey(session, auth.tenant_id, body)


@router.get("/surveys", responses=problem_responses(403))
async def list_surveys(
    session: SessionDep, auth: InvitationsRead, limit: Limit = 50, cursor: Cursor = None
) -> Page[SurveyRead]:
    """Surveys by key."""
    after = parse_cursor(cursor, str)
    items, next_cursor = await invitation_service.list_surveys(
        session,
        auth.tenant_id,
        limit=limit,
        after=after,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/surveys/{key}", responses=problem_responses(403, 404))
async def get_survey(key: SurveyKeyPath, session: SessionDep, auth: InvitationsRead) -> SurveyRead:
    """One survey."""
    return await invitation_service.get_survey(session, auth.tenant_id, key)


@router.patch("/surveys/{key}", responses=problem_responses(403, 404, body=True))
async def update_survey(
    key: SurveyKeyPath, body: SurveyUpdate, session: SessionDep, auth: InvitationsWrite
) -> SurveyRead:
    """Change texts and timing. Invitations already scheduled keep their due and expiry
    times; `active: false` stops new ones and suppresses those not yet sent
    (`survey_inactive`). Kind and scale cannot change: answers must stay comparable."""
    return await invitation_service.update_survey(session, auth.tenant_id, key, body)


# --- contact rules ------------------------------------------------------------------------


@router.get("/contact-rules", responses=problem_responses(403))
async def get_contact_rules(session: SessionDep, auth: InvitationsRead) -> ContactRulesRead:
    """How often and when customers may be asked (defaults: once per 30 days, quiet hours
    21:00–09:00 local, one reminder at most)."""
    return await invitation_service.get_rules(session, auth.tenant_id)


@router.patch("/contact-rules", responses=problem_responses(403, body=True))
async def update_contact_rules(
    body: ContactRulesUpdate, session: SessionDep, auth: InvitationsWrite
) -> ContactRulesRead:
    """Change the rules; they apply to invitations scheduled from now on."""
    return await invitation_service.update_rules(session, auth.tenant_id, body)


# --- invitations --------------------------------------------------------------------------

CREATED_OR_REPLAYED: dict[int | str, dict[str, Any]] = {
    200: {
        "model": InvitationRead,
        "description": "Already asked: this survey and `trigger_ref` were sent before; the "
        "first invitation is returned.",
    },
}


@router.post(
    "/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationRead,
    responses={**CREATED_OR_REPLAYED, **problem_responses(403, body=True)},
)
async def create_invitation(
    body: InvitationCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    auth: InvitationsWrite,
) -> InvitationRead:
    """Ask a customer to answer a survey, e.g. when your CRM sees “order delivered”.

    The answer is 201 with `status: scheduled` (and `due_at`, after the delay and quiet
    hours) or `status: suppressed` with the `suppression_reason`: `frequency`, `cooldown`,
    `quiet_hours_limit`, `unsubscribed`, `channel_opted_out`, `bounced`, `erased` or
    `survey_inactive`. At the due time the worker emits `invitation.due` with the message
    to send. Send `trigger_ref` (e.g. the order id) and retries are safe."""
    read, created = await invitation_service.schedule(
        session, auth.tenant_id, body, settings=settings
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return read


@router.post("/invitations/batch", responses=problem_responses(403, body=True))
async def create_invitations(
    body: InvitationBatch, session: SessionDep, settings: SettingsDep, auth: InvitationsWrite
) -> InvitationBatchResult:
    """Up to 1,000 invitations (a CRM import), each judged on its own as for
    `POST /v1/invitations`: 201 new (scheduled or suppressed), 200 already asked, 422 invalid.
    Two items for one customer: the first in the list is scheduled, the second meets the
    frequency rule."""
    return await invitation_service.schedule_batch(
        session, auth.tenant_id, body.items, settings=settings
    )


@router.get("/invitations", responses=problem_responses(403))
async def list_invitations(
    session: SessionDep,
    settings: SettingsDep,
    auth: InvitationsRead,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    survey: Annotated[SurveyKeyText | None, Query(description="The survey's key.")] = None,
    channel: InvitationChannel | None = None,
    customer: Annotated[ExternalRef | None, Query(description="External ref.")] = None,
    trigger_ref: Annotated[RefText | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[InvitationRead]:
    """Invitations, newest first."""
    after = parse_cursor(cursor, datetime, UUID)
    filters = InvitationFilters(
        status=status_.value if status_ else None,
        survey=survey,
        channel=channel.value if channel else None,
        customer=customer,
        trigger_ref=trigger_ref,
    )
    items, next_cursor = await invitation_service.list_page(
        session,
        auth.tenant_id,
        filters,
        limit=limit,
        after=after,
        settings=settings,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/invitations/stats", responses=problem_responses(403))
async def invitation_stats(
    session: SessionDep,
    auth: InvitationsRead,
    start: Annotated[
        Bound | None, Query(alias="from", description=f"Created from, inclusive. {PERIOD_HELP}")
    ] = None,
    end: Annotated[
        Bound | None,
        Query(alias="to", description="Created before, exclusive. Default: the last 30 days."),
    ] = None,
    by: Annotated[StatsBy | None, Query(description="Group by survey or channel.")] = None,
) -> FunnelStats:
    """The funnel over invitations created in the period: asked, scheduled, suppressed (by
    reason), sent, delivered, bounced, responded, the response rate (responded / sent) and
    the median minutes from sending to the first answer."""
    return await invitation_service.funnel(
        session, auth.tenant_id, start, end, by.value if by else None
    )


@router.get("/invitations/{invitation_id:uuid}", responses=problem_responses(403, 404))
async def get_invitation(
    invitation_id: UUID, session: SessionDep, settings: SettingsDep, auth: InvitationsRead
) -> InvitationRead:
    """One invitation, with its links while it can be answered."""
    return await invitation_service.get(session, auth.tenant_id, invitation_id, settings=settings)


@router.delete(
    "/invitations/{invitation_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
)
async def cancel_invitation(
    invitation_id: UUID, session: SessionDep, auth: InvitationsWrite
) -> None:
    """Cancel a scheduled invitation (e.g. the order was returned). One already sent is a
    409 `invitation_not_pending`: its links stay valid until they expire."""
    await invitation_service.cancel(session, auth.tenant_id, invitation_id)


@router.post(
    "/invitations/{invitation_id:uuid}/delivery",
    responses=problem_responses(403, 404, 409, body=True),
)
async def report_delivery(
    invitation_id: UUID,
    body: DeliveryReport,
    session: SessionDep,
    settings: SettingsDep,
    auth: InvitationsWrite,
) -> InvitationRead:
    """What your messaging system saw: `delivered`, `bounced` or `failed`. A bounce stops
    reminders and blocks that channel for the customer. Before `invitation.due` it is a 409
    `invitation_not_sent`."""
    return await invitation_service.report_delivery(
        session, auth.tenant_id, invitation_id, body.status, settings=settings
    )


# --- customers ----------------------------------------------------------------------------


@router.get("/customers/{external_ref}/eligibility", responses=problem_responses(403, 404))
async def eligibility(
    external_ref: ExternalRef,
    session: SessionDep,
    auth: InvitationsRead,
    survey: Annotated[
        SurveyKeyText | None, Query(description="Also check this survey's cooldown.")
    ] = None,
    channel: Annotated[
        InvitationChannel | None,
        Query(
            description="Default: the survey's channel. Quiet hours apply to email, SMS, WeChat."
        ),
    ] = None,
) -> Eligibility:
    """May this customer be asked now? For apps deciding whether to show an in-app rating
    prompt (ask from your backend: it names a customer). Nothing is recorded by asking; to
    count the prompt, create an invitation with `channel: app` and hand its token to the
    app."""
    return await invitation_service.eligibility(
        session, auth.tenant_id, external_ref, survey_key=survey, channel=channel
    )


@router.post("/customers/{external_ref}/unsubscribe", responses=problem_responses(403, body=True))
async def unsubscribe(
    external_ref: ExternalRef,
    session: SessionDep,
    auth: CustomersWrite,
    body: UnsubscribeRequest | None = None,
) -> Unsubscribed:
    """Stop inviting this customer (on one channel, or at all): scheduled invitations are
    cancelled, reminders stop, and `customer.unsubscribed` is emitted. Works for refs we
    have not seen, so forward every opt-out. Idempotent."""
    channel = body.channel if body else None
    return await invitation_service.unsubscribe(session, auth.tenant_id, external_ref, channel)


@router.delete(
    "/customers/{external_ref}/unsubscribe",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403),
)
async def resubscribe(
    external_ref: ExternalRef,
    session: SessionDep,
    auth: CustomersWrite,
    channel: Annotated[InvitationChannel | None, Query(description="Default: every block.")] = None,
) -> None:
    """Lift opt-outs and bounce blocks (e.g. the customer opted in again, or fixed their
    address). Only with the person's consent."""
    await invitation_service.resubscribe(session, auth.tenant_id, external_ref, channel)


# --- signing keys -------------------------------------------------------------------------


@router.get("/signing-keys", responses=problem_responses(403))
async def list_signing_keys(session: SessionDep, auth: KeysManage) -> list[SigningKeyRead]:
    """The keys that sign one-tap links (never the secrets)."""
    return await invitation_service.signing_keys(session, auth.tenant_id)


@router.post("/signing-keys/rotate", responses=problem_responses(403, body=True))
async def rotate_signing_key(
    session: SessionDep, auth: KeysManage, body: RotateRequest | None = None
) -> list[SigningKeyRead]:
    """Sign new links with a fresh key. Links signed with the older keys keep working for
    `grace_hours` (default 14 days: longer than links usually live); after a leak, rotate
    with 0 and every older link stops at once."""
    grace = timedelta(hours=(body or RotateRequest()).grace_hours)
    return await invitation_service.rotate(session, auth.tenant_id, grace)
