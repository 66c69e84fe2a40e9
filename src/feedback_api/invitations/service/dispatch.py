"""Dispatch, the worker's side: what is due is sent (`invitation.due` with the message in
the customer's language and one link per score), reminded (`invitation.reminder_due`) and
expired (`invitation.expired`), once each. Opt-outs and bounces since scheduling still
count at sending time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.invitations.repository import InvitationRepository
from feedback_api.invitations.rules import ALL_CHANNELS
from feedback_api.invitations.schemas import (
    QUIET_CHANNELS,
    InvitationChannel,
    InvitationMessage,
    InvitationRead,
    Message,
    MessageLink,
    Recipient,
    Status,
)
from feedback_api.invitations.service.contacts import barred, quiet_hours, ref_hash
from feedback_api.invitations.service.links import Links, show
from feedback_api.invitations.service.links import links as link_service
from feedback_api.invitations.service.surveys import pick_text
from feedback_api.invitations.timing import next_allowed
from feedback_api.models import ContactRules, Customer, Invitation, Survey

DUE_BATCH = 100
ERASED = {ALL_CHANNELS: "erased"}  # the blocks of a customer who is gone: only erasure


@dataclass(frozen=True, slots=True)
class _Tenant:
    """What one tenant's due invitations are judged and written with, loaded once."""

    surveys: Mapping[UUID, Survey]
    customers: Mapping[UUID, Customer]
    blocks: Mapping[UUID, Mapping[str, str]]  # by customer id
    rules: ContactRules
    locale: str
    links: Links


class DispatchService:
    async def process_due(
        self, session: AsyncSession, now: datetime, *, settings: Settings, limit: int = DUE_BATCH
    ) -> int:
        """Send, remind and expire what is due, once each: rows are claimed with SKIP LOCKED
        and their next step commits with the events it emits."""
        repo = InvitationRepository(session)
        due = await repo.claim_due(now, limit)
        by_tenant: dict[UUID, list[Invitation]] = {}
        for inv in due:
            by_tenant.setdefault(inv.tenant_id, []).append(inv)
        for tenant_id, invitations in by_tenant.items():
            await self._process_tenant(session, tenant_id, invitations, now, settings)
        return len(due)

    async def _load(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        invitations: Sequence[Invitation],
        settings: Settings,
    ) -> _Tenant:
        repo = InvitationRepository(session)
        surveys = await repo.surveys(tenant_id, list({i.survey_id for i in invitations}))
        customers = await repo.customers(
            tenant_id, list({i.customer_id for i in invitations if i.customer_id})
        )
        rules = await repo.rules(tenant_id)
        defaults = await repo.tenant_defaults(tenant_id)
        assert defaults is not None
        links = await link_service.links(session, tenant_id, settings)
        # About to message them: opt-outs and bounces since scheduling still count.
        key = await repo.ref_key(tenant_id)
        hashes = {c.id: ref_hash(key, tenant_id, c.external_ref) for c in customers.values()}
        blocks = await repo.blocks_of(tenant_id, list(hashes.values()))
        by_customer = {cid: blocks.get(hashed, {}) for cid, hashed in hashes.items()}
        return _Tenant(surveys, customers, by_customer, rules, defaults[1], links)

    async def _process_tenant(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        invitations: list[Invitation],
        now: datetime,
        settings: Settings,
    ) -> None:
        tenant = await self._load(session, tenant_id, invitations, settings)
        emitted: dict[EventType, list[Any]] = {}
        for inv in invitations:
            survey = tenant.surveys[inv.survey_id]
            customer = tenant.customers.get(inv.customer_id) if inv.customer_id else None
            ref = customer.external_ref if customer else None
            assert inv.expires_at is not None
            if inv.status in (Status.SCHEDULED, Status.SENT) and now < inv.expires_at:
                theirs = tenant.blocks[customer.id] if customer else ERASED
                reason = barred(theirs, inv.channel, survey)
                if reason is not None and inv.status == Status.SCHEDULED:
                    inv.status, inv.suppression_reason = Status.SUPPRESSED, reason
                    inv.due_at = inv.expires_at = inv.next_action_at = None
                    read = show(inv, survey.key, ref, tenant.links)
                    emitted.setdefault(EventType.INVITATION_SUPPRESSED, []).append(read)
                    continue
                if reason is not None:  # sent already: just no reminders
                    inv.next_action_at = inv.expires_at
                    continue
            event, reminder = self._step(inv, survey, tenant.rules, now)
            if event is None:
                continue
            read = show(inv, survey.key, ref, tenant.links)
            payload: Any = read
            if event is not EventType.INVITATION_EXPIRED:
                payload = _message(read, inv, survey, customer, tenant, reminder)
            emitted.setdefault(event, []).append(payload)
        await session.flush()
        for event, payloads in emitted.items():
            await event_service.emit(session, tenant_id, event, payloads, occurred_at=now)

    def _step(
        self, inv: Invitation, survey: Survey, rules: ContactRules, now: datetime
    ) -> tuple[EventType | None, int]:
        """Move one due invitation on (in memory); returns the event it owes, if any, and
        the reminder number."""
        assert inv.expires_at is not None
        if inv.status not in (Status.SCHEDULED, Status.SENT):
            inv.next_action_at = None
            return None, 0
        if now >= inv.expires_at:
            # Unanswered; or never sent at all, when the worker was down past the expiry.
            inv.status, inv.next_action_at = Status.EXPIRED, None
            return EventType.INVITATION_EXPIRED, 0
        if inv.status == Status.SCHEDULED:
            inv.status, inv.sent_at = Status.SENT, now
            inv.next_action_at = _next_reminder(inv, survey, rules, now)
            return EventType.INVITATION_DUE, 0
        inv.reminders_sent += 1
        inv.last_reminder_at = now
        inv.next_action_at = _next_reminder(inv, survey, rules, now)
        return EventType.INVITATION_REMINDER_DUE, inv.reminders_sent


def _next_reminder(
    inv: Invitation, survey: Survey, rules: ContactRules, since: datetime
) -> datetime | None:
    """The next reminder's time, or the expiry when no reminder is left to send."""
    if survey.reminder_after_hours is None or inv.reminders_sent >= rules.max_reminders:
        return inv.expires_at
    at = since + timedelta(hours=survey.reminder_after_hours)
    quiet = quiet_hours(rules)
    if quiet is not None and InvitationChannel(inv.channel) in QUIET_CHANNELS:
        at = next_allowed(at, ZoneInfo(inv.timezone), quiet)
    assert inv.expires_at is not None
    return at if at < inv.expires_at else inv.expires_at


def _message(
    read: InvitationRead,
    inv: Invitation,
    survey: Survey,
    customer: Customer | None,
    tenant: _Tenant,
    reminder: int,
) -> InvitationMessage:
    """`invitation.due` and `invitation.reminder_due`: the read, what to send, and to whom."""
    assert read.links is not None
    assert inv.expires_at is not None
    token, links, fallback = read.links.token, tenant.links, tenant.locale
    question = pick_text(survey.question, inv.locale, fallback)
    assert question is not None
    message = Message(
        reminder=reminder,
        locale=inv.locale,
        kind=survey.kind,  # type: ignore[arg-type]
        scale_min=survey.scale_min,
        scale_max=survey.scale_max,
        question=question,
        follow_up=pick_text(survey.follow_up, inv.locale, fallback),
        links=[
            MessageLink(score=s, url=links.url(token, f"?score={s}"))
            for s in range(survey.scale_min, survey.scale_max + 1)
        ],
        landing_url=links.url(token),
        unsubscribe_url=links.url(token, "/unsubscribe"),
        expires_at=inv.expires_at,
    )
    recipient = (
        Recipient.model_validate(customer, from_attributes=True) if customer is not None else None
    )
    return InvitationMessage(**read.model_dump(), message=message, recipient=recipient)


dispatch = DispatchService()
