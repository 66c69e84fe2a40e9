from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.models import Base, IdMixin


class ApiKey(IdMixin, Base):
    """API keys resolve the tenant, so they are found by hash *before* the tenant is known.
    That is why this table's keys do not lead with ``tenant_id``: under Citus it is a small
    reference table (replicated to every node), like ``tenants``."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("kind IN ('secret', 'publishable')", name="kind"),
        Index(None, "tenant_id", "created_at", "id"),
        # CORS preflights ask whether any active publishable key lists an origin (cors.py).
        Index(
            "ix_api_keys_allowed_origins",
            "allowed_origins",
            postgresql_using="gin",
            postgresql_where=text("kind = 'publishable' AND revoked_at IS NULL"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # A server-side integration the tenant vouches for: its responses count as verified.
    trusted: Mapped[bool] = mapped_column(server_default=text("false"))
    # Publishable keys: the web origins (scheme://host[:port]) whose pages may use the key
    # from a browser (CORS). Empty: no browser page may.
    allowed_origins: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
