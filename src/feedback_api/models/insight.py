from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.models import Base, TimestampMixin


class Theme(TimestampMixin, Base):
    """One entry of a tenant's theme dictionary: what customers talk about, and the words
    that say so."""

    __tablename__ = "themes"
    __table_args__ = (CheckConstraint("origin IN ('manual', 'discovered')", name="origin"),)

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    names: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    keywords: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    negative_keywords: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    origin: Mapped[str] = mapped_column(String(16), server_default="manual")


class ThemeDictionary(TimestampMixin, Base):
    """Per tenant: the dictionary's version (bumped by every change) and how far the
    re-classification of stored comments has got with it."""

    __tablename__ = "theme_dictionaries"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(server_default="0")
    # The version the current re-classification pass classifies with, and the last
    # response id it has done (null: the pass has not started or is complete).
    pass_version: Mapped[int] = mapped_column(server_default="0")
    pass_cursor: Mapped[UUID | None]
    # Every comment stored before this version's change is classified with it.
    classified_version: Mapped[int] = mapped_column(server_default="0")


class ResponseTheme(Base):
    """A theme a response's comment mentions (derived: re-computed from the comment and
    the dictionary whenever either changes)."""

    __tablename__ = "response_themes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            ondelete="CASCADE",
        ),
        Index(None, "tenant_id", "theme_key", "response_id"),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    response_id: Mapped[UUID] = mapped_column(primary_key=True)
    theme_key: Mapped[str] = mapped_column(String(64), primary_key=True)


class RisingNotice(Base):
    """A `theme.rising` event sent: at most one per theme and week (insights/watch.py)."""

    __tablename__ = "theme_rising_notices"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    theme_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
