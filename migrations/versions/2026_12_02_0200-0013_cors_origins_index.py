"""cors origins index

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 02:00:00+00:00

A CORS preflight (`OPTIONS /v1/responses`) carries no key, so it is answered when any active
publishable key, of any tenant, lists the page's origin. Preflights need no credentials, so
a flood of them must not each scan `api_keys`: a partial GIN index on `allowed_origins` of
the keys that can answer one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_api_keys_allowed_origins",
        "api_keys",
        ["allowed_origins"],
        unique=False,
        postgresql_using="gin",
        postgresql_where=sa.text("kind = 'publishable' AND revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_api_keys_allowed_origins",
        table_name="api_keys",
        postgresql_using="gin",
        postgresql_where=sa.text("kind = 'publishable' AND revoked_at IS NULL"),
    )
