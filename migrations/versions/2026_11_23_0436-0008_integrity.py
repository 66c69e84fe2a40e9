"""integrity

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 04:36:36.118948+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrity_flags",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_ref", sa.String(length=255), nullable=False),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=12), server_default=sa.text("'open'"), nullable=False),
        sa.Column("response_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.TIMESTAMP(timezone=True), nullable=True),
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
        sa.CheckConstraint(
            "status IN ('open', 'confirmed', 'dismissed')", name=op.f("ck_integrity_flags_status")
        ),
        sa.CheckConstraint(
            "subject_type IN ('response', 'customer', 'source', 'agent', 'location', 'survey', "
            "'text')",
            name=op.f("ck_integrity_flags_subject_type"),
        ),
        sa.CheckConstraint(
            "type IN ('duplicate', 'burst', 'spike', 'near_duplicate', 'solicitation', "
            "'incentive', 'manual')",
            name=op.f("ck_integrity_flags_type"),
        ),
        sa.CheckConstraint("strength BETWEEN 0 AND 1", name=op.f("ck_integrity_flags_strength")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_integrity_flags_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_integrity_flags")),
    )
    op.create_index(
        "ix_integrity_flags_open_subject",
        "integrity_flags",
        ["tenant_id", "type", "subject_type", "subject_ref"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_integrity_flags_tenant_id_created_at_id",
        "integrity_flags",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "integrity_settings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("exclude_threshold", sa.Float(), server_default=sa.text("0.8"), nullable=False),
        sa.Column("rewards_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "reward_interval_days", sa.Integer(), server_default=sa.text("30"), nullable=False
        ),
        sa.Column("rewards_since", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column(
            "detectors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "salt",
            sa.LargeBinary(),
            server_default=sa.text(
                "decode(replace(gen_random_uuid()::text, '-', '') "
                "|| replace(gen_random_uuid()::text, '-', ''), 'hex')"
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "exclude_threshold BETWEEN 0 AND 1",
            name=op.f("ck_integrity_settings_exclude_threshold"),
        ),
        sa.CheckConstraint(
            "reward_interval_days BETWEEN 0 AND 3650",
            name=op.f("ck_integrity_settings_reward_interval_days"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_integrity_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_integrity_settings")),
    )
    op.create_table(
        "integrity_flag_responses",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("flag_id", sa.Uuid(), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "flag_id"],
            ["integrity_flags.tenant_id", "integrity_flags.id"],
            name=op.f("fk_integrity_flag_responses_tenant_id_flag_id_integrity_flags"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            name=op.f("fk_integrity_flag_responses_tenant_id_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "flag_id", "response_id", name=op.f("pk_integrity_flag_responses")
        ),
    )
    op.create_index(
        "uq_integrity_flag_responses_tenant_id_response_id_type",
        "integrity_flag_responses",
        ["tenant_id", "response_id", "type"],
        unique=True,
    )
    op.create_table(
        "integrity_text_bands",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("hash", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            name=op.f("fk_integrity_text_bands_tenant_id_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "response_id", "band", name=op.f("pk_integrity_text_bands")
        ),
    )
    op.create_index(
        "ix_integrity_text_bands_lookup",
        "integrity_text_bands",
        ["tenant_id", "band", "hash", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "reward_grants",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column(
            "granted_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            name=op.f("fk_reward_grants_tenant_id_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "response_id", name=op.f("pk_reward_grants")),
    )
    op.create_index(
        "ix_reward_grants_tenant_id_customer_id_granted_at",
        "reward_grants",
        ["tenant_id", "customer_id", "granted_at"],
        unique=False,
    )
    op.add_column(
        "api_keys",
        sa.Column("trusted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("responses", sa.Column("ip_hash", sa.String(length=32), nullable=True))
    op.add_column("responses", sa.Column("ua_hash", sa.String(length=32), nullable=True))
    op.add_column("responses", sa.Column("screened_at", sa.TIMESTAMP(timezone=True), nullable=True))
    op.create_index(
        "ix_responses_tenant_id_ip_hash_occurred_at",
        "responses",
        ["tenant_id", "ip_hash", "occurred_at"],
        unique=False,
        postgresql_where=sa.text("ip_hash IS NOT NULL"),
    )
    op.create_index(
        "ix_responses_unscreened",
        "responses",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("screened_at IS NULL"),
    )

    # Admin keys (those that may manage the tenant) get the new scopes, as new admin keys do.
    op.execute(
        "UPDATE api_keys SET scopes = scopes || '{integrity:read,integrity:write}'::text[] "
        "WHERE 'tenant:manage' = ANY(scopes) AND NOT 'integrity:read' = ANY(scopes)"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE api_keys SET scopes = array_remove(array_remove(scopes, 'integrity:read'), "
        "'integrity:write')"
    )
    op.drop_index(
        "ix_responses_unscreened",
        table_name="responses",
        postgresql_where=sa.text("screened_at IS NULL"),
    )
    op.drop_index(
        "ix_responses_tenant_id_ip_hash_occurred_at",
        table_name="responses",
        postgresql_where=sa.text("ip_hash IS NOT NULL"),
    )
    op.drop_column("responses", "screened_at")
    op.drop_column("responses", "ua_hash")
    op.drop_column("responses", "ip_hash")
    op.drop_column("api_keys", "trusted")
    op.drop_table("reward_grants")
    op.drop_index("ix_integrity_text_bands_lookup", table_name="integrity_text_bands")
    op.drop_table("integrity_text_bands")
    op.drop_index(
        "uq_integrity_flag_responses_tenant_id_response_id_type",
        table_name="integrity_flag_responses",
    )
    op.drop_table("integrity_flag_responses")
    op.drop_table("integrity_settings")
    op.drop_index("ix_integrity_flags_tenant_id_created_at_id", table_name="integrity_flags")
    op.drop_index(
        "ix_integrity_flags_open_subject",
        table_name="integrity_flags",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_table("integrity_flags")
