"""abuse and key powers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:00:00+00:00

- api_keys.allowed_origins: the web origins a publishable key answers CORS for.
- idempotency_keys.api_key_id: Idempotency-Key values are scoped per API key (a key pulled
  out of an app cannot claim or read a backend's keys). Records stored before this revision
  belong to no key (the nil UUID) and are not replayed; they expire within their TTL.
- tenants.rate_limits: the platform operator's per-tenant overrides of the default limits.
- Admin keys (those holding every scope that existed before) get the two new scopes,
  `keys:trust` and `metrics:small_cells`, as admin keys made from now on do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NIL = "00000000-0000-0000-0000-000000000000"
OLD_SCOPES = (
    "responses:write,responses:read,customers:write,customers:read,metrics:read,tickets:read,"
    "tickets:write,invitations:read,invitations:write,webhooks:manage,keys:manage,"
    "tenant:manage,events:read,integrity:read,integrity:write"
)
NEW_ADMIN_SCOPES = "keys:trust,metrics:small_cells"


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column(
            "allowed_origins", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
    )
    op.add_column(
        "idempotency_keys",
        sa.Column("api_key_id", sa.Uuid(), server_default=sa.text(f"'{NIL}'"), nullable=False),
    )
    op.alter_column("idempotency_keys", "api_key_id", server_default=None)
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key(
        "pk_idempotency_keys", "idempotency_keys", ["tenant_id", "api_key_id", "key"]
    )
    op.add_column(
        "tenants",
        sa.Column(
            "rate_limits",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.execute(
        f"UPDATE api_keys SET scopes = scopes || '{{{NEW_ADMIN_SCOPES}}}'::text[]"
        f" WHERE kind = 'secret' AND scopes @> '{{{OLD_SCOPES}}}'::text[]"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE api_keys SET scopes = array(SELECT unnest(scopes)"
        f" EXCEPT SELECT unnest('{{{NEW_ADMIN_SCOPES}}}'::text[]))"
    )
    op.drop_column("tenants", "rate_limits")
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.execute(f"DELETE FROM idempotency_keys WHERE api_key_id <> '{NIL}'")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["tenant_id", "key"])
    op.drop_column("idempotency_keys", "api_key_id")
    op.drop_column("api_keys", "allowed_origins")
