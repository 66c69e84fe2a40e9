"""metrics

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 01:08:01.628864+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The columns of a response that place it in the rollup, as a delta row lists them.
DIMENSIONS = (
    "tenant_id, occurred_at, kind, scale_min, scale_max, channel, touchpoint, survey, "
    "verified, excluded, score"
)


def _dims(alias: str) -> str:
    return (
        f"{alias}.tenant_id, {alias}.occurred_at, {alias}.kind, {alias}.scale_min, "
        f"{alias}.scale_max, {alias}.channel, coalesce({alias}.touchpoint, ''), "
        f"coalesce({alias}.survey, ''), {alias}.verified, {alias}.excluded, {alias}.score"
    )


def _changed(old: str, new: str) -> str:
    return f"({_dims(old)}) IS DISTINCT FROM ({_dims(new)})"


# Statement-level triggers with transition tables: one INSERT of deltas per statement, so a
# batch of 1,000 responses costs one extra statement inside PostgreSQL, not 1,000.
TRIGGER_FUNCTIONS = [
    f"""
CREATE FUNCTION metric_deltas_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_deltas ({DIMENSIONS}, sign)
    SELECT {_dims("n")}, 1 FROM new_rows n WHERE n.deleted_at IS NULL;
    RETURN NULL;
END $$
""",
    f"""
CREATE FUNCTION metric_deltas_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_deltas ({DIMENSIONS}, sign)
    SELECT {_dims("o")}, -1
    FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
    WHERE o.deleted_at IS NULL AND (n.deleted_at IS NOT NULL OR {_changed("o", "n")})
    UNION ALL
    SELECT {_dims("n")}, 1
    FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
    WHERE n.deleted_at IS NULL AND (o.deleted_at IS NOT NULL OR {_changed("o", "n")});
    RETURN NULL;
END $$
""",
    f"""
CREATE FUNCTION metric_deltas_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_deltas ({DIMENSIONS}, sign)
    SELECT {_dims("o")}, -1 FROM old_rows o WHERE o.deleted_at IS NULL;
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION metric_rollup_state_on_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_rollup_state (tenant_id, timezone) VALUES (NEW.id, NEW.timezone);
    RETURN NULL;
END $$
""",
]
TRIGGERS = [
    "CREATE TRIGGER responses_metric_insert AFTER INSERT ON responses "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION metric_deltas_on_insert()",
    "CREATE TRIGGER responses_metric_update AFTER UPDATE ON responses "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION metric_deltas_on_update()",
    "CREATE TRIGGER responses_metric_delete AFTER DELETE ON responses "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION metric_deltas_on_delete()",
    "CREATE TRIGGER tenants_metric_state AFTER INSERT ON tenants "
    "FOR EACH ROW EXECUTE FUNCTION metric_rollup_state_on_tenant()",
]

# For BI tools on a read replica (docs/bi.md): responses without internal columns, and the
# daily score histograms (rollup plus what the worker has not folded yet) one row per score.
BI_VIEWS = [
    """
CREATE VIEW bi_responses AS
SELECT r.tenant_id, r.id, r.kind, r.score, r.scale_min, r.scale_max, r.comment, r.tags,
       r.channel, r.touchpoint, r.survey, c.external_ref AS customer, r.agent_ref,
       r.location_ref, r.language, r.attributes, r.external_id, r.verified, r.excluded,
       r.occurred_at, (r.occurred_at AT TIME ZONE t.timezone)::date AS local_date,
       r.received_at, r.updated_at
FROM responses r
JOIN tenants t ON t.id = r.tenant_id
LEFT JOIN customers c ON c.tenant_id = r.tenant_id AND c.id = r.customer_id
WHERE r.deleted_at IS NULL
""",
    """
CREATE VIEW bi_daily_scores AS
SELECT tenant_id, day, kind, scale_min, scale_max, channel, nullif(touchpoint, '') AS touchpoint,
       nullif(survey, '') AS survey, verified, excluded, score, sum(n)::bigint AS responses
FROM (
    SELECT r.tenant_id, r.period_start AS day, r.kind, r.scale_min, r.scale_max, r.channel,
           r.touchpoint, r.survey, r.verified, r.excluded, r.scale_min + h.i - 1 AS score, h.n
    FROM metric_rollups r CROSS JOIN LATERAL unnest(r.counts) WITH ORDINALITY AS h(n, i)
    WHERE r.grain = 'day'
    UNION ALL
    SELECT d.tenant_id, (d.occurred_at AT TIME ZONE s.timezone)::date, d.kind, d.scale_min,
           d.scale_max, d.channel, d.touchpoint, d.survey, d.verified, d.excluded, d.score,
           d.sign
    FROM metric_deltas d JOIN metric_rollup_state s ON s.tenant_id = d.tenant_id
) AS x
GROUP BY tenant_id, day, kind, scale_min, scale_max, channel, touchpoint, survey, verified,
         excluded, score
HAVING sum(n) <> 0
""",
]


def upgrade() -> None:
    op.create_table(
        "metric_deltas",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scale_min", sa.SmallInteger(), nullable=False),
        sa.Column("scale_max", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("survey", sa.String(length=100), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("sign", sa.SmallInteger(), nullable=False),
    )
    op.create_table(
        "metric_rollup_state",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("rebuilt_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_metric_rollup_state_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_metric_rollup_state")),
    )
    op.create_table(
        "metric_rollups",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("grain", sa.String(length=5), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("scale_min", sa.SmallInteger(), nullable=False),
        sa.Column("scale_max", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("survey", sa.String(length=100), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("counts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_metric_rollups_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "kind",
            "grain",
            "period_start",
            "scale_min",
            "scale_max",
            "channel",
            "touchpoint",
            "survey",
            "verified",
            "excluded",
            name=op.f("pk_metric_rollups"),
        ),
    )
    op.create_table(
        "metric_totals",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("grain", sa.String(length=5), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("scale_min", sa.SmallInteger(), nullable=False),
        sa.Column("scale_max", sa.SmallInteger(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("counts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_metric_totals_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "kind",
            "grain",
            "period_start",
            "scale_min",
            "scale_max",
            "verified",
            "excluded",
            name=op.f("pk_metric_totals"),
        ),
    )
    op.add_column(
        "responses",
        sa.Column("verified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column(
        "responses",
        sa.Column("excluded", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column(
        "tenants",
        sa.Column(
            "metrics_low_sample_n", sa.Integer(), server_default=sa.text("30"), nullable=False
        ),
    )
    op.add_column(
        "tenants",
        sa.Column("metrics_min_cell_n", sa.Integer(), server_default=sa.text("5"), nullable=False),
    )
    # Covering, so metrics filtered by a customer attribute are index-only scans.
    op.drop_index("ix_responses_tenant_id_customer_id", table_name="responses")
    op.create_index(
        "ix_responses_tenant_id_customer_id",
        "responses",
        ["tenant_id", "customer_id", "occurred_at"],
        postgresql_include=["kind", "score", "excluded", "deleted_at"],
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    )
    # A queue table: every row is deleted within seconds, so vacuum it by dead-row count,
    # not by a share of its (near zero) live rows.
    op.execute(
        "ALTER TABLE metric_deltas SET (autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 5000)"
    )
    for statement in [*TRIGGER_FUNCTIONS, *TRIGGERS, *BI_VIEWS]:
        op.execute(statement)
    # Existing data: every tenant gets its state, every live response a delta; the worker
    # folds them into the rollup (reads are exact meanwhile, only slower).
    op.execute(
        "INSERT INTO metric_rollup_state (tenant_id, timezone) SELECT id, timezone FROM tenants"
    )
    op.execute(
        f"INSERT INTO metric_deltas ({DIMENSIONS}, sign) "
        f"SELECT {_dims('r')}, 1 FROM responses r WHERE r.deleted_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP VIEW bi_daily_scores")
    op.execute("DROP VIEW bi_responses")
    op.execute("DROP TRIGGER tenants_metric_state ON tenants")
    op.execute("DROP TRIGGER responses_metric_delete ON responses")
    op.execute("DROP TRIGGER responses_metric_update ON responses")
    op.execute("DROP TRIGGER responses_metric_insert ON responses")
    op.execute("DROP FUNCTION metric_rollup_state_on_tenant()")
    op.execute("DROP FUNCTION metric_deltas_on_delete()")
    op.execute("DROP FUNCTION metric_deltas_on_update()")
    op.execute("DROP FUNCTION metric_deltas_on_insert()")
    op.drop_column("tenants", "metrics_min_cell_n")
    op.drop_column("tenants", "metrics_low_sample_n")
    op.drop_index("ix_responses_tenant_id_customer_id", table_name="responses")
    op.create_index(
        "ix_responses_tenant_id_customer_id",
        "responses",
        ["tenant_id", "customer_id"],
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    )
    op.drop_column("responses", "excluded")
    op.drop_column("responses", "verified")
    op.drop_table("metric_totals")
    op.drop_table("metric_rollups")
    op.drop_table("metric_rollup_state")
    op.drop_table("metric_deltas")
