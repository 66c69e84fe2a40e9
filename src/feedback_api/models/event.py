from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, SmallInteger, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.models import Base

# The id of the writing transaction (xid8, as bigint). Events are read in (xid, id) order and
# only below the oldest transaction still running, so one that commits late is never skipped.
CURRENT_XID = text("(pg_current_xact_id()::text)::bigint")


class Event(Base):
    """The outbox: what happened, written in the same transaction as the change."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tenant_id_xid_id", "tenant_id", "xid", "id"),
        Index("ix_events_created_at", "created_at"),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True)
    xid: Mapped[int] = mapped_column(BigInteger, server_default=CURRENT_XID)
    type: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
