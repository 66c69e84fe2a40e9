from __future__ import annotations

from typing import Any

from sqlalchemy import String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.models import Base, IdMixin, TimestampMixin


class Tenant(IdMixin, TimestampMixin, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    locale: Mapped[str] = mapped_column(String(35), server_default="en")
    # Metrics with fewer responses than this carry `low_sample: true`.
    metrics_low_sample_n: Mapped[int] = mapped_column(server_default=text("30"))
    # Breakdown groups smaller than this are merged into "other".
    metrics_min_cell_n: Mapped[int] = mapped_column(server_default=text("5"))
    # A complaint this many days after a ticket was resolved reopens it (a repeat complaint).
    ticket_reopen_days: Mapped[int] = mapped_column(server_default=text("30"))
    # The platform operator's overrides of the default rate limits (ratelimits.LIMITS).
    rate_limits: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # The public review and improvement feeds (/public/{slug}/…): off until the tenant opts in.
    public_feeds: Mapped[bool] = mapped_column(server_default=text("false"))
