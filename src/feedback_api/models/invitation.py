from __future__ import annotations

from datetime import datetime, time
from typing import Any
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Time,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.ids import new_id
from feedback_api.kit.models import Base, TimestampMixin

INVITATION_CHANNELS = "('email', 'sms', 'wechat', 'app', 'web')"
INVITATION_STATUSES = "('scheduled', 'sent', 'responded', 'expired', 'cancelled', 'suppressed')"
# Invitations that count as contact for the frequency and cooldown rules.
CONTACTING = "('scheduled', 'sent', 'responded', 'expired')"


class Survey(TimestampMixin, Base):
    """What to ask, in which languages, and when: the template invitations are made from."""

    __tablename__ = "surveys"
    __table_args__ = (
        CheckConstraint("kind IN ('nps', 'csat', 'ces', 'rating')", name="kind"),
        CheckConstraint(f"default_channel IN {INVITATION_CHANNELS}", name="default_channel"),
        Index("uq_surveys_tenant_id_key", "tenant_id", "key", unique=True),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(8))
    scale_min: Mapped[int] = mapped_column(SmallInteger)
    scale_max: Mapped[int] = mapped_column(SmallInteger)
    # {"en": "How likely …?", "zh-CN": "您有多大可能…？"}
    question: Mapped[dict[str, str]] = mapped_column(JSONB)
    follow_up: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    thank_you: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    default_channel: Mapped[str] = mapped_column(String(16))
    touchpoint: Mapped[str | None] = mapped_column(String(100))
    delay_minutes: Mapped[int] = mapped_column(server_default=text("0"))
    expires_after_hours: Mapped[int] = mapped_column(server_default=text("168"))
    reminder_after_hours: Mapped[int | None]
    cooldown_days: Mapped[int | None]
    # Quiet hours may push a due time later; beyond this many hours the moment has passed
    # and the invitation is suppressed (`quiet_hours_limit`).
    send_within_hours: Mapped[int] = mapped_column(server_default=text("24"))
    active: Mapped[bool] = mapped_column(server_default=text("true"))


class ContactRules(Base):
    """A tenant's limits on how often and when customers are asked. One row per tenant."""

    __tablename__ = "contact_rules"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    frequency_days: Mapped[int] = mapped_column(server_default=text("30"))
    # Both null: no quiet hours. Local time in the customer's (else the tenant's) zone.
    quiet_start: Mapped[time | None] = mapped_column(Time, server_default=text("'21:00'"))
    quiet_end: Mapped[time | None] = mapped_column(Time, server_default=text("'09:00'"))
    max_reminders: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    # Key of the HMAC that turns external refs into contact-block hashes (invitations.
    # service.ref_hash): random per tenant, never shown and never rotated (a block cannot be
    # re-keyed without the ref it was made from). Without it a stored hash cannot be
    # confirmed by hashing guessed refs; with it, the service can, which is what lets an
    # erased customer's block still match their ref.
    ref_key: Mapped[bytes] = mapped_column(
        LargeBinary,
        server_default=text(
            "decode(replace(gen_random_uuid()::text, '-', '') "
            "|| replace(gen_random_uuid()::text, '-', ''), 'hex')"
        ),
    )


class ContactBlock(Base):
    """A customer who must not be asked (on one channel, or `*` for all). Keyed by a keyed
    hash of the external ref (`ContactRules.ref_key`), so an erased customer stays unasked
    without keeping their ref, or anything a guessed ref could be checked against."""

    __tablename__ = "contact_blocks"
    __table_args__ = (
        CheckConstraint("reason IN ('unsubscribed', 'bounced', 'erased')", name="reason"),
        # Who opted out or bounced, by time (Delighted's GET /unsubscribes and /bounces).
        Index("ix_contact_blocks_tenant_id_reason_created_at", "tenant_id", "reason", "created_at"),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    ref_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    #: The customer the block was recorded for, when known, to list who opted out or
    #: bounced. No foreign key: a customer row is deleted only by erasure, which replaces
    #: the ref's blocks by one without it; a stale id would simply match no customer.
    customer_id: Mapped[UUID | None] = mapped_column(default=None)


class Invitation(TimestampMixin, Base):
    """One request to one customer to answer one survey, and where it stands."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(f"channel IN {INVITATION_CHANNELS}", name="channel"),
        CheckConstraint(f"status IN {INVITATION_STATUSES}", name="status"),
        CheckConstraint("delivery IN ('delivered', 'bounced', 'failed')", name="delivery"),
        ForeignKeyConstraint(["tenant_id", "survey_id"], ["surveys.tenant_id", "surveys.id"]),
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]),
        Index(
            "uq_invitations_tenant_id_survey_id_trigger_ref",
            "tenant_id",
            "survey_id",
            "trigger_ref",
            unique=True,
            postgresql_where=text("trigger_ref IS NOT NULL"),
        ),
        # The frequency and cooldown checks: a customer's contacting invitations by time.
        Index(
            "ix_invitations_tenant_id_customer_id_due_at",
            "tenant_id",
            "customer_id",
            "due_at",
            postgresql_include=["survey_id"],
            postgresql_where=text(f"status IN {CONTACTING}"),
        ),
        Index(None, "tenant_id", "created_at", "id"),
        # The worker's queue: across tenants, what is due next.
        Index(
            "ix_invitations_next_action_at",
            "next_action_at",
            postgresql_where=text("next_action_at IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    survey_id: Mapped[UUID]
    # Null once the customer is erased.
    customer_id: Mapped[UUID | None]
    channel: Mapped[str] = mapped_column(String(16))
    trigger_ref: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(12))
    suppression_reason: Mapped[str | None] = mapped_column(String(24))
    locale: Mapped[str] = mapped_column(String(35))
    timezone: Mapped[str] = mapped_column(String(64))
    # touchpoint, agent_ref, location_ref, attributes: carried into the response.
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    triggered_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    reminders_sent: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    last_reminder_at: Mapped[datetime | None]
    # When the worker must look at it next (send, remind, expire); null when final.
    next_action_at: Mapped[datetime | None]
    delivery: Mapped[str | None] = mapped_column(String(12))
    delivery_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    response_id: Mapped[UUID | None]


class SigningKey(Base):
    """Per-tenant secrets for one-tap link tokens. The newest signs; older ones verify
    until `retires_at` (the rotation's grace period)."""

    __tablename__ = "signing_keys"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    kid: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    retires_at: Mapped[datetime | None]
