from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.ids import new_id
from feedback_api.kit.models import Base


class Job(Base):
    """Durable background work, written in the same transaction as the change that needs it
    and claimed by workers with FOR UPDATE SKIP LOCKED. A finished job is deleted; one that
    exhausted its attempts stays as `dead` for inspection.

    Infrastructure, not tenant data: under Citus it stays a local table on the coordinator,
    which is why its key does not lead with `tenant_id` (jobs such as retention have none).
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'dead')", name="status"),
        Index("ix_jobs_due", "run_at", postgresql_where=text("status = 'queued'")),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(String(8), server_default="queued")
    run_at: Mapped[datetime] = mapped_column(server_default=func.now())
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    max_attempts: Mapped[int] = mapped_column(SmallInteger, server_default="10")
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class JobSchedule(Base):
    """When each periodic job is next due. Workers advance it with a conditional UPDATE, so
    one slot is enqueued once however many workers run."""

    __tablename__ = "job_schedules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime]
