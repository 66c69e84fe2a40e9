"""webhook endpoint payload formats

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 01:30:00+00:00

An endpoint's payload format (issue 20): `standard` (Standard Webhooks, every existing
endpoint) or `delighted` (Delighted's webhooks). A constant default: no table rewrite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints",
        sa.Column(
            "format", sa.String(length=16), server_default=sa.text("'standard'"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "format")
