"""Autopilot: Delighted's recurring surveys, on our `delighted` survey and contact rules.

A member of a platform (`email` or `sms`) is sent the `delighted` survey on that channel
when they join, and again every `frequency`: the tenant's contact-rule frequency, or the
survey's cooldown when that is longer (at least a day), so that the rules themselves never
hold a round back. The worker's sweep schedules each round as an ordinary invitation, under
every contact rule (opt-outs, bounces, quiet hours, other surveys' spacing); a round the
rules hold back is recorded as a suppressed invitation, and the member is tried again a
frequency later. While the survey is inactive, rounds are skipped without a trace (and
looked at again daily)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.auth.context import AuthContext
from feedback_api.compat.delighted import people
from feedback_api.compat.delighted.repository import AutopilotRepository, MembershipRow
from feedback_api.compat.delighted.schemas import (
    AutopilotConfiguration,
    MemberIdentifier,
    MemberPerson,
    Membership,
    MembershipCreate,
    MembershipCreated,
    MembershipRemoved,
    PersonCreate,
    Platform,
    SurveyRequest,
)
from feedback_api.config import Settings
from feedback_api.customers.service import customer as customer_service
from feedback_api.exceptions import InvalidRequest, InvitationNotPending, NotFound
from feedback_api.invitations.schemas import InvitationContext, InvitationCreate, SurveyRead
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.time import utcnow
from feedback_api.models import AutopilotMembership, Customer

#: Members whose round is due, taken per worker tick.
DUE_BATCH = 100
#: While the survey is inactive, a due member is looked at again this much later.
PAUSED_RETRY = timedelta(days=1)


def _member(customer: Customer) -> MemberPerson:
    return MemberPerson(
        id=str(customer.id),
        name=customer.name,
        email=customer.email,
        phone_number=customer.phone,
        created_at=int(customer.created_at.timestamp()),
    )


async def _survey(session: AsyncSession, tenant_id: UUID) -> SurveyRead | None:
    try:
        return await invitation_service.get_survey(session, tenant_id, people.SURVEY)
    except NotFound:
        return None


async def _frequency(
    session: AsyncSession, tenant_id: UUID, survey: SurveyRead | None
) -> timedelta:
    rules = await invitation_service.get_rules(session, tenant_id)
    days = max(rules.frequency_days, (survey.cooldown_days if survey else None) or 0)
    # Rules without a frequency (0 days) would make every tick a round: at most once a day.
    return timedelta(days=max(days, 1))


async def configuration(
    session: AsyncSession, tenant_id: UUID, platform: Platform
) -> AutopilotConfiguration:
    survey = await _survey(session, tenant_id)
    frequency = await _frequency(session, tenant_id, survey)
    return AutopilotConfiguration(
        platform_id=platform,
        active=survey is not None and survey.active,
        frequency=int(frequency.total_seconds()),
        created_at=people.unix(survey.created_at) if survey else None,
        updated_at=people.unix(survey.updated_at) if survey else None,
    )


async def _named(session: AsyncSession, tenant_id: UUID, who: MemberIdentifier) -> Customer | None:
    given = [v for v in (who.person_id, who.person_email, who.person_phone_number) if v]
    if len(given) != 1:
        raise InvalidRequest.at(
            ("body", "person_email"),
            "required",
            "name the person with exactly one of person_id, person_email, person_phone_number",
        )
    if who.person_id is not None:
        return await people.find(session, tenant_id, who.person_id)
    if who.person_email is not None:
        return await customer_service.find(session, tenant_id, email=str(who.person_email))
    return await customer_service.find(session, tenant_id, phone=who.person_phone_number)


async def _round(
    session: AsyncSession,
    membership: AutopilotMembership,
    customer: Customer,
    frequency: timedelta,
    settings: Settings,
) -> None:
    """Schedule the member's survey for this round and set when the next round is due."""
    now = utcnow()
    _, context, _ = people.split(membership.properties)
    # One invitation per member and round (the round's due time, to the microsecond), even
    # if a round were run twice.
    round_ref = f"{membership.platform}:{customer.id}:{membership.next_at.timestamp():.6f}"
    invitation, _ = await invitation_service.schedule(
        session,
        membership.tenant_id,
        InvitationCreate(
            customer=customer.external_ref,
            survey=people.SURVEY,
            channel=membership.platform,  # type: ignore[arg-type]
            trigger_ref=f"autopilot:{round_ref}",
            context=InvitationContext(attributes=context),
        ),
        settings=settings,
    )
    membership.invitation_id = invitation.id
    membership.next_at = max(invitation.due_at or now, now) + frequency


async def join(
    session: AsyncSession,
    auth: AuthContext,
    platform: Platform,
    body: MembershipCreate,
    settings: Settings,
) -> MembershipCreated:
    """Add the person (created if new) to the platform's Autopilot and send them their
    first survey; a member already in it keeps their schedule and gets the new properties."""
    tenant_id = auth.tenant_id
    existing = await _named(session, tenant_id, body)
    if existing is None and body.person_id is not None:
        raise NotFound("no such person")
    # Checked before anything is written: the platform needs its address.
    if platform == "email" and not (body.person_email or (existing and existing.email)):
        raise InvalidRequest.at(("body", "person_email"), "required", "email needs an email")
    if platform == "sms" and not (body.person_phone_number or (existing and existing.phone)):
        raise InvalidRequest.at(
            ("body", "person_phone_number"), "required", "sms needs a phone number"
        )
    customer = await people.save(
        session,
        tenant_id,
        existing,
        PersonCreate(
            email=body.person_email,
            phone_number=body.person_phone_number,
            name=body.person_name,
            properties=body.properties,
        ),
    )
    await people.ensure_survey(session, tenant_id)
    repo = AutopilotRepository(session)
    membership, new = await repo.join(tenant_id, platform, customer.id, body.properties, utcnow())
    if new:
        survey = await _survey(session, tenant_id)
        if survey is not None and survey.active:
            frequency = await _frequency(session, tenant_id, survey)
            await _round(session, membership, customer, frequency, settings)
    return MembershipCreated(person=_member(customer), properties=membership.properties)


async def leave(
    session: AsyncSession, tenant_id: UUID, platform: Platform, who: MemberIdentifier
) -> MembershipRemoved:
    """Take the person out of the platform's Autopilot and cancel its survey still
    scheduled; the person and their responses stay. 404 for someone not in it."""
    customer = await _named(session, tenant_id, who)
    repo = AutopilotRepository(session)
    membership = (
        await repo.get(tenant_id, platform, customer.id, for_update=True) if customer else None
    )
    if customer is None or membership is None:
        raise NotFound("the person is not in this Autopilot")
    if membership.invitation_id is not None:
        with contextlib.suppress(InvitationNotPending):  # sent, answered or cancelled already
            await invitation_service.cancel(session, tenant_id, membership.invitation_id)
    await repo.leave(membership)
    return MembershipRemoved(person=_member(customer))


def _membership(row: MembershipRow) -> Membership:
    membership, customer, invitation = row
    request = None
    if invitation is not None:
        request = SurveyRequest(
            id=str(invitation.id),
            created_at=int(invitation.created_at.timestamp()),
            survey_scheduled_at=people.unix(invitation.due_at),
            properties=membership.properties,
        )
    return Membership(
        created_at=int(membership.created_at.timestamp()),
        updated_at=int(membership.updated_at.timestamp()),
        person=_member(customer),
        next_survey_request=request,
    )


async def page(
    session: AsyncSession,
    tenant_id: UUID,
    platform: Platform,
    who: MemberIdentifier,
    after: tuple[datetime, UUID] | None,
    per_page: int,
) -> tuple[list[Membership], tuple[datetime, UUID] | None]:
    customer_id = None
    if any((who.person_id, who.person_email, who.person_phone_number)):
        customer = await _named(session, tenant_id, who)
        if customer is None:
            return [], None
        customer_id = customer.id
    rows = await AutopilotRepository(session).page(
        tenant_id, platform, customer_id=customer_id, after=after, limit=per_page + 1
    )
    more = len(rows) > per_page
    rows = rows[:per_page]
    last = (rows[-1][0].created_at, rows[-1][0].customer_id) if more and rows else None
    return [_membership(r) for r in rows], last


async def schedule_due(session: AsyncSession, settings: Settings) -> int:
    """The worker's sweep: schedule the round of every member whose round is due."""
    repo = AutopilotRepository(session)
    due = await repo.claim_due(utcnow(), DUE_BATCH)
    by_tenant: dict[UUID, list[AutopilotMembership]] = {}
    for membership in due:
        by_tenant.setdefault(membership.tenant_id, []).append(membership)
    for tenant_id, memberships in by_tenant.items():
        await _tenant_rounds(session, tenant_id, memberships, settings)
    return len(due)


async def _tenant_rounds(
    session: AsyncSession,
    tenant_id: UUID,
    memberships: Sequence[AutopilotMembership],
    settings: Settings,
) -> None:
    survey = await _survey(session, tenant_id)
    frequency = await _frequency(session, tenant_id, survey)
    for membership in memberships:
        customer = await customer_service.find(
            session, tenant_id, customer_id=membership.customer_id
        )
        if customer is None or survey is None or not survey.active:
            membership.next_at = utcnow() + PAUSED_RETRY  # resumes within a day of reactivation
            continue
        await _round(session, membership, customer, frequency, settings)
