"""themes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 06:51:00+00:00

- themes: each tenant's theme dictionary (key, names, keywords, aliases, negative keywords).
- theme_dictionaries: the dictionary's version and the re-classification pass's progress.
- response_themes: the themes each comment mentions (derived from comment and dictionary).
- Admin keys (those holding `tenant:manage`) get `insights:read` and `insights:write`, as
  admin keys made from now on do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "theme_dictionaries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pass_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pass_cursor", sa.Uuid(), nullable=True),
        sa.Column("classified_version", sa.Integer(), server_default="0", nullable=False),
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
            name=op.f("fk_theme_dictionaries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_theme_dictionaries")),
    )
    op.create_table(
        "themes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column(
            "names", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("keywords", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("aliases", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("negative_keywords", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("origin", sa.String(length=16), server_default="manual", nullable=False),
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
        sa.CheckConstraint("origin IN ('manual', 'discovered')", name=op.f("ck_themes_origin")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_themes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_themes")),
    )
    op.create_table(
        "response_themes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("theme_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "response_id"],
            ["responses.tenant_id", "responses.id"],
            name=op.f("fk_response_themes_tenant_id_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "response_id", "theme_key", name=op.f("pk_response_themes")
        ),
    )
    op.create_index(
        op.f("ix_response_themes_tenant_id_theme_key_response_id"),
        "response_themes",
        ["tenant_id", "theme_key", "response_id"],
        unique=False,
    )
    # Every tenant has its dictionary's row from the start: ingest locks it (KEY SHARE)
    # while it classifies, so a change of the dictionary waits for in-flight ingest.
    op.execute("INSERT INTO theme_dictionaries (tenant_id) SELECT id FROM tenants")
    op.execute(
        "UPDATE api_keys SET scopes = scopes || '{insights:read,insights:write}'::text[] "
        "WHERE 'tenant:manage' = ANY(scopes) AND NOT 'insights:read' = ANY(scopes)"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE api_keys SET scopes = array_remove(array_remove(scopes, 'insights:read'), "
        "'insights:write')"
    )
    op.drop_index(
        op.f("ix_response_themes_tenant_id_theme_key_response_id"), table_name="response_themes"
    )
    op.drop_table("response_themes")
    op.drop_table("themes")
    op.drop_table("theme_dictionaries")
