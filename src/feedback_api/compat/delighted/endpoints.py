"""`/compat/delighted/v1/…`: Delighted's API on our customers, invitations, responses and
metrics (docs/delighted.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Depends, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import EmailStr

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.compat.delighted import autopilot, people
from feedback_api.compat.delighted import responses as survey_responses
from feedback_api.compat.delighted.routing import DelightedRoute, DelightedRouter, delighted_key
from feedback_api.compat.delighted.schemas import (
    AutopilotConfiguration,
    Bounce,
    MemberIdentifier,
    Membership,
    MembershipCreate,
    MembershipCreated,
    MembershipRemoved,
    Metrics,
    Person,
    PersonCreate,
    PersonCreated,
    Platform,
    SurveyResponse,
    SurveyResponseCreate,
    SurveyResponseUpdate,
    Unsubscribe,
    UnsubscribeCreate,
)
from feedback_api.db import SessionDep, SettingsDep
from feedback_api.kit.pagination import encode_cursor
from feedback_api.kit.params import Cursor, parse_cursor
from feedback_api.kit.types import PhoneNumber, Text

router = DelightedRouter(
    prefix="/compat/delighted/v1", tags=["delighted compatibility"], route_class=DelightedRoute
)

PeopleWrite = Annotated[
    AuthContext, Depends(delighted_key(Scope.CUSTOMERS_WRITE, Scope.INVITATIONS_WRITE))
]
PeopleRead = Annotated[AuthContext, Depends(delighted_key(Scope.CUSTOMERS_READ))]
PeopleErase = Annotated[AuthContext, Depends(delighted_key(Scope.CUSTOMERS_WRITE))]
PerPage = Annotated[int, Query(ge=1, le=100, description="Default 20, at most 100.")]
PageNumber = Annotated[
    int, Query(ge=1, le=100_000, description="From 1; a short page is the last.")
]
Since = Annotated[int | None, Query(ge=0, le=32_503_680_000, description="Unix seconds.")]
Identifier = Annotated[str, Text(min_length=1, max_length=400)]


@router.both("POST", "/people", status_code=status.HTTP_200_OK, response_model=PersonCreated)
async def create_person(
    body: PersonCreate, session: SessionDep, settings: SettingsDep, auth: PeopleWrite
) -> PersonCreated:
    """Create or update a person (by `email`, else `phone_number`) and, unless `send` is
    false, schedule the `delighted` survey to them after `delay` seconds on `channel`,
    under the tenant's contact rules (`survey_scheduled_at` is null when they held it back)."""
    return await people.create_or_update(session, auth, body, settings)


@router.both("GET", "/people", response_model=list[Person])
async def list_people(
    request: Request,
    session: SessionDep,
    auth: PeopleRead,
    per_page: PerPage = 20,
    since: Since = None,
    until: Since = None,
    email: Annotated[str | None, Text(max_length=320)] = None,
    phone_number: Annotated[str | None, Text(max_length=20)] = None,
    page_info: Cursor = None,
) -> JSONResponse:
    """People oldest first; the next page's absolute URL is in `Link: <…>; rel="next"`,
    absent on the last page."""
    after = parse_cursor(page_info, datetime, UUID)
    items, last = await people.page(
        session,
        auth.tenant_id,
        since=since,
        until=until,
        email=email,
        phone=phone_number,
        after=(after[0], after[1]) if after else None,
        per_page=per_page,
    )
    return _linked(request, [p.model_dump() for p in items], last)


def _linked(request: Request, items: list[Any], last: tuple[datetime, UUID] | None) -> JSONResponse:
    """A page, with the next page's absolute URL in `Link: <…>; rel="next"` unless last."""
    headers = {}
    if last is not None:
        following = request.url.remove_query_params("page_info").include_query_params(
            page_info=encode_cursor(*last)
        )
        headers["Link"] = f'<{following}>; rel="next"'
    return JSONResponse(items, headers=headers)


@router.both(
    "DELETE", "/people/{email:path}/survey_requests/pending", status_code=status.HTTP_202_ACCEPTED
)
async def delete_pending_survey_requests(
    email: Identifier, session: SessionDep, settings: SettingsDep, auth: PeopleWrite
) -> dict[str, bool]:
    """Cancel the surveys scheduled for the person and not sent yet (our
    `DELETE /v1/invitations/{id}` for each). Answers 202 `{"ok": true}`."""
    await people.cancel_pending(session, auth.tenant_id, email, settings)
    return {"ok": True}


@router.both("DELETE", "/people/{identifier:path}", status_code=status.HTTP_202_ACCEPTED)
async def delete_person(
    identifier: Identifier, session: SessionDep, auth: PeopleErase
) -> dict[str, bool]:
    """Erase the person (our erasure: docs/concepts.md, Erasure): `{id}`, `email:{address}` or
    `phone_number:{E.164}`, percent-encoded. Answers 202 `{"ok": true}`."""
    await people.erase(session, auth, identifier)
    return {"ok": True}


ResponsesWrite = Annotated[AuthContext, Depends(delighted_key(Scope.RESPONSES_WRITE))]
ResponsesRead = Annotated[AuthContext, Depends(delighted_key(Scope.RESPONSES_READ))]
MetricsRead = Annotated[AuthContext, Depends(delighted_key(Scope.METRICS_READ))]
Group = Literal["core", "email", "kiosk", "link", "sms", "web"]
Expand = Annotated[list[Annotated[str, Text(max_length=20)]] | None, Query(max_length=5)]
Order = Annotated[
    Literal["asc", "desc", "asc:updated_at", "desc:updated_at"],
    Query(description="By creation (default asc) or by last update."),
]


def _expands(*given: Sequence[str] | None) -> set[str]:
    return {value for values in given if values for value in values}


@router.both(
    "POST", "/survey_responses", status_code=status.HTTP_201_CREATED, response_model=SurveyResponse
)
async def create_survey_response(
    body: SurveyResponseCreate, session: SessionDep, settings: SettingsDep, auth: ResponsesWrite
) -> SurveyResponse:
    """Record an NPS answer (0–10) for a person: our `POST /v1/responses` with kind `nps`,
    their customer ref and `person_properties` as the response's attributes."""
    return await survey_responses.create(session, auth, body, settings)


@router.both("GET", "/survey_responses", response_model=list[SurveyResponse])
async def list_survey_responses(
    session: SessionDep,
    auth: ResponsesRead,
    page: PageNumber = 1,
    per_page: PerPage = 20,
    since: Since = None,
    until: Since = None,
    updated_since: Since = None,
    updated_until: Since = None,
    person_id: Annotated[str | None, Text(max_length=64)] = None,
    person_email: Annotated[str | None, Text(max_length=320)] = None,
    order: Order = "asc",
    expand: Expand = None,
    expand_list: Annotated[Expand, Query(alias="expand[]")] = None,
    trend: Annotated[str | None, Text(max_length=64)] = None,
) -> list[SurveyResponse]:
    """NPS responses by page number (`page` from 1, `per_page` up to 100): a page shorter
    than `per_page` is the last. `expand[]=person` gives the person instead of their id.
    `trend` is accepted and ignored (Delighted's trends have no counterpart here)."""
    return await survey_responses.page(
        session,
        auth.tenant_id,
        since=since,
        until=until,
        updated_since=updated_since,
        updated_until=updated_until,
        person_id=person_id,
        person_email=person_email,
        order=order,
        page_number=page,
        per_page=per_page,
        expand_person="person" in _expands(expand, expand_list),
    )


@router.both("GET", "/survey_responses/{response_id}", response_model=SurveyResponse)
async def get_survey_response(
    response_id: Identifier,
    session: SessionDep,
    auth: ResponsesRead,
    expand: Expand = None,
    expand_list: Annotated[Expand, Query(alias="expand[]")] = None,
) -> SurveyResponse:
    """One response; `expand[]=person` gives the person instead of their id."""
    return await survey_responses.get(
        session,
        auth.tenant_id,
        response_id,
        expand_person="person" in _expands(expand, expand_list),
    )


@router.both("PUT", "/survey_responses/{response_id}", response_model=SurveyResponse)
async def update_survey_response(
    response_id: Identifier,
    body: SurveyResponseUpdate,
    session: SessionDep,
    auth: ResponsesWrite,
    expand: Expand = None,
    expand_list: Annotated[Expand, Query(alias="expand[]")] = None,
) -> SurveyResponse:
    """Replace a response's `tags` and `person_properties` (our `PATCH /v1/responses/{id}`).
    `score`, `comment` and `person` may be sent unchanged (the SDK's `save()` sends the
    whole object, `person` expanded); a change to them is a 422, as are `notes`."""
    return await survey_responses.update(
        session,
        auth.tenant_id,
        response_id,
        body,
        expand_person="person" in _expands(expand, expand_list),
    )


@router.both("GET", "/metrics", response_model=Metrics)
async def get_metrics(
    session: SessionDep,
    auth: MetricsRead,
    since: Since = None,
    until: Since = None,
    trend: Annotated[str | None, Text(max_length=64)] = None,
    groups: Annotated[list[Group] | None, Query(max_length=6)] = None,
    groups_list: Annotated[list[Group] | None, Query(alias="groups[]", max_length=6)] = None,
) -> Metrics:
    """NPS over `since`–`until` (default: the last 30 days, as Delighted's): integer `nps`,
    the counts and whole-number percentages of promoters, passives and detractors. Valid
    responses only, as `GET /v1/metrics/nps` counts them. `groups[]` keeps the responses
    of those survey groups, mapped onto our channels: `core` crm, import and other; `email`;
    `kiosk` in_person and phone; `link` qr and wechat; `sms`; `web` web and app."""
    return await survey_responses.metrics(
        session,
        auth.tenant_id,
        since=since,
        until=until,
        groups=_expands(groups, groups_list),
    )


@router.both("POST", "/unsubscribes", status_code=status.HTTP_200_OK)
async def create_unsubscribe(
    body: UnsubscribeCreate, session: SessionDep, auth: PeopleWrite
) -> dict[str, bool]:
    """Opt `person_email` out of every survey (our `POST /v1/customers/{ref}/unsubscribe`
    without a channel; scheduled invitations are cancelled). Answers `{"ok": true}`."""
    await people.unsubscribe(session, auth.tenant_id, str(body.person_email))
    return {"ok": True}


@router.both("GET", "/unsubscribes", response_model=list[Unsubscribe])
async def list_unsubscribes(
    session: SessionDep,
    auth: PeopleRead,
    page: PageNumber = 1,
    per_page: PerPage = 20,
    since: Since = None,
    until: Since = None,
) -> list[Unsubscribe]:
    """People who opted out of e-mail surveys (of every channel, or of e-mail), by when,
    oldest first, whichever way they did; `since`/`until` bound `unsubscribed_at`. Opt-outs
    of addresses we have no person for are kept as a keyed hash only and not listed."""
    return await people.unsubscribes(session, auth.tenant_id, (since, until), page, per_page)


@router.both("GET", "/bounces", response_model=list[Bounce])
async def list_bounces(
    session: SessionDep,
    auth: PeopleRead,
    page: PageNumber = 1,
    per_page: PerPage = 20,
    since: Since = None,
    until: Since = None,
) -> list[Bounce]:
    """People whose survey e-mail bounced (as your messaging system reported it through
    `POST /v1/invitations/{id}/delivery`), oldest first; `since`/`until` bound `bounced_at`."""
    return await people.bounces(session, auth.tenant_id, (since, until), page, per_page)


AutopilotRead = Annotated[AuthContext, Depends(delighted_key(Scope.INVITATIONS_READ))]
AutopilotWrite = Annotated[
    AuthContext, Depends(delighted_key(Scope.CUSTOMERS_WRITE, Scope.INVITATIONS_WRITE))
]
PersonId = Annotated[str | None, Text(min_length=1, max_length=64)]
PersonEmail = Annotated[EmailStr | None, Query(max_length=320)]
PersonPhone = Annotated[PhoneNumber | None, Query()]


def _member(
    body: MemberIdentifier | None,
    person_id: str | None,
    email: EmailStr | None,
    phone: str | None,
) -> MemberIdentifier:
    """The person named in the JSON body (Python SDK) or the query string (Node, Ruby)."""
    if body is not None and any((body.person_id, body.person_email, body.person_phone_number)):
        return body
    return MemberIdentifier(person_id=person_id, person_email=email, person_phone_number=phone)


@router.both("GET", "/autopilot/{platform}", response_model=AutopilotConfiguration)
async def get_autopilot(
    platform: Platform, session: SessionDep, auth: AutopilotRead
) -> AutopilotConfiguration:
    """Autopilot on `email` or `sms`: our `delighted` survey (`active` is the survey's),
    repeated every `frequency` seconds, the contact rules' frequency (or the survey's
    cooldown when longer): `PATCH /v1/contact-rules` and `PATCH /v1/surveys/delighted` set
    them."""
    return await autopilot.configuration(session, auth.tenant_id, platform)


@router.both("GET", "/autopilot/{platform}/memberships", response_model=list[Membership])
async def list_autopilot_memberships(
    platform: Platform,
    request: Request,
    session: SessionDep,
    auth: AutopilotRead,
    per_page: PerPage = 20,
    person_id: PersonId = None,
    person_email: PersonEmail = None,
    person_phone_number: PersonPhone = None,
    page_info: Cursor = None,
) -> JSONResponse:
    """The platform's members in the order they joined, each with their survey scheduled
    and not yet sent; `person_id`, `person_email` or `person_phone_number` keeps one. The
    next page's absolute URL is in `Link: <…>; rel="next"`, absent on the last page."""
    after = parse_cursor(page_info, datetime, UUID)
    items, last = await autopilot.page(
        session,
        auth.tenant_id,
        platform,
        _member(None, person_id, person_email, person_phone_number),
        (after[0], after[1]) if after else None,
        per_page,
    )
    return _linked(request, [m.model_dump() for m in items], last)


@router.both(
    "POST",
    "/autopilot/{platform}/memberships",
    status_code=status.HTTP_201_CREATED,
    response_model=MembershipCreated,
)
async def add_autopilot_membership(
    platform: Platform,
    body: MembershipCreate,
    session: SessionDep,
    settings: SettingsDep,
    auth: AutopilotWrite,
) -> MembershipCreated:
    """Add a person (`person_id`, `person_email` or `person_phone_number`; created when
    new, with `person_name`) and send them the first survey now, under the contact rules;
    `properties` go with each of their surveys. Adding a member again changes only the
    properties."""
    return await autopilot.join(session, auth, platform, body, settings)


@router.both(
    "DELETE",
    "/autopilot/{platform}/memberships",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MembershipRemoved,
)
async def remove_autopilot_membership(
    platform: Platform,
    session: SessionDep,
    auth: AutopilotWrite,
    body: MemberIdentifier | None = None,
    person_id: PersonId = None,
    person_email: PersonEmail = None,
    person_phone_number: PersonPhone = None,
) -> MembershipRemoved:
    """Take a person out (named in the JSON body or the query string) and cancel their
    survey still scheduled; the person and their responses stay. 404 if not a member."""
    who = _member(body, person_id, person_email, person_phone_number)
    return await autopilot.leave(session, auth.tenant_id, platform, who)
