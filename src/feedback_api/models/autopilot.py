from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKeyConstraint, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.models import Base, TimestampMixin


class AutopilotMembership(TimestampMixin, Base):
    """A customer in Delighted's Autopilot on one platform (`email` or `sms`): surveyed again
    every time the tenant's contact rules allow (docs/delighted.md). Erasing the customer
    deletes it."""

    __tablename__ = "autopilot_memberships"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            ondelete="CASCADE",
        ),
        # The worker's sweep: one index probe when nothing is due.
        Index("ix_autopilot_memberships_next_at", "next_at"),
        # Listing a platform's members in the order they joined.
        Index(
            "ix_autopilot_memberships_tenant_id_platform_created_at",
            "tenant_id",
            "platform",
            "created_at",
            "customer_id",
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(8), primary_key=True)
    customer_id: Mapped[UUID] = mapped_column(primary_key=True)
    # Delighted's survey properties, given to each of the member's surveys.
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    # When the next survey is to be scheduled.
    next_at: Mapped[datetime]
    # The invitation its last round scheduled (cancelled when the member is removed while it
    # is still scheduled). Invitations are never deleted: no FK needed.
    invitation_id: Mapped[UUID | None]
