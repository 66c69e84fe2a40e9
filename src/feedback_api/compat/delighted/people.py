"""People: Delighted's person is our customer; "send a survey" is our invitation, under our
contact rules."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.auth.context import AuthContext
from feedback_api.compat.delighted.properties import split
from feedback_api.compat.delighted.schemas import (
    Bounce,
    Person,
    PersonCreate,
    PersonCreated,
    Unsubscribe,
)
from feedback_api.config import Settings
from feedback_api.customers.service import customer as customer_service
from feedback_api.exceptions import InvalidRequest, NotFound, SurveyKeyTaken
from feedback_api.invitations.schemas import (
    InvitationContext,
    InvitationCreate,
    InvitationFilters,
    SurveyCreate,
)
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.models import Customer
from feedback_api.privacy.service import privacy as privacy_service

#: The survey Delighted's "send a survey to this person" schedules, created on first use
#: (change its question with PATCH /v1/surveys/delighted).
SURVEY = "delighted"
DEFAULT_QUESTION = {
    "en": "How likely are you to recommend us to a friend or colleague?",
    "de": "Wie wahrscheinlich ist es, dass Sie uns einem Freund oder Kollegen empfehlen?",
    "zh": "您有多大可能向朋友或同事推荐我们？",
}


def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


_NOT_IN_A_REF = {"%": "%25", "/": "%2F", "?": "%3F", "#": "%23"}


def ref_for(address: str) -> str:
    """A new person's customer ref: their e-mail address (or phone number), with the
    characters our refs leave out (`/ ? #`, valid in an address) percent-encoded."""
    ref = "".join(_NOT_IN_A_REF.get(c, c) for c in address)
    if len(ref) > 255:  # an address this long is not valid; never a ref we refuse
        ref = "delighted:" + hashlib.sha256(address.encode()).hexdigest()
    return ref


def person(customer: Customer) -> Person:
    return Person(
        id=str(customer.id),
        email=customer.email,
        name=customer.name,
        phone_number=customer.phone,
        created_at=int(customer.created_at.timestamp()),
    )


async def find(session: AsyncSession, tenant_id: UUID, identifier: str) -> Customer:
    """`id`, `email:<address>` or `phone_number:<E.164>`, as Delighted's paths name people."""
    kind, _, value = identifier.partition(":")
    found = None
    if value and kind == "email":
        found = await customer_service.find(session, tenant_id, email=value)
    elif value and kind == "phone_number":
        found = await customer_service.find(session, tenant_id, phone=value)
    elif not value:
        try:
            customer_id = UUID(identifier)
        except ValueError:
            customer_id = None
        if customer_id is not None:
            found = await customer_service.find(session, tenant_id, customer_id=customer_id)
        if found is None and "@" in identifier:  # `/people/{email}` in survey_requests
            found = await customer_service.find(session, tenant_id, email=identifier)
    if found is None:
        raise NotFound("no such person")
    return found


async def ensure_survey(session: AsyncSession, tenant_id: UUID) -> None:
    try:
        await invitation_service.get_survey(session, tenant_id, SURVEY)
    except NotFound:
        # Two first requests of a tenant may both get here: the second finds it made.
        with contextlib.suppress(SurveyKeyTaken):
            await invitation_service.create_survey(
                session,
                tenant_id,
                SurveyCreate.model_validate(
                    {"key": SURVEY, "kind": "nps", "question": DEFAULT_QUESTION}
                ),
            )


async def save(
    session: AsyncSession, tenant_id: UUID, existing: Customer | None, body: PersonCreate
) -> Customer:
    """Create the person, or update `existing` with what the body sets (properties merged
    into its attributes; a field the body leaves out stays)."""
    attributes, _, locale = split(body.properties)
    values: dict[str, Any] = {
        "name": body.name,
        "email": body.email_update or body.email,
        "phone": body.phone_number_update or body.phone_number,
        "locale": locale,
        "attributes": attributes,
    }
    if existing is not None:
        ref = existing.external_ref
        kept = {
            "name": existing.name,
            "email": existing.email,
            "phone": existing.phone,
            "locale": existing.locale,
            "timezone": existing.timezone,
        }
        values = {
            **kept,
            **{k: v for k, v in values.items() if v is not None and k != "attributes"},
            "attributes": {**existing.attributes, **attributes},
        }
    else:
        ref = ref_for(str(body.email or body.phone_number))
    customer, _ = await customer_service.upsert(session, tenant_id, ref, values)
    return customer


async def create_or_update(
    session: AsyncSession, auth: AuthContext, body: PersonCreate, settings: Settings
) -> PersonCreated:
    tenant_id = auth.tenant_id
    if body.email is None and body.phone_number is None:
        raise InvalidRequest.at(("body", "email"), "required", "email or phone_number is required")
    channel = body.channel or ("sms" if body.email is None else "email")
    if channel == "sms" and (body.phone_number_update or body.phone_number) is None:
        raise InvalidRequest.at(("body", "phone_number"), "required", "sms needs a phone_number")
    if channel == "email" and (body.email_update or body.email) is None:
        raise InvalidRequest.at(("body", "email"), "required", "email needs an email")
    existing = await customer_service.find(
        session, tenant_id, email=body.email, phone=None if body.email else body.phone_number
    )
    customer = await save(session, tenant_id, existing, body)
    ref = customer.external_ref
    scheduled = None
    if body.send is not False:
        await ensure_survey(session, tenant_id)
        invitation, _ = await invitation_service.schedule(
            session,
            tenant_id,
            InvitationCreate(
                customer=ref,
                survey=SURVEY,
                channel=channel,  # type: ignore[arg-type]
                delay_seconds=body.delay or 0,
                context=InvitationContext(attributes=split(body.properties)[1]),
            ),
            settings=settings,
        )
        scheduled = invitation.due_at if invitation.status.value == "scheduled" else None
    return PersonCreated(**person(customer).model_dump(), survey_scheduled_at=unix(scheduled))


async def page(
    session: AsyncSession,
    tenant_id: UUID,
    *,
    since: int | None,
    until: int | None,
    email: str | None,
    phone: str | None,
    after: tuple[datetime, UUID] | None,
    per_page: int,
) -> tuple[list[Person], tuple[datetime, UUID] | None]:
    rows = await customer_service.oldest_first(
        session,
        tenant_id,
        since=_moment(since),
        until=_moment(until),
        email=email,
        phone=phone,
        after=after,
        limit=per_page + 1,
    )
    more = len(rows) > per_page
    rows = rows[:per_page]
    last = (rows[-1].created_at, rows[-1].id) if more and rows else None
    return [person(c) for c in rows], last


async def erase(session: AsyncSession, auth: AuthContext, identifier: str) -> None:
    customer = await find(session, auth.tenant_id, identifier)
    await privacy_service.erase(
        session, auth.tenant_id, customer.external_ref, actor_key_id=auth.key_id
    )


async def unsubscribe(session: AsyncSession, tenant_id: UUID, email: str) -> None:
    """Delighted's unsubscribe: no survey on any channel any more (our opt-out, which also
    cancels the scheduled ones). An address we do not know is opted out all the same, so
    that a CRM can forward every opt-out it has."""
    customer = await customer_service.find(session, tenant_id, email=email)
    ref = customer.external_ref if customer is not None else email
    await invitation_service.unsubscribe(session, tenant_id, ref, None)


def _moment(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


async def _blocked(
    session: AsyncSession,
    tenant_id: UUID,
    reason: Literal["unsubscribed", "bounced"],
    channels: tuple[str, ...],
    window: tuple[int | None, int | None],
    page_number: int,
    per_page: int,
) -> list[tuple[Customer, int]]:
    rows = await invitation_service.blocked_customers(
        session,
        tenant_id,
        reason,
        channels,
        since=_moment(window[0]),
        until=_moment(window[1]),
        offset=(page_number - 1) * per_page,
        limit=per_page,
    )
    return [(c, int(at.timestamp())) for c, at in rows]


async def unsubscribes(
    session: AsyncSession,
    tenant_id: UUID,
    window: tuple[int | None, int | None],
    page_number: int,
    per_page: int,
) -> list[Unsubscribe]:
    """Who opted out of e-mail (of every channel, or of e-mail alone), through any of our
    ways: this API, `POST /v1/customers/{ref}/unsubscribe`, or a message's link."""
    rows = await _blocked(
        session, tenant_id, "unsubscribed", ("*", "email"), window, page_number, per_page
    )
    return [
        Unsubscribe(person_id=str(c.id), email=c.email, name=c.name, unsubscribed_at=at)
        for c, at in rows
    ]


async def bounces(
    session: AsyncSession,
    tenant_id: UUID,
    window: tuple[int | None, int | None],
    page_number: int,
    per_page: int,
) -> list[Bounce]:
    """Whose e-mail bounced (reported with `POST /v1/invitations/{id}/delivery`)."""
    rows = await _blocked(session, tenant_id, "bounced", ("email",), window, page_number, per_page)
    return [
        Bounce(person_id=str(c.id), email=c.email, name=c.name, bounced_at=at) for c, at in rows
    ]


async def cancel_pending(
    session: AsyncSession, tenant_id: UUID, email: str, settings: Settings
) -> None:
    """Cancel every survey still scheduled for the person (not sent yet). 404 for an
    address we do not know."""
    customer = await find(session, tenant_id, f"email:{email}")
    filters = InvitationFilters(status="scheduled", customer=customer.external_ref)
    while True:
        pending, _ = await invitation_service.list_page(
            session, tenant_id, filters, limit=100, after=None, settings=settings
        )
        for invitation in pending:
            await invitation_service.cancel(session, tenant_id, invitation.id)
        if len(pending) < 100:
            return
