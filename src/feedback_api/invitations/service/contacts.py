"""Contact rules and eligibility: how often and when a customer may be asked (frequency,
survey cooldowns, quiet hours), and who must not be asked at all (opt-outs, bounces,
erasures, kept as contact blocks under a keyed hash of the customer's ref)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.invitations.repository import InvitationRepository
from feedback_api.invitations.rules import ALL_CHANNELS, Decision, Reason, blocked, spacing
from feedback_api.invitations.schemas import (
    QUIET_CHANNELS,
    ContactRulesRead,
    ContactRulesUpdate,
    Eligibility,
    InvitationChannel,
    QuietHoursBody,
    Status,
    Unsubscribed,
)
from feedback_api.invitations.service.surveys import surveys as survey_service
from feedback_api.invitations.timing import QuietHours, next_allowed
from feedback_api.kit.time import utcnow
from feedback_api.models import ContactRules, Customer, Survey


def ref_hash(key: bytes, tenant_id: UUID, ref: str) -> str:
    """What blocks are keyed by: stable per tenant and ref, not the ref itself, and not
    checkable against a guessed ref without the tenant's `ref_key`: HMAC-SHA256 under that
    key. Of the SHA-256 of tenant and ref rather than of the ref, because that digest is
    what blocks were keyed by before, so migration 0012 could re-key every block, an erased
    customer's included, without knowing a single ref."""
    inner = hashlib.sha256(f"{tenant_id}:{ref}".encode()).hexdigest()
    return hmac.new(key, inner.encode(), hashlib.sha256).hexdigest()


def quiet_hours(rules: ContactRules) -> QuietHours | None:
    if rules.quiet_start is None or rules.quiet_end is None:
        return None
    return QuietHours(rules.quiet_start, rules.quiet_end)


def barred(blocks: Mapping[str, str], channel: str | None, survey: Survey | None) -> Reason | None:
    """Reasons that hold until something changes: a block, or an inactive survey."""
    reason = blocked(blocks, channel)
    if reason is None and survey is not None and not survey.active:
        reason = Reason.SURVEY_INACTIVE
    return reason


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


def address_refs(email: str | None, phone: str | None) -> list[str]:
    """What an erasure remembers besides the ref, as keyed hashes: the person's addresses
    (`mailto:` lower-cased, `tel:`), so that an import that knows them by address only does
    not bring them back (compat/delighted/importer.py)."""
    return [
        *([f"mailto:{email.strip().lower()}"] if email else []),
        *([f"tel:{phone.strip()}"] if phone else []),
    ]


class ContactService:
    # --- the rules ---------------------------------------------------------------------------

    async def seed_defaults(self, session: AsyncSession, tenant_id: UUID) -> None:
        await InvitationRepository(session).seed_rules(tenant_id)

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

    async def spacing(
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
        survey = await survey_service.survey(session, tenant_id, survey_key) if survey_key else None
        if channel is None and survey is not None:
            channel = InvitationChannel(survey.default_channel)
        blocks = await repo.blocks(tenant_id, await self.block_hash(session, tenant_id, ref))
        reason = barred(blocks, channel.value if channel else None, survey)
        if reason is not None:
            return Eligibility(eligible=False, reason=reason, next_eligible_at=None)
        customer = await repo.customer_by_ref(tenant_id, ref)
        rules = await repo.rules(tenant_id)
        now = utcnow()
        if channel in QUIET_CHANNELS and (quiet := quiet_hours(rules)) is not None:
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
        decision = await self.spacing(repo, tenant_id, customer.id, survey, rules, now)
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
        hashed = await self.block_hash(session, tenant_id, ref)
        customer = await repo.customer_by_ref(tenant_id, ref)
        await repo.block(
            tenant_id, hashed, scope, "unsubscribed", customer.id if customer else None
        )
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
        hashed = await self.block_hash(session, tenant_id, ref)
        await InvitationRepository(session).unblock(
            tenant_id, hashed, channel.value if channel else None
        )

    async def blocked_customers(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        reason: Literal["unsubscribed", "bounced"],
        channels: Sequence[str],
        *,
        since: datetime | None,
        until: datetime | None,
        offset: int,
        limit: int,
    ) -> list[tuple[Customer, datetime]]:
        """Customers who opted out (or bounced) on one of `channels` (`*`: every channel),
        by when, oldest first. Opt-outs of refs we have no customer for are not listed:
        only their keyed hash is kept."""
        return await InvitationRepository(session).blocked_customers(
            tenant_id, reason, channels, since=since, until=until, offset=offset, limit=limit
        )

    async def block_hash(self, session: AsyncSession, tenant_id: UUID, ref: str) -> str:
        """The keyed hash a ref's contact blocks are stored under (see `ref_hash`)."""
        key = await InvitationRepository(session).ref_key(tenant_id)
        return ref_hash(key, tenant_id, ref)

    async def erased(self, session: AsyncSession, tenant_id: UUID, refs: Sequence[str]) -> set[str]:
        """Of these refs (or `address_refs`), those of someone erased here."""
        blocks = await self.blocks_for(session, tenant_id, refs)
        return {ref for ref, channels in blocks.items() if channels.get(ALL_CHANNELS) == "erased"}

    async def blocks_for(
        self, session: AsyncSession, tenant_id: UUID, refs: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        """The contact blocks of many customers, by ref: channel (`*`: every channel) →
        reason. Refs without a block are absent."""
        if not refs:
            return {}
        key = await InvitationRepository(session).ref_key(tenant_id)
        hashes = {ref_hash(key, tenant_id, ref): ref for ref in refs}
        found = await InvitationRepository(session).blocks_of(tenant_id, list(hashes))
        return {hashes[h]: channels for h, channels in found.items()}


contacts = ContactService()
