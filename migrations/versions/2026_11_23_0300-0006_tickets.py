"""tickets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 03:00:48.494638+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("targets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("business_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "warn_at_percent", sa.SmallInteger(), server_default=sa.text("80"), nullable=False
        ),
        sa.Column(
            "escalate_raise_priority", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
        sa.Column("escalation_team", sa.String(length=100), nullable=True),
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
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sla_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_sla_policies")),
    )
    op.create_index(
        "uq_sla_policies_tenant_id_default",
        "sla_policies",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_index(
        "uq_sla_policies_tenant_id_key", "sla_policies", ["tenant_id", "key"], unique=True
    )
    op.create_table(
        "ticket_rules",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "conditions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("assignee", sa.String(length=255), nullable=True),
        sa.Column("sla_policy_id", sa.Uuid(), nullable=True),
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
            "priority IN ('urgent', 'high', 'normal', 'low')", name=op.f("ck_ticket_rules_priority")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "sla_policy_id"],
            ["sla_policies.tenant_id", "sla_policies.id"],
            name=op.f("fk_ticket_rules_tenant_id_sla_policy_id_sla_policies"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ticket_rules_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_ticket_rules")),
    )
    op.create_index(
        op.f("ix_ticket_rules_tenant_id_position_id"),
        "ticket_rules",
        ["tenant_id", "position", "id"],
        unique=False,
    )
    op.create_table(
        "tickets",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("assignee", sa.String(length=255), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("touchpoint", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("agent_ref", sa.String(length=255), nullable=True),
        sa.Column("location_ref", sa.String(length=255), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=True),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("sla_policy_id", sa.Uuid(), nullable=False),
        sa.Column("first_response_budget", sa.Interval(), nullable=False),
        sa.Column(
            "first_response_consumed",
            sa.Interval(),
            server_default=sa.text("'0'::interval"),
            nullable=False,
        ),
        sa.Column("first_response_running_since", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("first_response_stopped_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("first_response_due_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("first_response_warn_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("first_response_warned_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("first_response_breached_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("resolution_budget", sa.Interval(), nullable=False),
        sa.Column(
            "resolution_consumed",
            sa.Interval(),
            server_default=sa.text("'0'::interval"),
            nullable=False,
        ),
        sa.Column("resolution_running_since", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("resolution_stopped_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("resolution_due_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("resolution_warn_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("resolution_warned_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("resolution_breached_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("next_sla_check_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("first_replied_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column(
            "escalation_level", sa.SmallInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("repeat_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reopened_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("root_cause", sa.String(length=100), nullable=True),
        sa.Column("resolution_summary", sa.Text(), nullable=True),
        sa.Column("follow_up_solved", sa.Boolean(), nullable=True),
        sa.Column("follow_up_comment", sa.Text(), nullable=True),
        sa.Column("follow_up_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("closed_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("reopened_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
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
            "priority IN ('urgent', 'high', 'normal', 'low')", name=op.f("ck_tickets_priority")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'in_progress', 'waiting_on_customer', "
            "'resolved', 'closed', 'reopened')",
            name=op.f("ck_tickets_status"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_tickets_tenant_id_customer_id_customers"),
            ondelete="SET NULL (customer_id)",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "sla_policy_id"],
            ["sla_policies.tenant_id", "sla_policies.id"],
            name=op.f("fk_tickets_tenant_id_sla_policy_id_sla_policies"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tickets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_tickets")),
    )
    op.create_index(
        "ix_tickets_next_sla_check_at",
        "tickets",
        ["next_sla_check_at"],
        unique=False,
        postgresql_where=sa.text("next_sla_check_at IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_tickets_tenant_id_created_at_id"),
        "tickets",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_tickets_tenant_id_customer_id_resolved_at"),
        "tickets",
        ["tenant_id", "customer_id", "resolved_at"],
        unique=False,
    )
    op.create_index(
        "uq_tickets_active_customer_touchpoint",
        "tickets",
        ["tenant_id", "customer_id", sa.literal_column("coalesce(touchpoint, '')")],
        unique=True,
        postgresql_where=sa.text(
            "status IN ('open', 'acknowledged', 'in_progress', 'waiting_on_customer', "
            "'reopened') AND customer_id IS NOT NULL"
        ),
    )
    op.create_table(
        "ticket_entries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("actor_key_id", sa.Uuid(), nullable=True),
        sa.Column("author", sa.String(length=255), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column(
            "data", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "ticket_id"],
            ["tickets.tenant_id", "tickets.id"],
            name=op.f("fk_ticket_entries_tenant_id_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_ticket_entries")),
    )
    op.create_index(
        op.f("ix_ticket_entries_tenant_id_ticket_id_created_at_id"),
        "ticket_entries",
        ["tenant_id", "ticket_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "ticket_responses",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column(
            "linked_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "ticket_id"],
            ["tickets.tenant_id", "tickets.id"],
            name=op.f("fk_ticket_responses_tenant_id_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "ticket_id", "response_id", name=op.f("pk_ticket_responses")
        ),
    )
    op.create_index(
        op.f("ix_ticket_responses_tenant_id_response_id"),
        "ticket_responses",
        ["tenant_id", "response_id"],
        unique=False,
    )
    op.add_column(
        "tenants",
        sa.Column("ticket_reopen_days", sa.Integer(), server_default=sa.text("30"), nullable=False),
    )
    # Tenants that exist already get what a new tenant gets (tickets/defaults.py), frozen
    # here as it was when this migration was written.
    op.execute(SEED_POLICY)
    op.execute(SEED_RULES)


SEED_POLICY = """
INSERT INTO sla_policies (tenant_id, id, key, name, is_default, targets)
SELECT id, gen_random_uuid(), 'standard', 'Standard', true,
       '{"urgent": {"first_response_minutes": 60, "resolution_minutes": 480},
         "high": {"first_response_minutes": 240, "resolution_minutes": 1440},
         "normal": {"first_response_minutes": 1440, "resolution_minutes": 4320},
         "low": {"first_response_minutes": 4320, "resolution_minutes": 10080}}'::jsonb
FROM tenants
"""
SEED_RULES = """
INSERT INTO ticket_rules (tenant_id, id, name, position, conditions, priority)
SELECT t.id, gen_random_uuid(), r.name, r.position, r.conditions::jsonb, r.priority
FROM tenants t CROSS JOIN (VALUES
    ('NPS 0–3: high', 10, '{"kinds": ["nps"], "score_max": 3}', 'high'),
    ('NPS detractor (0–6)', 20, '{"kinds": ["nps"], "score_max": 6}', 'normal'),
    ('CSAT 1–2', 30, '{"kinds": ["csat"], "score_max": 2}', 'normal'),
    ('CES 5–7 (hard to get it done)', 40, '{"kinds": ["ces"], "score_min": 5}', 'normal')
) AS r (name, position, conditions, priority)
"""


def downgrade() -> None:
    op.drop_column("tenants", "ticket_reopen_days")
    op.drop_index(op.f("ix_ticket_responses_tenant_id_response_id"), table_name="ticket_responses")
    op.drop_table("ticket_responses")
    op.drop_index(
        op.f("ix_ticket_entries_tenant_id_ticket_id_created_at_id"), table_name="ticket_entries"
    )
    op.drop_table("ticket_entries")
    op.drop_index(
        "uq_tickets_active_customer_touchpoint",
        table_name="tickets",
        postgresql_where=sa.text(
            "status IN ('open', 'acknowledged', 'in_progress', 'waiting_on_customer', "
            "'reopened') AND customer_id IS NOT NULL"
        ),
    )
    op.drop_index(op.f("ix_tickets_tenant_id_customer_id_resolved_at"), table_name="tickets")
    op.drop_index(op.f("ix_tickets_tenant_id_created_at_id"), table_name="tickets")
    op.drop_index(
        "ix_tickets_next_sla_check_at",
        table_name="tickets",
        postgresql_where=sa.text("next_sla_check_at IS NOT NULL"),
    )
    op.drop_table("tickets")
    op.drop_index(op.f("ix_ticket_rules_tenant_id_position_id"), table_name="ticket_rules")
    op.drop_table("ticket_rules")
    op.drop_index("uq_sla_policies_tenant_id_key", table_name="sla_policies")
    op.drop_index(
        "uq_sla_policies_tenant_id_default",
        table_name="sla_policies",
        postgresql_where=sa.text("is_default"),
    )
    op.drop_table("sla_policies")
