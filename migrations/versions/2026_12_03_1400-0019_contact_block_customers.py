"""contact blocks name their customer

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 14:00:00+00:00

Delighted's `GET /unsubscribes` and `GET /bounces` (issue 20) list who opted out or bounced.
Blocks are keyed by a keyed hash of the customer's ref, so they record the customer's id too
when the customer is known. Existing blocks are matched here: per tenant that has opt-outs
or bounces, its customers' refs are hashed in chunks and matched against its blocks (one
pass over those tenants' customers; erasure blocks are never matched, their customer is
gone). The column is nullable without a default (no table rewrite).
"""

import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 10_000


def _ref_hash(key: bytes, tenant_id: object, ref: str) -> str:
    # As invitations.service.contacts.ref_hash (a migration keeps its own copy).
    inner = hashlib.sha256(f"{tenant_id}:{ref}".encode()).hexdigest()
    return hmac.new(key, inner.encode(), hashlib.sha256).hexdigest()


def _backfill() -> None:
    bind = op.get_bind()
    tenants = bind.execute(
        sa.text(
            "SELECT r.tenant_id, r.ref_key FROM contact_rules AS r WHERE EXISTS ("
            "SELECT 1 FROM contact_blocks AS b WHERE b.tenant_id = r.tenant_id "
            "AND b.reason <> 'erased')"
        )
    ).all()
    for tenant_id, ref_key in tenants:
        blocked = set(
            bind.execute(
                sa.text(
                    "SELECT ref_hash FROM contact_blocks "
                    "WHERE tenant_id = :t AND reason <> 'erased'"
                ),
                {"t": tenant_id},
            ).scalars()
        )
        after = None
        while True:
            rows = bind.execute(
                sa.text(
                    "SELECT id, external_ref FROM customers WHERE tenant_id = :t "
                    "AND (CAST(:after AS uuid) IS NULL OR id > CAST(:after AS uuid)) "
                    "ORDER BY id LIMIT :n"
                ),
                {"t": tenant_id, "after": after, "n": CHUNK},
            ).all()
            if not rows:
                break
            after = rows[-1][0]
            found = [
                {"t": tenant_id, "h": h, "c": customer_id}
                for customer_id, ref in rows
                if (h := _ref_hash(bytes(ref_key), tenant_id, ref)) in blocked
            ]
            if found:
                bind.execute(
                    sa.text(
                        "UPDATE contact_blocks SET customer_id = :c "
                        "WHERE tenant_id = :t AND ref_hash = :h AND reason <> 'erased'"
                    ),
                    found,
                )


def upgrade() -> None:
    op.add_column("contact_blocks", sa.Column("customer_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_contact_blocks_tenant_id_reason_created_at",
        "contact_blocks",
        ["tenant_id", "reason", "created_at"],
        unique=False,
    )
    _backfill()


def downgrade() -> None:
    op.drop_index("ix_contact_blocks_tenant_id_reason_created_at", table_name="contact_blocks")
    op.drop_column("contact_blocks", "customer_id")
