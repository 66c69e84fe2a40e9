"""dictionary version for ingest, without a row lock

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 12:00:00+00:00

Ingest classifies each comment with the tenant's current theme dictionary, and a change of
the dictionary re-classifies the stored comments in the background. A comment classified
with the old version and committed after that pass had passed it would stay wrong, so the
pass first waits for the transactions that may still classify with an older version
(insights/service.py, `reclassify_step`). It finds them by a marker: every transaction that
classifies holds the tenant's dictionary advisory lock *shared*. Nobody ever takes it
exclusively, so the marker never makes ingest wait (a row lock cost up to a third of ingest
throughput: many concurrent lockers of one row write it, as multixacts).

The marker must be taken before the version is read, and in READ COMMITTED one statement
reads with the snapshot of its start. A VOLATILE function takes a fresh snapshot for each
statement it runs: lock, then read, in one round trip.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION theme_dictionary_version_for_ingest(p_tenant uuid) RETURNS integer
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            -- 21576 = 0x5448 ("TH"): the class of the per-tenant dictionary markers.
            PERFORM pg_advisory_xact_lock_shared(21576, hashtext(p_tenant::text));
            RETURN (SELECT version FROM theme_dictionaries WHERE tenant_id = p_tenant);
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION theme_dictionary_version_for_ingest(uuid)")
