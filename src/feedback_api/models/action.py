from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.ids import new_id
from feedback_api.kit.models import Base, TimestampMixin

ACTION_STATUSES = "('planned', 'in_progress', 'done', 'abandoned')"
ACTION_METRICS = "('nps', 'csat', 'ces', 'theme_share')"


class ImprovementAction(TimestampMixin, Base):
    """A SMART improvement: what is changed, for whom (scope), which metric should move to
    which target by when, measured against the baseline taken when it was created."""

    __tablename__ = "improvement_actions"
    __table_args__ = (
        CheckConstraint(f"status IN {ACTION_STATUSES}", name="status"),
        CheckConstraint(f"metric IN {ACTION_METRICS}", name="metric"),
        Index("ix_improvement_actions_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        # The priority matrix reads the efforts of a tenant's actions by theme / touchpoint.
        Index(
            "ix_improvement_actions_tenant_id_theme",
            "tenant_id",
            "theme",
            postgresql_where=text("theme IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))
    # scope: which responses the action is about (null: any)
    theme: Mapped[str | None] = mapped_column(String(64))
    touchpoint: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(16))
    location_ref: Mapped[str | None] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    metric: Mapped[str] = mapped_column(String(16))
    # baseline, measured at creation: {"from", "to", "value", "n", "interval", "needed_n"}
    baseline: Mapped[dict[str, Any]] = mapped_column(JSONB)
    target: Mapped[float] = mapped_column(Float)
    deadline: Mapped[date] = mapped_column(Date)
    effort_days: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), server_default="planned")
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    completed_at: Mapped[datetime | None]
    public: Mapped[bool] = mapped_column(server_default=text("false"))
    public_summary: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
