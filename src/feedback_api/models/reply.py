from __future__ import annotations

from uuid import UUID

from sqlalchemy import ForeignKeyConstraint, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.models import Base, TimestampMixin


class ResponseReply(TimestampMixin, Base):
    """The tenant's public reply to one response: at most one, editable (each change is in
    the audit log with the key that made it), shown beside the review in the public feed."""

    __tablename__ = "response_replies"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    response_id: Mapped[UUID] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    # The keys that wrote it first and last (keys are revoked, never deleted: no FK).
    created_by_key_id: Mapped[UUID | None]
    updated_by_key_id: Mapped[UUID | None]
