from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.ids import new_id
from feedback_api.kit.models import Base


class WorkFailure(Base):
    """An item that background work could not process and set aside (quarantined), so that
    the rest of its batch, and every other tenant's work, goes on.

    `source` names the work (`integrity.screen`), `subject_id` the item (a response id). The
    item stays set aside until someone asks for it to be retried; the traceback is in the
    worker's log, the type and message are here for the API and `feedback-api status`.
    """

    __tablename__ = "work_failures"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "subject_id"),
        Index(None, "tenant_id", "source", "failed_at", "id"),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(255))
    error_type: Mapped[str] = mapped_column(String(200))
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(server_default=func.now())
