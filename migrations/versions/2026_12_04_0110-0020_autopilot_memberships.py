"""autopilot memberships

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 01:10:00+00:00

Delighted's Autopilot (issue 20): who is surveyed again and again on a platform, with the
survey properties given to each survey and when the next is to be scheduled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "autopilot_memberships",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.String(length=8), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("next_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("invitation_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_autopilot_memberships_tenant_id_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "platform", "customer_id", name=op.f("pk_autopilot_memberships")
        ),
    )
    op.create_index("ix_autopilot_memberships_next_at", "autopilot_memberships", ["next_at"])
    op.create_index(
        "ix_autopilot_memberships_tenant_id_platform_created_at",
        "autopilot_memberships",
        ["tenant_id", "platform", "created_at", "customer_id"],
    )


def downgrade() -> None:
    op.drop_table("autopilot_memberships")
