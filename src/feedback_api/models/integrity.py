"""Integrity: flags that keep suspect responses out of the metrics, with their evidence.

A flag is one finding by one detector (or a person) about a subject: a response, a source
(IP hash, device, key), a customer, an agent, a location, a survey or a ring of near-identical
texts. It links to the responses it concerns. A response is excluded from the metrics while
it is linked to a confirmed flag, or to an open flag at least as strong as the tenant's
`exclude_threshold`; dismissed flags never exclude. See docs/integrity.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.ids import new_id
from feedback_api.kit.models import Base, TimestampMixin

FLAG_TYPES = (
    "duplicate",
    "burst",
    "spike",
    "near_duplicate",
    "solicitation",
    "incentive",
    "manual",
)
FLAG_SUBJECTS = ("response", "customer", "source", "agent", "location", "survey", "text")
FLAG_STATUSES = ("open", "confirmed", "dismissed")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class IntegritySettings(Base):
    """Per tenant: when flags exclude, rewards, and the detectors' parameters."""

    __tablename__ = "integrity_settings"
    __table_args__ = (
        CheckConstraint("exclude_threshold BETWEEN 0 AND 1", name="exclude_threshold"),
        CheckConstraint("reward_interval_days BETWEEN 0 AND 3650", name="reward_interval_days"),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    exclude_threshold: Mapped[float] = mapped_column(Float, server_default=text("0.8"))
    rewards_enabled: Mapped[bool] = mapped_column(server_default=text("false"))
    reward_interval_days: Mapped[int] = mapped_column(server_default=text("30"))
    # When rewards were turned on: older responses (a backlog being screened) earn none.
    rewards_since: Mapped[datetime | None]
    # Detector parameters (integrity.schemas.DetectorParams); absent keys take defaults.
    detectors: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # Key of the HMAC that turns client IPs and user agents into hashes: per tenant, so
    # hashes cannot be joined across tenants, and never shown.
    salt: Mapped[bytes] = mapped_column(
        LargeBinary,
        server_default=text(
            "decode(replace(gen_random_uuid()::text, '-', '') "
            "|| replace(gen_random_uuid()::text, '-', ''), 'hex')"
        ),
    )
    updated_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class IntegrityFlag(TimestampMixin, Base):
    __tablename__ = "integrity_flags"
    __table_args__ = (
        CheckConstraint(f"type IN {_in(FLAG_TYPES)}", name="type"),
        CheckConstraint(f"subject_type IN {_in(FLAG_SUBJECTS)}", name="subject_type"),
        CheckConstraint(f"status IN {_in(FLAG_STATUSES)}", name="status"),
        CheckConstraint("strength BETWEEN 0 AND 1", name="strength"),
        Index("ix_integrity_flags_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        # The open flag a detector extends with new responses about the same subject.
        Index(
            "ix_integrity_flags_open_subject",
            "tenant_id",
            "type",
            "subject_type",
            "subject_ref",
            postgresql_where=text("status = 'open'"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(16))
    subject_type: Mapped[str] = mapped_column(String(16))
    # The agent or location ref, the source hash, the survey key; for response and text
    # subjects, the first response's id.
    subject_ref: Mapped[str] = mapped_column(String(255))
    strength: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(12), server_default=text("'open'"))
    response_count: Mapped[int] = mapped_column(server_default=text("0"))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by_key_id: Mapped[UUID | None]
    decided_at: Mapped[datetime | None]


class IntegrityFlagResponse(Base):
    """Which responses a flag concerns. A response joins at most one flag of each type."""

    __tablename__ = "integrity_flag_responses"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "flag_id"],
            ["integrity_flags.tenant_id", "integrity_flags.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            ondelete="CASCADE",
        ),
        Index(
            "uq_integrity_flag_responses_tenant_id_response_id_type",
            "tenant_id",
            "response_id",
            "type",
            unique=True,
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    flag_id: Mapped[UUID] = mapped_column(primary_key=True)
    response_id: Mapped[UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(16))


class IntegrityTextBand(Base):
    """MinHash LSH bands of a comment: responses sharing a band are candidate near-duplicates
    (then compared exactly). Derived from the comment, so erased with it."""

    __tablename__ = "integrity_text_bands"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            ondelete="CASCADE",
        ),
        Index("ix_integrity_text_bands_lookup", "tenant_id", "band", "hash", "occurred_at"),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    response_id: Mapped[UUID] = mapped_column(primary_key=True)
    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    hash: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime]


class RewardGrant(Base):
    """A `reward.eligible` sent: one per response at most, and the per-customer rate limit."""

    __tablename__ = "reward_grants"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            ondelete="CASCADE",
        ),
        Index(
            "ix_reward_grants_tenant_id_customer_id_granted_at",
            "tenant_id",
            "customer_id",
            "granted_at",
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    response_id: Mapped[UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[UUID | None]
    granted_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
