from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    case,
    delete,
    func,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.invitations.rules import Contact
from feedback_api.invitations.schemas import InvitationFilters
from feedback_api.kit.rawsql import driver_connection
from feedback_api.models import (
    ContactBlock,
    ContactRules,
    Customer,
    Invitation,
    SigningKey,
    Survey,
    Tenant,
)
from feedback_api.models.invitation import CONTACTING

InvitationRow = Row[Invitation, str, str | None]


def _group(by: str | None) -> ColumnElement[Any]:
    if by == "survey":
        return Survey.key.expression
    if by == "channel":
        return Invitation.channel.expression
    return literal_column("NULL::text")


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- surveys ---------------------------------------------------------------------------

    async def add_survey(self, survey: Survey) -> None:
        self.session.add(survey)
        await self.session.flush()

    async def survey_by_key(self, tenant_id: UUID, key: str) -> Survey | None:
        stmt = select(Survey).where(Survey.tenant_id == tenant_id, Survey.key == key)
        return (await self.session.scalars(stmt)).one_or_none()

    async def surveys(self, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Survey]:
        stmt = select(Survey).where(Survey.tenant_id == tenant_id, Survey.id.in_(ids))
        return {s.id: s for s in (await self.session.scalars(stmt)).all()}

    async def survey_page(
        self, tenant_id: UUID, *, limit: int, after: tuple[str] | None
    ) -> list[Survey]:
        stmt = select(Survey).where(Survey.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(Survey.key > after[0])
        stmt = stmt.order_by(Survey.key).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def tenant_defaults(self, tenant_id: UUID) -> tuple[str, str] | None:
        """The tenant's time zone and locale, the fallbacks for a customer's."""
        stmt = select(Tenant.timezone, Tenant.locale).where(Tenant.id == tenant_id)
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def publishes_reviews(self, tenant_id: UUID) -> bool:
        stmt = select(Tenant.public_feeds).where(Tenant.id == tenant_id)
        return bool((await self.session.scalars(stmt)).one_or_none())

    async def customer_by_ref(self, tenant_id: UUID, ref: str) -> Customer | None:
        stmt = select(Customer).where(Customer.tenant_id == tenant_id, Customer.external_ref == ref)
        return (await self.session.scalars(stmt)).one_or_none()

    async def customers(self, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Customer]:
        stmt = select(Customer).where(Customer.tenant_id == tenant_id, Customer.id.in_(ids))
        return {c.id: c for c in (await self.session.scalars(stmt)).all()}

    # --- contact rules and blocks ----------------------------------------------------------

    async def seed_rules(self, tenant_id: UUID) -> None:
        await self.session.execute(
            insert(ContactRules).values(tenant_id=tenant_id).on_conflict_do_nothing()
        )

    async def rules(self, tenant_id: UUID) -> ContactRules:
        stmt = select(ContactRules).where(ContactRules.tenant_id == tenant_id)
        return (await self.session.scalars(stmt)).one()

    async def ref_key(self, tenant_id: UUID) -> bytes:
        stmt = select(ContactRules.ref_key).where(ContactRules.tenant_id == tenant_id)
        return (await self.session.scalars(stmt)).one()

    async def blocks(self, tenant_id: UUID, ref_hash: str) -> dict[str, str]:
        stmt = select(ContactBlock.channel, ContactBlock.reason).where(
            ContactBlock.tenant_id == tenant_id, ContactBlock.ref_hash == ref_hash
        )
        return dict((await self.session.execute(stmt)).all())

    async def blocks_of(
        self, tenant_id: UUID, ref_hashes: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        """`blocks` for many customers in one query: ref hash → channel → reason."""
        stmt = select(ContactBlock.ref_hash, ContactBlock.channel, ContactBlock.reason).where(
            ContactBlock.tenant_id == tenant_id, ContactBlock.ref_hash.in_(ref_hashes)
        )
        found: dict[str, dict[str, str]] = {}
        for ref, channel, reason in (await self.session.execute(stmt)).all():
            found.setdefault(ref, {})[channel] = reason
        return found

    async def block(
        self,
        tenant_id: UUID,
        ref_hash: str,
        channel: str,
        reason: str,
        customer_id: UUID | None = None,
    ) -> None:
        """Add a block; an erasure overrides any other reason, nothing overrides erasure."""
        stmt = insert(ContactBlock).values(
            tenant_id=tenant_id,
            ref_hash=ref_hash,
            channel=channel,
            reason=reason,
            customer_id=customer_id,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    ContactBlock.tenant_id,
                    ContactBlock.ref_hash,
                    ContactBlock.channel,
                ],
                set_={
                    "reason": stmt.excluded.reason,
                    "customer_id": func.coalesce(
                        stmt.excluded.customer_id, ContactBlock.customer_id
                    ),
                },
                where=ContactBlock.reason != "erased",
            )
        )

    async def blocked_customers(
        self,
        tenant_id: UUID,
        reason: str,
        channels: Sequence[str],
        *,
        since: datetime | None,
        until: datetime | None,
        offset: int,
        limit: int,
    ) -> list[tuple[Customer, datetime]]:
        """Known customers with a block of `reason` on one of `channels`, oldest block
        first, each once (with their first such block's time)."""
        first = (
            select(ContactBlock.customer_id, func.min(ContactBlock.created_at).label("at"))
            .where(
                ContactBlock.tenant_id == tenant_id,
                ContactBlock.reason == reason,
                ContactBlock.channel.in_(channels),
                ContactBlock.customer_id.is_not(None),
            )
            .group_by(ContactBlock.customer_id)
            .subquery()
        )
        stmt = select(Customer, first.c.at).join(
            first, (Customer.tenant_id == tenant_id) & (Customer.id == first.c.customer_id)
        )
        if since is not None:
            stmt = stmt.where(first.c.at >= since)
        if until is not None:
            stmt = stmt.where(first.c.at <= until)
        stmt = stmt.order_by(first.c.at, Customer.id).offset(offset).limit(limit)
        return [(c, at) for c, at in (await self.session.execute(stmt)).all()]

    async def replace_blocks(
        self, tenant_id: UUID, ref_hash: str, channel: str, reason: str
    ) -> None:
        """This one block instead of every other of the ref (an erasure: what they opted out
        of before no longer matters, and is not kept)."""
        await self.session.execute(
            delete(ContactBlock).where(
                ContactBlock.tenant_id == tenant_id, ContactBlock.ref_hash == ref_hash
            )
        )
        await self.session.execute(
            insert(ContactBlock)
            .values(tenant_id=tenant_id, ref_hash=ref_hash, channel=channel, reason=reason)
            .on_conflict_do_nothing()  # a concurrent erasure of the same ref made it
        )

    async def unblock(self, tenant_id: UUID, ref_hash: str, channel: str | None) -> None:
        """Lift opt-outs and bounces. An erasure's block is never lifted: the customer asked
        to be forgotten, and no re-created record or forwarded opt-in undoes that."""
        stmt = delete(ContactBlock).where(
            ContactBlock.tenant_id == tenant_id,
            ContactBlock.ref_hash == ref_hash,
            ContactBlock.reason != "erased",
        )
        if channel is not None:
            stmt = stmt.where(ContactBlock.channel == channel)
        await self.session.execute(stmt)

    # --- invitations -----------------------------------------------------------------------

    async def lock_customer(self, tenant_id: UUID, customer_id: UUID) -> None:
        """Serialise scheduling per customer, so two requests cannot both pass the frequency
        rule. Callers lock customers in ref order (batches sort), never in a cycle."""
        conn = await driver_connection(self.session)
        await conn.execute(
            "SELECT 1 FROM customers WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
            tenant_id,
            customer_id,
        )

    async def contacts(
        self, tenant_id: UUID, customer_id: UUID, *, since: datetime
    ) -> list[Contact]:
        stmt = select(Invitation.survey_id, Invitation.due_at).where(
            Invitation.tenant_id == tenant_id,
            Invitation.customer_id == customer_id,
            text(f"invitations.status IN {CONTACTING}"),
            Invitation.due_at > since,
        )
        rows = (await self.session.execute(stmt)).all()
        return [Contact(survey_id, due_at) for survey_id, due_at in rows if due_at is not None]

    async def insert(self, values: dict[str, Any]) -> UUID | None:
        """Insert unless (survey, trigger_ref) is taken; returns the id, or None if taken."""
        stmt = (
            insert(Invitation)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=[Invitation.tenant_id, Invitation.survey_id, Invitation.trigger_ref],
                index_where=Invitation.trigger_ref.is_not(None),
            )
            .returning(Invitation.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    @staticmethod
    def _read() -> Select[Invitation, str, str | None]:
        return (
            select(Invitation, Survey.key, Customer.external_ref)
            .join(
                Survey,
                (Survey.tenant_id == Invitation.tenant_id) & (Survey.id == Invitation.survey_id),
            )
            .outerjoin(
                Customer,
                (Customer.tenant_id == Invitation.tenant_id)
                & (Customer.id == Invitation.customer_id),
            )
        )

    async def get(
        self, tenant_id: UUID, invitation_id: UUID, *, for_update: bool = False
    ) -> InvitationRow | None:
        stmt = self._read().where(Invitation.tenant_id == tenant_id, Invitation.id == invitation_id)
        if for_update:
            stmt = stmt.with_for_update(of=Invitation)
        return (
            await self.session.execute(stmt, execution_options={"populate_existing": True})
        ).first()

    async def get_by_trigger_if_any(
        self, tenant_id: UUID, survey_id: UUID, trigger_ref: str
    ) -> InvitationRow | None:
        stmt = self._read().where(
            Invitation.tenant_id == tenant_id,
            Invitation.survey_id == survey_id,
            Invitation.trigger_ref == trigger_ref,
        )
        return (await self.session.execute(stmt)).first()

    async def page(
        self,
        tenant_id: UUID,
        f: InvitationFilters,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> Sequence[InvitationRow]:
        stmt = self._read().where(Invitation.tenant_id == tenant_id)
        if f.status is not None:
            stmt = stmt.where(Invitation.status == f.status)
        if f.survey is not None:
            stmt = stmt.where(Survey.key == f.survey)
        if f.channel is not None:
            stmt = stmt.where(Invitation.channel == f.channel)
        if f.customer is not None:
            stmt = stmt.where(Customer.external_ref == f.customer)
        if f.trigger_ref is not None:
            stmt = stmt.where(Invitation.trigger_ref == f.trigger_ref)
        if after is not None:
            stmt = stmt.where(tuple_(Invitation.created_at, Invitation.id) < tuple_(*after))
        stmt = stmt.order_by(Invitation.created_at.desc(), Invitation.id.desc()).limit(limit)
        return (await self.session.execute(stmt)).all()

    async def update(self, tenant_id: UUID, invitation_id: UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(Invitation)
            .where(Invitation.tenant_id == tenant_id, Invitation.id == invitation_id)
            .values(**values, updated_at=func.now())
        )

    async def claim_due(self, now: datetime, limit: int) -> Sequence[Invitation]:
        """Due invitations of any tenant, locked; rows another worker holds are skipped, so
        each is acted on by one worker, and its new `next_action_at` commits with the act."""
        stmt = (
            select(Invitation)
            .where(Invitation.next_action_at <= now)
            .order_by(Invitation.next_action_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(stmt)).all()

    async def open_for_customer(
        self, tenant_id: UUID, customer_id: UUID, channel: str | None
    ) -> Sequence[Invitation]:
        stmt = select(Invitation).where(
            Invitation.tenant_id == tenant_id,
            Invitation.customer_id == customer_id,
            Invitation.status.in_(("scheduled", "sent")),
        )
        if channel is not None:
            stmt = stmt.where(Invitation.channel == channel)
        return (await self.session.scalars(stmt.with_for_update())).all()

    async def all_for_customer(self, tenant_id: UUID, customer_id: UUID) -> Sequence[InvitationRow]:
        stmt = (
            self._read()
            .where(Invitation.tenant_id == tenant_id, Invitation.customer_id == customer_id)
            .order_by(Invitation.created_at, Invitation.id)
        )
        return (await self.session.execute(stmt)).all()

    async def forget_customer(self, tenant_id: UUID, customer_id: UUID) -> list[UUID]:
        """Erasure: unlink, drop the trigger ref and the context, put the tenant's locale
        and time zone in place of the customer's (a rare zone would tie their invitations
        together), stop whatever was pending."""
        tenant = Tenant.id == tenant_id
        stmt = (
            update(Invitation)
            .where(Invitation.tenant_id == tenant_id, Invitation.customer_id == customer_id)
            .values(
                customer_id=None,
                trigger_ref=None,
                context={},
                locale=select(Tenant.locale).where(tenant).scalar_subquery(),
                timezone=select(Tenant.timezone).where(tenant).scalar_subquery(),
                next_action_at=None,
                # Nothing pending stays open: their links close too.
                status=case(
                    (Invitation.status.in_(("scheduled", "sent")), "cancelled"),
                    else_=Invitation.status,
                ),
                # Left as it was (else the model's onupdate sets it): one erasure time on
                # all of them would tie them together again.
                updated_at=Invitation.updated_at,
            )
            .returning(Invitation.id)
        )
        return list((await self.session.scalars(stmt)).all())

    @staticmethod
    def _created_in(
        columns: Sequence[Any], tenant_id: UUID, start: datetime, end: datetime
    ) -> Select[Any]:
        """`columns` over the tenant's invitations created in [start, end), with the survey."""
        return (
            select(*columns)
            .select_from(Invitation)
            .join(
                Survey,
                (Survey.tenant_id == Invitation.tenant_id) & (Survey.id == Invitation.survey_id),
            )
            .where(
                Invitation.tenant_id == tenant_id,
                Invitation.created_at >= start,
                Invitation.created_at < end,
            )
        )

    async def funnel(
        self, tenant_id: UUID, start: datetime, end: datetime, by: str | None
    ) -> Sequence[Any]:
        """Per group and suppression reason: counts by status and delivery."""
        counts = [
            _group(by).label("grp"),
            Invitation.suppression_reason,
            func.count().label("created"),
            func.count().filter(Invitation.status != "suppressed").label("scheduled"),
            func.count().filter(Invitation.sent_at.is_not(None)).label("sent"),
            func.count().filter(Invitation.delivery == "delivered").label("delivered"),
            func.count().filter(Invitation.delivery == "bounced").label("bounced"),
            func.count().filter(Invitation.responded_at.is_not(None)).label("responded"),
        ]
        stmt = self._created_in(counts, tenant_id, start, end).group_by(
            text("1"), Invitation.suppression_reason
        )
        return list((await self.session.execute(stmt)).all())

    async def response_minutes(
        self, tenant_id: UUID, start: datetime, end: datetime, by: str | None
    ) -> Sequence[Any]:
        """Per group: the median minutes from sending to the first answer."""
        minutes = func.extract("epoch", Invitation.responded_at - Invitation.sent_at) / 60
        median = func.percentile_cont(0.5).within_group(minutes).label("median")
        stmt = (
            self._created_in([_group(by).label("grp"), median], tenant_id, start, end)
            .where(Invitation.responded_at.is_not(None), Invitation.sent_at.is_not(None))
            .group_by(text("1"))
        )
        return list((await self.session.execute(stmt)).all())

    # --- signing keys ----------------------------------------------------------------------

    async def signing_keys(self, tenant_id: UUID) -> list[SigningKey]:
        stmt = select(SigningKey).where(SigningKey.tenant_id == tenant_id).order_by(SigningKey.kid)
        return list((await self.session.scalars(stmt)).all())

    async def signing_key(self, tenant_id: UUID, kid: int) -> SigningKey | None:
        return await self.session.get(SigningKey, (tenant_id, kid))

    async def add_signing_key(self, tenant_id: UUID, kid: int, secret: bytes) -> bool:
        """False when that kid exists already (a concurrent rotation won)."""
        stmt = (
            insert(SigningKey)
            .values(tenant_id=tenant_id, kid=kid, secret=secret)
            .on_conflict_do_nothing()
            .returning(SigningKey.kid)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def retire_keys(self, tenant_id: UUID, below_kid: int, at: datetime) -> None:
        await self.session.execute(
            update(SigningKey)
            .where(
                SigningKey.tenant_id == tenant_id,
                SigningKey.kid < below_kid,
                (SigningKey.retires_at.is_(None)) | (SigningKey.retires_at > at),
            )
            .values(retires_at=at)
        )
