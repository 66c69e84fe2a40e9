"""invitations

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 03:52:45.466191+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = (
    "channel IN ('app', 'web', 'email', 'sms', {extra}'phone', 'in_person', 'qr', 'crm', "
    "'import', 'other')"
)


def upgrade() -> None:
    op.create_table(
        "contact_blocks",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("ref_hash", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "reason IN ('unsubscribed', 'bounced', 'erased')", name=op.f("ck_contact_blocks_reason")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contact_blocks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "ref_hash", "channel", name=op.f("pk_contact_blocks")),
    )
    op.create_table(
        "contact_rules",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("frequency_days", sa.Integer(), server_default=sa.text("30"), nullable=False),
        sa.Column("quiet_start", sa.Time(), server_default=sa.text("'21:00'"), nullable=True),
        sa.Column("quiet_end", sa.Time(), server_default=sa.text("'09:00'"), nullable=True),
        sa.Column("max_reminders", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contact_rules_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_contact_rules")),
    )
    op.create_table(
        "signing_keys",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("retires_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_signing_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "kid", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "surveys",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("scale_min", sa.SmallInteger(), nullable=False),
        sa.Column("scale_max", sa.SmallInteger(), nullable=False),
        sa.Column("question", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("follow_up", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("thank_you", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("default_channel", sa.String(length=16), nullable=False),
        sa.Column("touchpoint", sa.String(length=100), nullable=True),
        sa.Column("delay_minutes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "expires_after_hours", sa.Integer(), server_default=sa.text("168"), nullable=False
        ),
        sa.Column("reminder_after_hours", sa.Integer(), nullable=True),
        sa.Column("cooldown_days", sa.Integer(), nullable=True),
        sa.Column("send_within_hours", sa.Integer(), server_default=sa.text("24"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
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
            "default_channel IN ('email', 'sms', 'wechat', 'app', 'web')",
            name=op.f("ck_surveys_default_channel"),
        ),
        sa.CheckConstraint(
            "kind IN ('nps', 'csat', 'ces', 'rating')", name=op.f("ck_surveys_kind")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_surveys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_surveys")),
    )
    op.create_index("uq_surveys_tenant_id_key", "surveys", ["tenant_id", "key"], unique=True)
    op.create_table(
        "invitations",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("survey_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("trigger_ref", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("suppression_reason", sa.String(length=24), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "context", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("triggered_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("due_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("expires_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("sent_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("reminders_sent", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_reminder_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("next_action_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("delivery", sa.String(length=12), nullable=True),
        sa.Column("delivery_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("responded_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("response_id", sa.Uuid(), nullable=True),
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
            "channel IN ('email', 'sms', 'wechat', 'app', 'web')",
            name=op.f("ck_invitations_channel"),
        ),
        sa.CheckConstraint(
            "delivery IN ('delivered', 'bounced', 'failed')", name=op.f("ck_invitations_delivery")
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sent', 'responded', 'expired', 'cancelled', 'suppressed')",
            name=op.f("ck_invitations_status"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_invitations_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "survey_id"],
            ["surveys.tenant_id", "surveys.id"],
            name=op.f("fk_invitations_tenant_id_survey_id_surveys"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invitations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invitations")),
    )
    op.create_index(
        "ix_invitations_next_action_at",
        "invitations",
        ["next_action_at"],
        unique=False,
        postgresql_where=sa.text("next_action_at IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_invitations_tenant_id_created_at_id"),
        "invitations",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_invitations_tenant_id_customer_id_due_at",
        "invitations",
        ["tenant_id", "customer_id", "due_at"],
        unique=False,
        postgresql_include=["survey_id"],
        postgresql_where=sa.text("status IN ('scheduled', 'sent', 'responded', 'expired')"),
    )
    op.create_index(
        "uq_invitations_tenant_id_survey_id_trigger_ref",
        "invitations",
        ["tenant_id", "survey_id", "trigger_ref"],
        unique=True,
        postgresql_where=sa.text("trigger_ref IS NOT NULL"),
    )
    op.add_column("responses", sa.Column("invitation_id", sa.Uuid(), nullable=True))
    op.create_index(
        "uq_responses_tenant_id_invitation_id",
        "responses",
        ["tenant_id", "invitation_id"],
        unique=True,
        postgresql_where=sa.text("invitation_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_responses_channel"), "responses", type_="check")
    op.create_check_constraint(
        op.f("ck_responses_channel"), "responses", CHANNELS.format(extra="'wechat', ")
    )
    # Every tenant has its contact rules (new tenants get theirs when created).
    op.execute("INSERT INTO contact_rules (tenant_id) SELECT id FROM tenants")


def downgrade() -> None:
    op.execute("DELETE FROM responses WHERE channel = 'wechat'")
    op.drop_constraint(op.f("ck_responses_channel"), "responses", type_="check")
    op.create_check_constraint(op.f("ck_responses_channel"), "responses", CHANNELS.format(extra=""))
    op.drop_index(
        "uq_responses_tenant_id_invitation_id",
        table_name="responses",
        postgresql_where=sa.text("invitation_id IS NOT NULL"),
    )
    op.drop_column("responses", "invitation_id")
    op.drop_index(
        "uq_invitations_tenant_id_survey_id_trigger_ref",
        table_name="invitations",
        postgresql_where=sa.text("trigger_ref IS NOT NULL"),
    )
    op.drop_index(
        "ix_invitations_tenant_id_customer_id_due_at",
        table_name="invitations",
        postgresql_include=["survey_id"],
        postgresql_where=sa.text("status IN ('scheduled', 'sent', 'responded', 'expired')"),
    )
    op.drop_index(op.f("ix_invitations_tenant_id_created_at_id"), table_name="invitations")
    op.drop_index(
        "ix_invitations_next_action_at",
        table_name="invitations",
        postgresql_where=sa.text("next_action_at IS NOT NULL"),
    )
    op.drop_table("invitations")
    op.drop_index("uq_surveys_tenant_id_key", table_name="surveys")
    op.drop_table("surveys")
    op.drop_table("signing_keys")
    op.drop_table("contact_rules")
    op.drop_table("contact_blocks")
