"""metrics rebuild progress

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:33:31.580953+00:00

`metrics.rebuild` recounts a tenant's rollup in bounded transactions (metrics/repository.py);
its progress is kept in metric_rollup_state. While one runs, the tenant's rollup is half
recounted, so `bi_daily_scores` counts that tenant's raw rows instead (in the zone being
rebuilt in), as the API does.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEAD = """
CREATE OR REPLACE VIEW bi_daily_scores AS
SELECT tenant_id, day, kind, scale_min, scale_max, channel, nullif(touchpoint, '') AS touchpoint,
       nullif(survey, '') AS survey, verified, excluded, score, sum(n)::bigint AS responses
FROM (
"""
_TAIL = """
) AS x
GROUP BY tenant_id, day, kind, scale_min, scale_max, channel, touchpoint, survey, verified,
         excluded, score
HAVING sum(n) <> 0
"""

BI_DAILY_SCORES = f"""{_HEAD}
    SELECT r.tenant_id, r.period_start AS day, r.kind, r.scale_min, r.scale_max, r.channel,
           r.touchpoint, r.survey, r.verified, r.excluded, r.scale_min + h.i - 1 AS score, h.n
    FROM metric_rollups r
    JOIN metric_rollup_state s ON s.tenant_id = r.tenant_id AND s.rebuild_timezone IS NULL
    CROSS JOIN LATERAL unnest(r.counts) WITH ORDINALITY AS h(n, i)
    WHERE r.grain = 'day'
    UNION ALL
    SELECT d.tenant_id, (d.occurred_at AT TIME ZONE s.timezone)::date, d.kind, d.scale_min,
           d.scale_max, d.channel, d.touchpoint, d.survey, d.verified, d.excluded, d.score,
           d.sign
    FROM metric_deltas d
    JOIN metric_rollup_state s ON s.tenant_id = d.tenant_id AND s.rebuild_timezone IS NULL
    UNION ALL
    SELECT x.tenant_id, (x.occurred_at AT TIME ZONE s.rebuild_timezone)::date, x.kind,
           x.scale_min, x.scale_max, x.channel, coalesce(x.touchpoint, ''),
           coalesce(x.survey, ''), x.verified, x.excluded, x.score, 1
    FROM metric_rollup_state s
    JOIN responses x ON x.tenant_id = s.tenant_id AND x.deleted_at IS NULL
    WHERE s.rebuild_timezone IS NOT NULL
{_TAIL}"""

BI_DAILY_SCORES_0005 = f"""{_HEAD}
    SELECT r.tenant_id, r.period_start AS day, r.kind, r.scale_min, r.scale_max, r.channel,
           r.touchpoint, r.survey, r.verified, r.excluded, r.scale_min + h.i - 1 AS score, h.n
    FROM metric_rollups r CROSS JOIN LATERAL unnest(r.counts) WITH ORDINALITY AS h(n, i)
    WHERE r.grain = 'day'
    UNION ALL
    SELECT d.tenant_id, (d.occurred_at AT TIME ZONE s.timezone)::date, d.kind, d.scale_min,
           d.scale_max, d.channel, d.touchpoint, d.survey, d.verified, d.excluded, d.score,
           d.sign
    FROM metric_deltas d JOIN metric_rollup_state s ON s.tenant_id = d.tenant_id
{_TAIL}"""


def upgrade() -> None:
    op.add_column(
        "metric_rollup_state",
        sa.Column("rebuild_timezone", sa.String(length=64), nullable=True),
    )
    op.add_column(
        "metric_rollup_state",
        sa.Column("rebuilt_from", sa.TIMESTAMP(timezone=True), nullable=True),
    )
    op.execute(BI_DAILY_SCORES)


def downgrade() -> None:
    op.execute(BI_DAILY_SCORES_0005)
    op.drop_column("metric_rollup_state", "rebuilt_from")
    op.drop_column("metric_rollup_state", "rebuild_timezone")
