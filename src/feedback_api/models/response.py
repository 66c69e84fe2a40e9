from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.models import Base


class Response(Base):
    """One piece of feedback: a score on a scale about a touchpoint, maybe with a comment."""

    __tablename__ = "responses"
    __table_args__ = (
        CheckConstraint("kind IN ('nps', 'csat', 'ces', 'rating')", name="kind"),
        CheckConstraint(
            "channel IN ('app', 'web', 'email', 'sms', 'wechat', 'phone', 'in_person', 'qr', "
            "'crm', 'import', 'other')",
            name="channel",
        ),
        CheckConstraint("score BETWEEN scale_min AND scale_max", name="score_on_scale"),
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]),
        Index(
            "uq_responses_tenant_id_external_id",
            "tenant_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index(
            "ix_responses_tenant_id_occurred_at_id",
            "tenant_id",
            "occurred_at",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # By customer (export, erasure) and by customer segment over time (metrics with
        # attr.* filters): covering, so a segment's NPS is an index-only scan.
        Index(
            "ix_responses_tenant_id_customer_id",
            "tenant_id",
            "customer_id",
            "occurred_at",
            postgresql_include=["kind", "score", "excluded", "deleted_at"],
            postgresql_where=text("customer_id IS NOT NULL"),
        ),
        Index("ix_responses_tags", "tags", postgresql_using="gin"),
        # One answer per invitation: answering again updates it (last answer wins).
        Index(
            "uq_responses_tenant_id_invitation_id",
            "tenant_id",
            "invitation_id",
            unique=True,
            postgresql_where=text("invitation_id IS NOT NULL"),
        ),
        # The integrity screen's queue: responses it has not looked at yet (a few seconds'
        # worth of ingest normally, so the index stays tiny).
        Index(
            "ix_responses_unscreened",
            "received_at",
            postgresql_where=text("screened_at IS NULL"),
        ),
        # The public review feed: consented responses, newest first.
        Index(
            "ix_responses_tenant_id_published",
            "tenant_id",
            "occurred_at",
            "id",
            postgresql_where=text("publish_consent AND deleted_at IS NULL"),
        ),
        # Burst detection counts recent responses per source.
        Index(
            "ix_responses_tenant_id_ip_hash_occurred_at",
            "tenant_id",
            "ip_hash",
            "occurred_at",
            postgresql_where=text("ip_hash IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    score: Mapped[int] = mapped_column(SmallInteger)
    scale_min: Mapped[int] = mapped_column(SmallInteger)
    scale_max: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    channel: Mapped[str] = mapped_column(String(16))
    touchpoint: Mapped[str | None] = mapped_column(String(100))
    survey: Mapped[str | None] = mapped_column(String(100))
    customer_id: Mapped[UUID | None]
    agent_ref: Mapped[str | None] = mapped_column(String(255))
    location_ref: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str | None] = mapped_column(String(35))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    external_id: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    # Which key submitted it. No foreign key on purpose: keys are revoked, never deleted,
    # and an FK check would take a share lock on the key row on every insert, queueing
    # ingest behind the once-a-minute `last_used_at` update of that same row.
    api_key_id: Mapped[UUID | None]
    # The invitation answered (through its signed one-tap token): such a response is verified.
    invitation_id: Mapped[UUID | None]
    # Provenance: came through a signed invitation or a trusted integration.
    verified: Mapped[bool] = mapped_column(server_default=text("false"))
    # Kept out of the metrics by an integrity decision (flags, issue 7); `integrity=all`
    # on the metrics endpoints includes these again.
    excluded: Mapped[bool] = mapped_column(server_default=text("false"))
    # Public submissions only (publishable key, answer links): keyed hashes of the client's
    # IP (IPv6 by /64) and user agent, for duplicate and burst detection. Raw IPs are
    # never stored. See integrity/provenance.py.
    ip_hash: Mapped[str | None] = mapped_column(String(32))
    ua_hash: Mapped[str | None] = mapped_column(String(32))
    # The customer allows the response (score, comment, touchpoint, date; never who) in the
    # tenant's public review feed. Off unless they said so; erasure turns it off.
    publish_consent: Mapped[bool] = mapped_column(server_default=text("false"))
    # When the integrity screen looked at it; NULL while queued.
    screened_at: Mapped[datetime | None]
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    deleted_at: Mapped[datetime | None]
