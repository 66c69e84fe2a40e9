"""Scheduling: an invitation is asked for (one, or a batch from a CRM), checked against
the contact rules at the moment it would go out, and either scheduled (with its due time
after the delay and quiet hours) or suppressed with the reason. Also reading, cancelling
and delivery reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.customers.service import customer as customer_service
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import (
    InvalidRequest,
    InvitationNotPending,
    InvitationNotSent,
    NotFound,
)
from feedback_api.invitations.repository import InvitationRepository
from feedback_api.invitations.rules import ALL_CHANNELS, Reason
from feedback_api.invitations.schemas import (
    QUIET_CHANNELS,
    Delivery,
    InvitationBatchItem,
    InvitationBatchResult,
    InvitationChannel,
    InvitationCreate,
    InvitationFilters,
    InvitationRead,
    Status,
)
from feedback_api.invitations.service.contacts import barred, quiet_hours, ref_hash
from feedback_api.invitations.service.contacts import contacts as contact_service
from feedback_api.invitations.service.links import links as link_service
from feedback_api.invitations.service.links import show_row
from feedback_api.invitations.timing import next_allowed
from feedback_api.kit.batch import ItemError, at_item, check_items, in_order
from feedback_api.kit.pagination import paginate
from feedback_api.kit.time import check_not_future, utcnow
from feedback_api.models import ContactRules, Customer, Survey


def unknown_survey(key: str) -> InvalidRequest:
    return InvalidRequest.at(
        ("body", "survey"), "unknown_survey", "no such survey", detail=f"no survey with key {key!r}"
    )


def check_trigger_time(body: InvitationCreate, skew: timedelta) -> None:
    """A trigger in the future (beyond clock skew) is a mistake: use `delay_seconds`."""
    check_not_future(
        body.triggered_at,
        skew,
        ("body", "triggered_at"),
        "triggered_at is in the future; to ask later, use delay_seconds",
    )


def _skew(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.clock_skew_seconds)


@dataclass(frozen=True, slots=True)
class _Recipient:
    """Whom an invitation is for. `customer` is None only for an erased one (never
    re-created); `blocks` are their contact blocks by channel."""

    customer: Customer | None
    blocks: Mapping[str, str]
    zone: str
    locale: str


@dataclass(frozen=True, slots=True)
class _Timing:
    """When: the trigger, when it would go out after the delay, and when it may (after
    quiet hours), under the tenant's contact rules."""

    triggered: datetime
    intended: datetime
    due: datetime
    rules: ContactRules


class SchedulingService:
    # --- reading -------------------------------------------------------------------------------

    async def get(
        self, session: AsyncSession, tenant_id: UUID, invitation_id: UUID, *, settings: Settings
    ) -> InvitationRead:
        row = await InvitationRepository(session).get(tenant_id, invitation_id)
        if row is None:
            raise NotFound("no such invitation")
        return show_row(row, await link_service.links(session, tenant_id, settings))

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        filters: InvitationFilters,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
        settings: Settings,
    ) -> tuple[list[InvitationRead], str | None]:
        rows = await InvitationRepository(session).page(
            tenant_id, filters, limit=limit + 1, after=after
        )
        links = await link_service.links(session, tenant_id, settings)
        reads = [show_row(r, links) for r in rows]
        return paginate(reads, limit, lambda r: (r.created_at, r.id))

    # --- scheduling ----------------------------------------------------------------------------

    async def schedule(
        self, session: AsyncSession, tenant_id: UUID, body: InvitationCreate, *, settings: Settings
    ) -> tuple[InvitationRead, bool]:
        """Schedule (or suppress, with the reason) one invitation. Returns it and whether
        it is new (False: the same survey and trigger_ref were sent before)."""
        repo = InvitationRepository(session)
        survey = await repo.survey_by_key(tenant_id, body.survey)
        if survey is None:
            raise unknown_survey(body.survey)
        check_trigger_time(body, _skew(settings))
        key = await repo.ref_key(tenant_id)
        return await self._schedule(session, tenant_id, body, survey, key, settings)

    async def schedule_batch(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        raw_items: Sequence[Any],
        *,
        settings: Settings,
    ) -> InvitationBatchResult:
        """Each item on its own, in one transaction. Items are taken in customer order (so
        concurrent batches lock customers in the same order), request order within one
        customer (so the first of two invitations for a customer is the one scheduled)."""
        skew = _skew(settings)

        def parse(raw: Any) -> InvitationCreate:
            item = InvitationCreate.model_validate(raw)
            check_trigger_time(item, skew)
            return item

        checked = check_items(raw_items, parse)
        results = {
            index: InvitationBatchItem(index=index, status=422, error=ItemError.of(error))
            for index, error in checked.errors.items()
        }
        repo = InvitationRepository(session)
        key = await repo.ref_key(tenant_id)
        surveys: dict[str, Survey | None] = {}
        for index, item in sorted(checked.valid, key=lambda v: v[1].customer):
            if item.survey not in surveys:
                surveys[item.survey] = await repo.survey_by_key(tenant_id, item.survey)
            survey = surveys[item.survey]
            if survey is None:
                error = ItemError.of(at_item(unknown_survey(item.survey), index))
                results[index] = InvitationBatchItem(index=index, status=422, error=error)
                continue
            read, created = await self._schedule(session, tenant_id, item, survey, key, settings)
            results[index] = InvitationBatchItem(
                index=index,
                status=201 if created else 200,
                id=read.id,
                invitation_status=read.status,
                suppression_reason=read.suppression_reason,
            )
        ordered = in_order(results, len(raw_items))
        fresh = [r for r in ordered if r.status == 201]
        return InvitationBatchResult(
            items=ordered,
            scheduled=sum(r.invitation_status is Status.SCHEDULED for r in fresh),
            suppressed=sum(r.invitation_status is Status.SUPPRESSED for r in fresh),
            duplicates=sum(r.status == 200 for r in ordered),
            failed=sum(r.status >= 400 for r in ordered),
        )

    async def _schedule(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        body: InvitationCreate,
        survey: Survey,
        key: bytes,
        settings: Settings,
    ) -> tuple[InvitationRead, bool]:
        repo = InvitationRepository(session)
        links = await link_service.links(session, tenant_id, settings)
        if body.trigger_ref is not None:
            existing = await repo.get_by_trigger_if_any(tenant_id, survey.id, body.trigger_ref)
            if existing is not None:
                return show_row(existing, links), False
        channel = (body.channel or InvitationChannel(survey.default_channel)).value
        who = await self._recipient(session, repo, tenant_id, body.customer, key)
        when = await self._timing(repo, tenant_id, body, survey, channel, who.zone)
        reason = await self._reason(repo, tenant_id, survey, channel, who, when)
        new_id = await repo.insert(_values(tenant_id, body, survey, channel, who, when, reason))
        if new_id is None:  # a concurrent request with the same trigger_ref won
            assert body.trigger_ref is not None
            winner = await repo.get_by_trigger_if_any(tenant_id, survey.id, body.trigger_ref)
            assert winner is not None
            return show_row(winner, links), False
        row = await repo.get(tenant_id, new_id)
        assert row is not None
        read = show_row(row, links)
        scheduled = reason is None
        event = EventType.INVITATION_SCHEDULED if scheduled else EventType.INVITATION_SUPPRESSED
        await event_service.emit(session, tenant_id, event, [read])
        return read, True

    async def _recipient(
        self,
        session: AsyncSession,
        repo: InvitationRepository,
        tenant_id: UUID,
        ref: str,
        key: bytes,
    ) -> _Recipient:
        """The customer (created on first invitation, and locked: two invitations for one
        customer are judged one after the other), their blocks, zone and locale."""
        defaults = await repo.tenant_defaults(tenant_id)
        assert defaults is not None  # the key's tenant exists
        tenant_zone, tenant_locale = defaults
        blocks = await repo.blocks(tenant_id, ref_hash(key, tenant_id, ref))
        customer: Customer | None = None
        if blocks.get(ALL_CHANNELS) != "erased":  # never re-create an erased customer
            ids = await customer_service.ensure(session, tenant_id, [ref])
            await repo.lock_customer(tenant_id, ids[ref])
            customer = (await repo.customers(tenant_id, [ids[ref]]))[ids[ref]]
        zone = (customer.timezone if customer else None) or tenant_zone
        locale = (customer.locale if customer else None) or tenant_locale
        return _Recipient(customer, blocks, zone, locale)

    async def _timing(
        self,
        repo: InvitationRepository,
        tenant_id: UUID,
        body: InvitationCreate,
        survey: Survey,
        channel: str,
        zone: str,
    ) -> _Timing:
        now = utcnow()
        triggered = body.triggered_at or now
        delay = (
            timedelta(seconds=body.delay_seconds)
            if body.delay_seconds is not None
            else timedelta(minutes=survey.delay_minutes)
        )
        intended = max(triggered + delay, now)
        rules = await repo.rules(tenant_id)
        quiet = quiet_hours(rules)
        due = intended
        if quiet is not None and InvitationChannel(channel) in QUIET_CHANNELS:
            due = next_allowed(intended, ZoneInfo(zone), quiet)
        return _Timing(triggered, intended, due, rules)

    async def _reason(
        self,
        repo: InvitationRepository,
        tenant_id: UUID,
        survey: Survey,
        channel: str,
        who: _Recipient,
        when: _Timing,
    ) -> Reason | None:
        """Why it must not be sent (a block, the frequency or cooldown at its due time, or
        quiet hours pushing it past `send_within_hours`), or None to schedule it."""
        reason = barred(who.blocks, channel, survey)
        if reason is None:
            assert who.customer is not None  # only an erased customer is missing, and barred
            decision = await contact_service.spacing(
                repo, tenant_id, who.customer.id, survey, when.rules, when.due
            )
            reason = decision.reason
        if reason is None and when.due - when.intended > timedelta(hours=survey.send_within_hours):
            reason = Reason.QUIET_HOURS_LIMIT
        return reason

    # --- after scheduling ----------------------------------------------------------------------

    async def cancel(self, session: AsyncSession, tenant_id: UUID, invitation_id: UUID) -> None:
        repo = InvitationRepository(session)
        row = await repo.get(tenant_id, invitation_id, for_update=True)
        if row is None:
            raise NotFound("no such invitation")
        if row[0].status != Status.SCHEDULED:
            raise InvitationNotPending(
                f"the invitation is {row[0].status}; only a scheduled one can be cancelled"
            )
        await repo.update(
            tenant_id, invitation_id, {"status": Status.CANCELLED, "next_action_at": None}
        )

    async def report_delivery(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        invitation_id: UUID,
        delivery: Delivery,
        *,
        settings: Settings,
    ) -> InvitationRead:
        repo = InvitationRepository(session)
        row = await repo.get(tenant_id, invitation_id, for_update=True)
        if row is None:
            raise NotFound("no such invitation")
        invitation, _, customer_ref = row
        if invitation.sent_at is None:
            raise InvitationNotSent(
                f"the invitation is {invitation.status}; report after invitation.due"
            )
        values: dict[str, Any] = {"delivery": delivery, "delivery_at": utcnow()}
        if delivery is Delivery.BOUNCED:
            if invitation.status == Status.SENT:
                values["next_action_at"] = invitation.expires_at  # no reminders to a dead address
            if customer_ref is not None:
                hashed = ref_hash(await repo.ref_key(tenant_id), tenant_id, customer_ref)
                await repo.block(
                    tenant_id, hashed, invitation.channel, "bounced", invitation.customer_id
                )
        await repo.update(tenant_id, invitation_id, values)
        return await self.get(session, tenant_id, invitation_id, settings=settings)


def _values(
    tenant_id: UUID,
    body: InvitationCreate,
    survey: Survey,
    channel: str,
    who: _Recipient,
    when: _Timing,
    reason: Reason | None,
) -> dict[str, Any]:
    """The new invitation's row: scheduled when there is no reason not to, else suppressed."""
    scheduled = reason is None
    due = when.due
    return {
        "tenant_id": tenant_id,
        "survey_id": survey.id,
        "customer_id": who.customer.id if who.customer else None,
        "channel": channel,
        "trigger_ref": body.trigger_ref,
        "status": Status.SCHEDULED if scheduled else Status.SUPPRESSED,
        "suppression_reason": None if scheduled else reason,
        "locale": who.locale,
        "timezone": who.zone,
        # Nothing about an erased person is kept, not even what the trigger said.
        "context": (
            body.context.model_dump(mode="json", exclude_none=True) if who.customer else {}
        ),
        "triggered_at": when.triggered,
        "due_at": due if scheduled else None,
        "expires_at": due + timedelta(hours=survey.expires_after_hours) if scheduled else None,
        "next_action_at": due if scheduled else None,
    }


scheduling = SchedulingService()
