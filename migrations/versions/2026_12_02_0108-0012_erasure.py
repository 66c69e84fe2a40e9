"""erasure that leaves nothing

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:08:04+00:00

- contact_rules.ref_key: a random key per tenant. Contact blocks are keyed by
  HMAC-SHA256(ref_key, the SHA-256 of tenant and ref they were keyed by until now), so a
  stored block can no longer be checked against a guessed ref by anyone without the key.
  Every existing block is re-keyed here from its stored hash, an erased customer's too.
- What erasures before this revision left behind and can still be found: reward grants of
  customers that no longer exist, and their duplicate flags' `subject_ref` (the customer's
  id, here and in the flags' `integrity.flag_*` events) become the flag's own id; the
  `customer.erased` audit entries name their own id instead of the customer's.

Downgrading re-keys the blocks of customers that still exist back to the unkeyed hash; an
erased customer's block cannot be turned back (that is the point) and is kept as it is,
where the old code no longer matches it.
"""

import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANDOM_KEY = (
    "decode(replace(gen_random_uuid()::text, '-', '') "
    "|| replace(gen_random_uuid()::text, '-', ''), 'hex')"
)
# Flags about a customer that no longer exists (of table alias f).
ORPHAN_FLAGS = (
    "f.subject_type = 'customer' AND NOT EXISTS (SELECT 1 FROM customers c "
    "WHERE c.tenant_id = f.tenant_id AND c.id::text = f.subject_ref)"
)


def _keyed(key: bytes, unkeyed: str) -> str:
    return hmac.new(key, unkeyed.encode(), hashlib.sha256).hexdigest()


def _rekey(pairs: list[tuple[object, str, str]]) -> None:
    """(tenant_id, old hash, new hash): every block under the old hash moves to the new."""
    if pairs:
        op.get_bind().execute(
            sa.text(
                "UPDATE contact_blocks SET ref_hash = :new "
                "WHERE tenant_id = :tenant_id AND ref_hash = :old"
            ),
            [{"tenant_id": t, "old": old, "new": new} for t, old, new in pairs],
        )


def upgrade() -> None:
    # A volatile default: every existing tenant gets a key of its own.
    op.add_column(
        "contact_rules",
        sa.Column("ref_key", sa.LargeBinary(), server_default=sa.text(RANDOM_KEY), nullable=False),
    )
    rows = op.get_bind().execute(
        sa.text(
            "SELECT DISTINCT b.tenant_id, b.ref_hash, r.ref_key FROM contact_blocks b "
            "JOIN contact_rules r ON r.tenant_id = b.tenant_id"
        )
    )
    _rekey([(t, old, _keyed(bytes(key), old)) for t, old, key in rows.all()])

    op.execute(
        "DELETE FROM reward_grants g WHERE g.customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 "
        "FROM customers c WHERE c.tenant_id = g.tenant_id AND c.id = g.customer_id)"
    )
    op.execute(
        "UPDATE events e SET data = e.data || jsonb_build_object('subject_ref', f.id::text) "
        f"FROM integrity_flags f WHERE {ORPHAN_FLAGS} AND e.tenant_id = f.tenant_id "
        "AND e.type LIKE 'integrity.flag\\_%' AND e.data->>'id' = f.id::text"
    )
    op.execute(f"UPDATE integrity_flags f SET subject_ref = f.id::text WHERE {ORPHAN_FLAGS}")
    op.execute("UPDATE audit_log SET target_id = id::text WHERE action = 'customer.erased'")


def downgrade() -> None:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT c.tenant_id, c.external_ref, r.ref_key FROM customers c "
            "JOIN contact_rules r ON r.tenant_id = c.tenant_id "
            "WHERE EXISTS (SELECT 1 FROM contact_blocks b WHERE b.tenant_id = c.tenant_id)"
        )
    )
    pairs = []
    for tenant_id, ref, key in rows.all():
        unkeyed = hashlib.sha256(f"{tenant_id}:{ref}".encode()).hexdigest()
        pairs.append((tenant_id, _keyed(bytes(key), unkeyed), unkeyed))
    _rekey(pairs)
    op.drop_column("contact_rules", "ref_key")
