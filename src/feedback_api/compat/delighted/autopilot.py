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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.auth.context import AuthContext
from feedback_api.compat.delighted import people
from feedback_api.compat.delighted.properties import split
from feedback_api.compat.delighted.repository import AutopilotRepository, MembershipRow
from feedback_api.compat.delighted.schemas import (
    AutopilotConfiguration,
    MemberIdentifier,
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
from feedback_api.kit.poison import isolate
from feedback_api.kit.time import utcnow
from feedback_api.models import AutopilotMembership, Customer

#: Members whose round is due, taken per worker tick.
DUE_BATCH = 100
#: While the survey is inactive, a due member is looked at again this much later.
PAUSED_RETRY = timedelta(days=1)


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


@dataclass(frozen=True, slots=True)
class _Due:
    """A member whose round is due, as plain values (no ORM state to expire when a
    savepoint rolls back)."""

    tenant_id: UUID
    platform: str
    customer_id: UUID
    next_at: datetime
    properties: dict[str, Any]

    @classmethod
    def of(cls, m: AutopilotMembership) -> _Due:
        return cls(m.tenant_id, m.platform, m.customer_id, m.next_at, dict(m.properties))


async def _round(
    session: AsyncSession,
    member: _Due,
    ref: str,
    frequency: timedelta,
    settings: Settings,
) -> None:
    """Schedule the survey of the member (customer `ref`) for this round and set when the
    next round is due."""
    now = utcnow()
    _, context, _ = split(member.properties)
    # One invitation per member and round (the round's due time, to the microsecond), even
    # if a round were run twice.
    round_ref = f"{member.platform}:{member.customer_id}:{member.next_at.timestamp():.6f}"
    invitation, _ = await invitation_service.schedule(
        session,
        member.tenant_id,
        InvitationCreate(
            customer=ref,
            survey=people.SURVEY,
            channel=member.platform,  # type: ignore[arg-type]
            trigger_ref=f"autopilot:{round_ref}",
            context=InvitationContext(attributes=context),
        ),
        settings=settings,
    )
    await AutopilotRepository(session).advance(
        member.tenant_id,
        member.platform,
        member.customer_id,
        next_at=max(invitation.due_at or now, now) + frequency,
        invitation_id=invitation.id,
    )


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
            await _round(session, _Due.of(membership), customer.external_ref, frequency, settings)
    return MembershipCreated(person=people.person(customer), properties=membership.properties)


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
    return MembershipRemoved(person=people.person(customer))


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
        person=people.person(customer),
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
    """The worker's sweep: schedule the round of every member whose round is due. A member
    whose round fails (a bug, a value our invitations refuse) is set aside for a day, in a
    savepoint of its own: the others', and other tenants', rounds go on."""
    due = [_Due.of(m) for m in await AutopilotRepository(session).claim_due(utcnow(), DUE_BATCH)]
    by_tenant: dict[UUID, list[_Due]] = {}
    for member in due:
        by_tenant.setdefault(member.tenant_id, []).append(member)
    for tenant_id, members in by_tenant.items():
        await _tenant_rounds(session, tenant_id, members, settings)
    return len(due)


async def _tenant_rounds(
    session: AsyncSession, tenant_id: UUID, members: Sequence[_Due], settings: Settings
) -> None:
    survey = await _survey(session, tenant_id)
    frequency = await _frequency(session, tenant_id, survey)
    repo = AutopilotRepository(session)

    async def postpone(member: _Due, _: Exception | None = None) -> None:
        later = utcnow() + PAUSED_RETRY
        await repo.advance(tenant_id, member.platform, member.customer_id, next_at=later)

    # The members' refs in one query, as plain values (nothing to expire in a savepoint).
    refs = await customer_service.refs_by_id(session, tenant_id, [m.customer_id for m in members])

    async def rounds(batch: Sequence[_Due]) -> None:
        for member in batch:
            ref = refs.get(member.customer_id)
            if ref is None or survey is None or not survey.active:
                await postpone(member)  # resumes within a day of reactivation
            else:
                await _round(session, member, ref, frequency, settings)

    await isolate(session, "autopilot.rounds", members, rounds, postpone)
