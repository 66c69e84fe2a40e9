"""Invitations: surveys, contact rules, scheduling, the due/reminder/expiry job, one-tap
links and the funnel."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import get_settings
from feedback_api.customers.service import customer as customer_service
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import (
    FeedbackError,
    InvalidRequest,
    InvitationNotPending,
    InvitationNotSent,
    NotFound,
    SurveyKeyTaken,
)
from feedback_api.invitations import tokens
from feedback_api.invitations.repository import InvitationRepository, InvitationRow
from feedback_api.invitations.rules import ALL_CHANNELS, Decision, Reason, blocked, spacing
from feedback_api.invitations.schemas import (
    QUIET_CHANNELS,
    ContactRulesRead,
    ContactRulesUpdate,
    Delivery,
    Eligibility,
    FunnelRow,
    FunnelStats,
    InvitationBatchItem,
    InvitationBatchResult,
    InvitationChannel,
    InvitationCreate,
    InvitationFilters,
    InvitationLinks,
    InvitationMessage,
    InvitationRead,
    Message,
    MessageLink,
    QuietHoursBody,
    Recipient,
    SigningKeyRead,
    Status,
    SurveyCreate,
    SurveyRead,
    SurveyUpdate,
    Unsubscribed,
)
from feedback_api.invitations.timing import QuietHours, next_allowed
from feedback_api.kit.pagination import paginate
from feedback_api.kit.schemas import field_errors
from feedback_api.kit.time import check_not_future, utcnow
from feedback_api.metrics.service import PeriodBound
from feedback_api.metrics.service import metric as metric_service
from feedback_api.models import ContactRules, Customer, Invitation, SigningKey, Survey

DUE_BATCH = 100
ANSWERABLE = frozenset({Status.SCHEDULED, Status.SENT, Status.RESPONDED})


def ref_hash(key: bytes, tenant_id: UUID, ref: str) -> str:
    """What blocks are keyed by: stable per tenant and ref, not the ref itself, and not
    checkable against a guessed ref without the tenant's `ref_key`: HMAC-SHA256 under that
    key. Of the SHA-256 of tenant and ref rather than of the ref, because that digest is
    what blocks were keyed by before, so migration 0012 could re-key every block, an erased
    customer's included, without knowing a single ref."""
    inner = hashlib.sha256(f"{tenant_id}:{ref}".encode()).hexdigest()
    return hmac.new(key, inner.encode(), hashlib.sha256).hexdigest()


def pick_text(texts: Mapping[str, str] | None, locale: str, fallback: str) -> str | None:
    """The text for `locale`: exact tag, then same language, then the fallback locale's,
    then the first given."""
    if not texts:
        return None
    by_lower = {k.lower(): v for k, v in texts.items()}
    for wanted in (locale, fallback):
        tag = wanted.lower()
        if tag in by_lower:
            return by_lower[tag]
        language = tag.split("-")[0]
        for key, value in by_lower.items():
            if key.split("-")[0] == language:
                return value
    return next(iter(texts.values()))


def _quiet(rules: ContactRules) -> QuietHours | None:
    if rules.quiet_start is None or rules.quiet_end is None:
        return None
    return QuietHours(rules.quiet_start, rules.quiet_end)


def _rules_read(rules: ContactRules) -> ContactRulesRead:
    quiet = None
    if rules.quiet_start is not None and rules.quiet_end is not None:
        quiet = QuietHoursBody(start=rules.quiet_start, end=rules.quiet_end)
    return ContactRulesRead(
        frequency_days=rules.frequency_days,
        quiet_hours=quiet,
        max_reminders=rules.max_reminders,
        updated_at=rules.updated_at,
    )


def _survey_read(survey: Survey) -> SurveyRead:
    return SurveyRead.model_validate(survey, from_attributes=True)


class _Links:
    """Signs links with the tenant's newest key (loaded once per request or batch)."""

    def __init__(self, key: SigningKey, base_url: str) -> None:
        self.key = key
        self.base_url = base_url.rstrip("/")

    def token(self, invitation: Invitation) -> str | None:
        if Status(invitation.status) not in ANSWERABLE or invitation.expires_at is None:
            return None
        claims = tokens.Claims(
            invitation.tenant_id, invitation.id, self.key.kid, invitation.expires_at
        )
        return tokens.sign(claims, self.key.secret)

    def url(self, token: str, suffix: str = "") -> str:
        return f"{self.base_url}/r/{token}{suffix}"


class InvitationService:
    # --- tenant setup ------------------------------------------------------------------------

    async def seed_defaults(self, session: AsyncSession, tenant_id: UUID) -> None:
        await InvitationRepository(session).seed_rules(tenant_id)

    # --- surveys -------------------------------------------------------------------------------

    async def create_survey(
        self, session: AsyncSession, tenant_id: UUID, body: SurveyCreate
    ) -> SurveyRead:
        values = body.model_dump(exclude_none=True, mode="json")
        survey = Survey(tenant_id=tenant_id, **values)
        try:
            async with session.begin_nested():
                await InvitationRepository(session).add_survey(survey)
        except IntegrityError:
            raise SurveyKeyTaken(f"a survey with key {body.key!r} exists") from None
        await session.refresh(survey)
        return _survey_read(survey)

    async def _survey(self, session: AsyncSession, tenant_id: UUID, key: str) -> Survey:
        survey = await InvitationRepository(session).survey_by_key(tenant_id, key)
        if survey is None:
            raise NotFound(f"no survey with key {key!r}")
        return survey

    async def get_survey(self, session: AsyncSession, tenant_id: UUID, key: str) -> SurveyRead:
        return _survey_read(await self._survey(session, tenant_id, key))

    async def list_surveys(
        self, session: AsyncSession, tenant_id: UUID, *, limit: int, after: tuple[str] | None
    ) -> tuple[list[SurveyRead], str | None]:
        rows = await InvitationRepository(session).survey_page(
            tenant_id, limit=limit + 1, after=after
        )
        return paginate([_survey_read(s) for s in rows], limit, lambda s: (s.key,))

    async def update_survey(
        self, session: AsyncSession, tenant_id: UUID, key: str, body: SurveyUpdate
    ) -> SurveyRead:
        survey = await self._survey(session, tenant_id, key)
        for name, value in body.model_dump(exclude_unset=True, mode="json").items():
            setattr(survey, name, value)
        await session.flush()
        await session.refresh(survey)
        return _survey_read(survey)

    # --- contact rules -------------------------------------------------------------------------

    async def get_rules(self, session: AsyncSession, tenant_id: UUID) -> ContactRulesRead:
        return _rules_read(await InvitationRepository(session).rules(tenant_id))

    async def update_rules(
        self, session: AsyncSession, tenant_id: UUID, body: ContactRulesUpdate
    ) -> ContactRulesRead:
        rules = await InvitationRepository(session).rules(tenant_id)
        changes = body.model_dump(exclude_unset=True)
        if "frequency_days" in changes:
            rules.frequency_days = changes["frequency_days"]
        if "max_reminders" in changes:
            rules.max_reminders = changes["max_reminders"]
        if "quiet_hours" in changes:
            quiet = body.quiet_hours
            rules.quiet_start = quiet.start if quiet else None
            rules.quiet_end = quiet.end if quiet else None
        await session.flush()
        await session.refresh(rules)
        return _rules_read(rules)

    # --- signing keys --------------------------------------------------------------------------

    async def _signing_key(self, session: AsyncSession, tenant_id: UUID) -> SigningKey:
        """The key that signs new links; the tenant's first is made on first use."""
        repo = InvitationRepository(session)
        keys = await repo.signing_keys(tenant_id)
        if not keys:
            await repo.add_signing_key(tenant_id, 1, secrets.token_bytes(32))
            keys = await repo.signing_keys(tenant_id)
        return keys[-1]

    async def _links(self, session: AsyncSession, tenant_id: UUID) -> _Links:
        return _Links(await self._signing_key(session, tenant_id), get_settings().public_url)

    async def signing_keys(self, session: AsyncSession, tenant_id: UUID) -> list[SigningKeyRead]:
        await self._signing_key(session, tenant_id)
        keys = await InvitationRepository(session).signing_keys(tenant_id)
        return [
            SigningKeyRead(
                kid=k.kid, created_at=k.created_at, retires_at=k.retires_at, current=k is keys[-1]
            )
            for k in keys
        ]

    async def rotate(
        self, session: AsyncSession, tenant_id: UUID, grace: timedelta
    ) -> list[SigningKeyRead]:
        """A new key signs from now on; links signed with the older ones work for `grace`."""
        current = await self._signing_key(session, tenant_id)
        repo = InvitationRepository(session)
        if not await repo.add_signing_key(tenant_id, current.kid + 1, secrets.token_bytes(32)):
            raise FeedbackError("another rotation is under way; try again")
        await repo.retire_keys(tenant_id, current.kid + 1, utcnow() + grace)
        return await self.signing_keys(session, tenant_id)

    # --- reading invitations -------------------------------------------------------------------

    def _read(self, row: InvitationRow, links: _Links) -> InvitationRead:
        invitation, survey_key, customer_ref = row
        return self._to_read(invitation, survey_key, customer_ref, links)

    def _to_read(
        self, inv: Invitation, survey_key: str, customer_ref: str | None, links: _Links
    ) -> InvitationRead:
        token = links.token(inv)
        return InvitationRead(
            id=inv.id,
            survey=survey_key,
            customer=customer_ref,
            channel=InvitationChannel(inv.channel),
            trigger_ref=inv.trigger_ref,
            status=Status(inv.status),
            suppression_reason=Reason(inv.suppression_reason) if inv.suppression_reason else None,
            locale=inv.locale,
            timezone=inv.timezone,
            context=inv.context,
            triggered_at=inv.triggered_at,
            due_at=inv.due_at,
            expires_at=inv.expires_at,
            sent_at=inv.sent_at,
            reminders_sent=inv.reminders_sent,
            delivery=Delivery(inv.delivery) if inv.delivery else None,
            delivery_at=inv.delivery_at,
            responded_at=inv.responded_at,
            response_id=inv.response_id,
            links=(
                InvitationLinks(
                    token=token, landing_url=links.url(token), expires_at=inv.expires_at
                )
                if token is not None and inv.expires_at is not None
                else None
            ),
            created_at=inv.created_at,
            updated_at=inv.updated_at,
        )

    async def get(
        self, session: AsyncSession, tenant_id: UUID, invitation_id: UUID
    ) -> InvitationRead:
        row = await InvitationRepository(session).get(tenant_id, invitation_id)
        if row is None:
            raise NotFound("no such invitation")
        return self._read(row, await self._links(session, tenant_id))

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        filters: InvitationFilters,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[InvitationRead], str | None]:
        rows = await InvitationRepository(session).page(
            tenant_id, filters, limit=limit + 1, after=after
        )
        links = await self._links(session, tenant_id)
        reads = [self._read(r, links) for r in rows]
        return paginate(reads, limit, lambda r: (r.created_at, r.id))

    # --- scheduling ----------------------------------------------------------------------------

    async def _spacing(
        self,
        repo: InvitationRepository,
        tenant_id: UUID,
        customer_id: UUID,
        survey: Survey | None,
        rules: ContactRules,
        at: datetime,
    ) -> Decision:
        """The frequency rule and the survey's cooldown around `at`."""
        frequency = timedelta(days=rules.frequency_days)
        cooldown = timedelta(days=survey.cooldown_days) if survey and survey.cooldown_days else None
        reach = max(frequency, cooldown or frequency)
        # Every contact that can clash: from a window before `at` to anything scheduled later.
        contacts = await repo.contacts(tenant_id, customer_id, since=at - reach)
        return spacing(
            contacts,
            at,
            survey_id=survey.id if survey else None,
            frequency=frequency,
            cooldown=cooldown,
        )

    async def schedule(
        self, session: AsyncSession, tenant_id: UUID, body: InvitationCreate
    ) -> tuple[InvitationRead, bool]:
        """Schedule (or suppress, with the reason) one invitation. Returns it and whether
        it is new (False: the same survey and trigger_ref were sent before)."""
        repo = InvitationRepository(session)
        survey = await repo.survey_by_key(tenant_id, body.survey)
        if survey is None:
            raise InvalidRequest.at(
                ("body", "survey"),
                "unknown_survey",
                "no such survey",
                detail=f"no survey with key {body.survey!r}",
            )
        _check_trigger_time(body, ["body"])
        key = await repo.ref_key(tenant_id)
        return await self._schedule(session, tenant_id, body, survey, key)

    async def _schedule(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        body: InvitationCreate,
        survey: Survey,
        key: bytes,
    ) -> tuple[InvitationRead, bool]:
        repo = InvitationRepository(session)
        links = await self._links(session, tenant_id)
        if body.trigger_ref is not None:
            existing = await repo.get_by_trigger_if_any(tenant_id, survey.id, body.trigger_ref)
            if existing is not None:
                return self._read(existing, links), False
        defaults = await repo.tenant_defaults(tenant_id)
        assert defaults is not None  # the key's tenant exists
        tenant_zone, tenant_locale = defaults
        now = utcnow()
        channel = (body.channel or InvitationChannel(survey.default_channel)).value
        blocks = await repo.blocks(tenant_id, ref_hash(key, tenant_id, body.customer))

        customer: Customer | None = None
        if blocks.get(ALL_CHANNELS) != "erased":  # never re-create an erased customer
            ids = await customer_service.ensure(session, tenant_id, [body.customer])
            await repo.lock_customer(tenant_id, ids[body.customer])
            customer = (await repo.customers(tenant_id, [ids[body.customer]]))[ids[body.customer]]
        zone = (customer.timezone if customer else None) or tenant_zone
        locale = (customer.locale if customer else None) or tenant_locale

        triggered = body.triggered_at or now
        delay = (
            timedelta(seconds=body.delay_seconds)
            if body.delay_seconds is not None
            else timedelta(minutes=survey.delay_minutes)
        )
        intended = max(triggered + delay, now)
        rules = await repo.rules(tenant_id)
        quiet = _quiet(rules)
        due = intended
        if quiet is not None and InvitationChannel(channel) in QUIET_CHANNELS:
            due = next_allowed(intended, ZoneInfo(zone), quiet)
        reason = _barred(blocks, channel, survey)
        if reason is None:
            assert customer is not None  # only an erased customer is missing, and barred
            decision = await self._spacing(repo, tenant_id, customer.id, survey, rules, due)
            reason = decision.reason
        if reason is None and due - intended > timedelta(hours=survey.send_within_hours):
            reason = Reason.QUIET_HOURS_LIMIT
        scheduled = reason is None
        values: dict[str, Any] = {
            "tenant_id": tenant_id,
            "survey_id": survey.id,
            "customer_id": customer.id if customer else None,
            "channel": channel,
            "trigger_ref": body.trigger_ref,
            "status": Status.SCHEDULED if scheduled else Status.SUPPRESSED,
            "suppression_reason": None if scheduled else reason,
            "locale": locale,
            "timezone": zone,
            # Nothing about an erased person is kept, not even what the trigger said.
            "context": body.context.model_dump(mode="json", exclude_none=True) if customer else {},
            "triggered_at": triggered,
            "due_at": due if scheduled else None,
            "expires_at": due + timedelta(hours=survey.expires_after_hours) if scheduled else None,
            "next_action_at": due if scheduled else None,
        }
        new_id = await repo.insert(values)
        if new_id is None:  # a concurrent request with the same trigger_ref won
            assert body.trigger_ref is not None
            winner = await repo.get_by_trigger_if_any(tenant_id, survey.id, body.trigger_ref)
            assert winner is not None
            return self._read(winner, links), False
        row = await repo.get(tenant_id, new_id)
        assert row is not None
        read = self._read(row, links)
        event = EventType.INVITATION_SCHEDULED if scheduled else EventType.INVITATION_SUPPRESSED
        await event_service.emit(session, tenant_id, event, [read])
        return read, True

    async def schedule_batch(
        self, session: AsyncSession, tenant_id: UUID, raw_items: Sequence[Any]
    ) -> InvitationBatchResult:
        """Each item on its own, in one transaction. Items are taken in customer order (so
        concurrent batches lock customers in the same order), request order within one
        customer (so the first of two invitations for a customer is the one scheduled)."""
        results: dict[int, InvitationBatchItem] = {}
        valid: list[tuple[int, InvitationCreate]] = []
        for index, raw in enumerate(raw_items):
            try:
                valid.append((index, InvitationCreate.model_validate(raw)))
            except ValidationError as exc:
                errors = field_errors(exc.errors(include_url=False), ["body", "items", index])
                results[index] = InvitationBatchItem(
                    index=index,
                    status=422,
                    error={
                        "code": "validation_error",
                        "detail": "the item is not valid",
                        "errors": errors,
                    },
                )
        repo = InvitationRepository(session)
        key = await repo.ref_key(tenant_id)
        surveys: dict[str, Survey | None] = {}
        for index, item in sorted(valid, key=lambda v: v[1].customer):
            if item.survey not in surveys:
                surveys[item.survey] = await repo.survey_by_key(tenant_id, item.survey)
            survey = surveys[item.survey]
            try:
                _check_trigger_time(item, ["body", "items", index])
            except InvalidRequest as exc:
                results[index] = InvitationBatchItem(
                    index=index,
                    status=422,
                    error={"code": exc.code, "detail": exc.detail, "errors": exc.errors},
                )
                continue
            if survey is None:
                results[index] = InvitationBatchItem(
                    index=index,
                    status=422,
                    error={
                        "code": "validation_error",
                        "detail": f"no survey with key {item.survey!r}",
                        "errors": [
                            InvalidRequest.error(
                                ("body", "items", index, "survey"),
                                "unknown_survey",
                                "no such survey",
                            )
                        ],
                    },
                )
                continue
            read, created = await self._schedule(session, tenant_id, item, survey, key)
            results[index] = InvitationBatchItem(
                index=index,
                status=201 if created else 200,
                id=read.id,
                invitation_status=read.status,
                suppression_reason=read.suppression_reason,
            )
        ordered = [results[i] for i in range(len(raw_items))]
        fresh = [r for r in ordered if r.status == 201]
        return InvitationBatchResult(
            items=ordered,
            scheduled=sum(r.invitation_status is Status.SCHEDULED for r in fresh),
            suppressed=sum(r.invitation_status is Status.SUPPRESSED for r in fresh),
            duplicates=sum(r.status == 200 for r in ordered),
            failed=sum(r.status >= 400 for r in ordered),
        )

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
        self, session: AsyncSession, tenant_id: UUID, invitation_id: UUID, delivery: Delivery
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
                await repo.block(tenant_id, hashed, invitation.channel, "bounced")
        await repo.update(tenant_id, invitation_id, values)
        return await self.get(session, tenant_id, invitation_id)

    # --- eligibility and opt-outs ----------------------------------------------------------

    async def eligibility(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        ref: str,
        *,
        survey_key: str | None,
        channel: InvitationChannel | None,
    ) -> Eligibility:
        """May this customer be asked now? Reads only: asking creates nothing."""
        repo = InvitationRepository(session)
        survey = await self._survey(session, tenant_id, survey_key) if survey_key else None
        if channel is None and survey is not None:
            channel = InvitationChannel(survey.default_channel)
        blocks = await repo.blocks(tenant_id, await self._hash(repo, tenant_id, ref))
        reason = _barred(blocks, channel.value if channel else None, survey)
        if reason is not None:
            return Eligibility(eligible=False, reason=reason, next_eligible_at=None)
        customer = await repo.customer_by_ref(tenant_id, ref)
        rules = await repo.rules(tenant_id)
        now = utcnow()
        if channel in QUIET_CHANNELS and (quiet := _quiet(rules)) is not None:
            defaults = await repo.tenant_defaults(tenant_id)
            assert defaults is not None
            zone = ZoneInfo((customer.timezone if customer else None) or defaults[0])
            allowed = next_allowed(now, zone, quiet)
            if allowed > now:
                return Eligibility(
                    eligible=False, reason=Reason.QUIET_HOURS, next_eligible_at=allowed
                )
        if customer is None:
            return Eligibility(eligible=True, reason=None, next_eligible_at=None)
        decision = await self._spacing(repo, tenant_id, customer.id, survey, rules, now)
        return Eligibility(
            eligible=decision.eligible,
            reason=decision.reason,
            next_eligible_at=decision.next_eligible_at,
        )

    async def unsubscribe(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        ref: str,
        channel: InvitationChannel | None,
    ) -> Unsubscribed:
        """Block future invitations (on one channel or all), cancel the scheduled ones and
        stop reminders. Works for refs never seen, so a CRM can forward any opt-out."""
        repo = InvitationRepository(session)
        scope = channel.value if channel else ALL_CHANNELS
        await repo.block(tenant_id, await self._hash(repo, tenant_id, ref), scope, "unsubscribed")
        customer = await repo.customer_by_ref(tenant_id, ref)
        if customer is not None:
            for inv in await repo.open_for_customer(
                tenant_id, customer.id, channel.value if channel else None
            ):
                if inv.status == Status.SCHEDULED:
                    await repo.update(
                        tenant_id, inv.id, {"status": Status.CANCELLED, "next_action_at": None}
                    )
                else:
                    await repo.update(tenant_id, inv.id, {"next_action_at": inv.expires_at})
        result = Unsubscribed(external_ref=ref, channel=scope, unsubscribed_at=utcnow())
        await event_service.emit(session, tenant_id, EventType.CUSTOMER_UNSUBSCRIBED, [result])
        return result

    async def resubscribe(
        self, session: AsyncSession, tenant_id: UUID, ref: str, channel: InvitationChannel | None
    ) -> None:
        """Lift opt-outs and bounces; never an erasure (the block outlives the customer)."""
        repo = InvitationRepository(session)
        await repo.unblock(
            tenant_id, await self._hash(repo, tenant_id, ref), channel.value if channel else None
        )

    # --- the worker ------------------------------------------------------------------------

    async def process_due(
        self, session: AsyncSession, now: datetime, limit: int = DUE_BATCH
    ) -> int:
        """Send, remind and expire what is due, once each: rows are claimed with SKIP LOCKED
        and their next step commits with the events it emits."""
        repo = InvitationRepository(session)
        due = await repo.claim_due(now, limit)
        by_tenant: dict[UUID, list[Invitation]] = {}
        for inv in due:
            by_tenant.setdefault(inv.tenant_id, []).append(inv)
        for tenant_id, invitations in by_tenant.items():
            await self._process_tenant(session, tenant_id, invitations, now)
        return len(due)

    async def _process_tenant(
        self, session: AsyncSession, tenant_id: UUID, invitations: list[Invitation], now: datetime
    ) -> None:
        repo = InvitationRepository(session)
        surveys = await repo.surveys(tenant_id, list({i.survey_id for i in invitations}))
        customers = await repo.customers(
            tenant_id, list({i.customer_id for i in invitations if i.customer_id})
        )
        rules = await repo.rules(tenant_id)
        defaults = await repo.tenant_defaults(tenant_id)
        assert defaults is not None
        links = await self._links(session, tenant_id)
        # About to message them: opt-outs and bounces since scheduling still count.
        key = await repo.ref_key(tenant_id)
        hashes = {c.id: ref_hash(key, tenant_id, c.external_ref) for c in customers.values()}
        blocks = await repo.blocks_of(tenant_id, list(hashes.values()))
        erased = {ALL_CHANNELS: "erased"}  # only an erased customer is gone
        emitted: dict[EventType, list[Any]] = {}
        for inv in invitations:
            survey = surveys[inv.survey_id]
            customer = customers.get(inv.customer_id) if inv.customer_id else None
            ref = customer.external_ref if customer else None
            assert inv.expires_at is not None
            if inv.status in (Status.SCHEDULED, Status.SENT) and now < inv.expires_at:
                theirs = blocks.get(hashes[customer.id], {}) if customer else erased
                reason = _barred(theirs, inv.channel, survey)
                if reason is not None and inv.status == Status.SCHEDULED:
                    inv.status, inv.suppression_reason = Status.SUPPRESSED, reason
                    inv.due_at = inv.expires_at = inv.next_action_at = None
                    read = self._to_read(inv, survey.key, ref, links)
                    emitted.setdefault(EventType.INVITATION_SUPPRESSED, []).append(read)
                    continue
                if reason is not None:  # sent already: just no reminders
                    inv.next_action_at = inv.expires_at
                    continue
            event, reminder = self._step(inv, survey, rules, now)
            if event is None:
                continue
            read = self._to_read(inv, survey.key, ref, links)
            payload: Any = read
            if event is not EventType.INVITATION_EXPIRED:
                payload = self._message(read, inv, survey, customer, links, reminder, defaults[1])
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
            inv.next_action_at = self._next_reminder(inv, survey, rules, now)
            return EventType.INVITATION_DUE, 0
        inv.reminders_sent += 1
        inv.last_reminder_at = now
        inv.next_action_at = self._next_reminder(inv, survey, rules, now)
        return EventType.INVITATION_REMINDER_DUE, inv.reminders_sent

    def _next_reminder(
        self, inv: Invitation, survey: Survey, rules: ContactRules, since: datetime
    ) -> datetime | None:
        """The next reminder's time, or the expiry when no reminder is left to send."""
        if survey.reminder_after_hours is None or inv.reminders_sent >= rules.max_reminders:
            return inv.expires_at
        at = since + timedelta(hours=survey.reminder_after_hours)
        quiet = _quiet(rules)
        if quiet is not None and InvitationChannel(inv.channel) in QUIET_CHANNELS:
            at = next_allowed(at, ZoneInfo(inv.timezone), quiet)
        assert inv.expires_at is not None
        return at if at < inv.expires_at else inv.expires_at

    def _message(
        self,
        read: InvitationRead,
        inv: Invitation,
        survey: Survey,
        customer: Customer | None,
        links: _Links,
        reminder: int,
        tenant_locale: str,
    ) -> InvitationMessage:
        assert read.links is not None
        assert inv.expires_at is not None
        token = read.links.token
        question = pick_text(survey.question, inv.locale, tenant_locale)
        assert question is not None
        message = Message(
            reminder=reminder,
            locale=inv.locale,
            kind=survey.kind,  # type: ignore[arg-type]
            scale_min=survey.scale_min,
            scale_max=survey.scale_max,
            question=question,
            follow_up=pick_text(survey.follow_up, inv.locale, tenant_locale),
            links=[
                MessageLink(score=s, url=links.url(token, f"?score={s}"))
                for s in range(survey.scale_min, survey.scale_max + 1)
            ],
            landing_url=links.url(token),
            unsubscribe_url=links.url(token, "/unsubscribe"),
            expires_at=inv.expires_at,
        )
        recipient = (
            Recipient(
                external_ref=customer.external_ref,
                name=customer.name,
                email=customer.email,
                phone=customer.phone,
                locale=customer.locale,
                timezone=customer.timezone,
            )
            if customer is not None
            else None
        )
        return InvitationMessage(**read.model_dump(), message=message, recipient=recipient)

    # --- funnel ------------------------------------------------------------------------------

    async def funnel(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        lo: PeriodBound,
        hi: PeriodBound,
        by: str | None,
    ) -> FunnelStats:
        """Over invitations created in the period."""
        start, end, _ = await metric_service.period(session, tenant_id, lo, hi)
        repo = InvitationRepository(session)
        rows = await repo.funnel(tenant_id, start, end, by)
        medians: dict[str | None, float | None] = {
            r.grp: r.median for r in await repo.response_minutes(tenant_id, start, end, by)
        }
        if by is not None:
            overall = await repo.response_minutes(tenant_id, start, end, None)
            medians[None] = overall[0].median if overall else None
        groups: dict[str | None, FunnelRow] = {}
        for r in rows:
            row = groups.setdefault(r.grp, _empty_row(r.grp))
            _add(row, r)
        total = _empty_row(None)
        for r in rows:
            _add(total, r)
        for key, row in groups.items():
            _finish(row, medians.get(key) if by is not None else None)
        _finish(total, medians.get(None))
        ordered = sorted(groups.values(), key=lambda g: (-g.created, g.group or ""))
        return FunnelStats(start=start, end=end, total=total, groups=ordered if by else [])

    # --- privacy -----------------------------------------------------------------------------

    async def export_customer(
        self, session: AsyncSession, tenant_id: UUID, customer_id: UUID
    ) -> list[InvitationRead]:
        rows = await InvitationRepository(session).all_for_customer(tenant_id, customer_id)
        links = await self._links(session, tenant_id)
        return [self._read(r, links) for r in rows]

    async def block_hash(self, session: AsyncSession, tenant_id: UUID, ref: str) -> str:
        """The keyed hash a ref's contact blocks are stored under (see `ref_hash`)."""
        return await self._hash(InvitationRepository(session), tenant_id, ref)

    async def _hash(self, repo: InvitationRepository, tenant_id: UUID, ref: str) -> str:
        return ref_hash(await repo.ref_key(tenant_id), tenant_id, ref)

    async def forget_customer(
        self, session: AsyncSession, tenant_id: UUID, customer_id: UUID, ref: str
    ) -> list[UUID]:
        """Erasure: unlink their invitations and drop what they said about the person (trigger
        ref, context, the customer's locale and time zone), stop what was pending, and
        remember (by the keyed hash of the ref) never to invite them again. Returns the
        invitations unlinked."""
        repo = InvitationRepository(session)
        hashed = await self._hash(repo, tenant_id, ref)
        await repo.replace_blocks(tenant_id, hashed, ALL_CHANNELS, "erased")
        return await repo.forget_customer(tenant_id, customer_id)


def _barred(blocks: Mapping[str, str], channel: str | None, survey: Survey | None) -> Reason | None:
    """Reasons that hold until something changes: a block, or an inactive survey."""
    reason = blocked(blocks, channel)
    if reason is None and survey is not None and not survey.active:
        reason = Reason.SURVEY_INACTIVE
    return reason


def _check_trigger_time(body: InvitationCreate, loc: list[str | int]) -> None:
    """A trigger in the future (beyond clock skew) is a mistake: use `delay_seconds`."""
    check_not_future(
        body.triggered_at,
        timedelta(seconds=get_settings().clock_skew_seconds),
        (*loc, "triggered_at"),
        "triggered_at is in the future; to ask later, use delay_seconds",
    )


def _empty_row(group: str | None) -> FunnelRow:
    return FunnelRow(
        group=group,
        created=0,
        scheduled=0,
        suppressed=0,
        suppressed_by_reason={},
        sent=0,
        delivered=0,
        bounced=0,
        responded=0,
        response_rate=None,
        median_minutes_to_respond=None,
    )


def _add(row: FunnelRow, r: Any) -> None:
    row.created += r.created
    row.scheduled += r.scheduled
    row.suppressed += r.created - r.scheduled
    if r.suppression_reason is not None:
        reasons = row.suppressed_by_reason
        reasons[r.suppression_reason] = (
            reasons.get(r.suppression_reason, 0) + r.created - r.scheduled
        )
    row.sent += r.sent
    row.delivered += r.delivered
    row.bounced += r.bounced
    row.responded += r.responded


def _finish(row: FunnelRow, median: float | None) -> None:
    row.response_rate = row.responded / row.sent if row.sent else None
    row.median_minutes_to_respond = round(median, 2) if median is not None else None


invitation = InvitationService()
