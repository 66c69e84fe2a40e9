"""Storage behind the metrics: a score-histogram rollup kept exact by an append-only log.

Every change to `responses` that moves a response in or out of the numbers appends a row to
`metric_deltas` (statement-level triggers, same transaction; migration 0005). Ingest only
ever appends, so concurrent writers never queue on a shared counter row. The worker folds
deltas into `metric_rollups` (one histogram per tenant × local day/week/month × kind × scale
× channel × touchpoint × survey × verified × excluded), deleting the deltas it folded in the
same transaction. A read sums rollup rows and the not-yet-folded deltas in one statement, so
it sees every committed response exactly once: the rollup is never stale, only the share of
work left to the read changes. See docs/metrics.md.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Table,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.models import Base


class MetricRollup(Base):
    __tablename__ = "metric_rollups"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    # 'day' | 'week' (ISO, from Monday) | 'month', in the tenant's time zone
    grain: Mapped[str] = mapped_column(String(5), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    scale_min: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    scale_max: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    # '' stands for "none" so that these can be part of the key
    touchpoint: Mapped[str] = mapped_column(String(100), primary_key=True)
    survey: Mapped[str] = mapped_column(String(100), primary_key=True)
    verified: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    excluded: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    # counts[i] = responses with score scale_min + i - 1 (PostgreSQL arrays start at 1)
    counts: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class MetricTotal(Base):
    """The same histograms without channel, touchpoint and survey: what unfiltered queries
    (the most common: a tenant's NPS, its trend) read, about a hundred times fewer rows."""

    __tablename__ = "metric_totals"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    grain: Mapped[str] = mapped_column(String(5), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    scale_min: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    scale_max: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    verified: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    excluded: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    counts: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class MetricRollupState(Base):
    """The time zone the tenant's rollup is bucketed in, and the progress of its rebuild.

    When the tenant's time zone changes, the job `metrics.rebuild` recounts the rollup in
    bounded transactions, newest responses first (metrics/repository.py): it sets
    `rebuild_timezone`, empties the tenant's rollup, then recounts one `occurred_at` range
    per transaction, moving `rebuilt_from` down to '-infinity'. Responses at or after
    `rebuilt_from` are counted in `rebuild_timezone`, and the fold moves only their deltas;
    the deltas of older ones wait for their range's chunk. Reads use raw rows while a
    rebuild runs (`rebuild_timezone` set) or has not started (`timezone` is not the
    tenant's), so they are never bucketed in the wrong zone nor read a half-built rollup.
    """

    __tablename__ = "metric_rollup_state"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64))
    rebuilt_at: Mapped[datetime | None]
    # The zone a rebuild in progress recounts in; NULL when none runs.
    rebuild_timezone: Mapped[str | None] = mapped_column(String(64))
    # Responses with occurred_at >= this are recounted; NULL while the old rollup is being
    # emptied, 'infinity' when nothing is recounted yet.
    rebuilt_from: Mapped[datetime | None]


# Append-only, no key and no index: inserts stay as cheap as they can be, and the table
# holds only what the worker has not folded yet (normally under a second of ingest).
metric_deltas = Table(
    "metric_deltas",
    Base.metadata,
    Column("tenant_id", Uuid, nullable=False),
    Column("occurred_at", TIMESTAMP(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("scale_min", SmallInteger, nullable=False),
    Column("scale_max", SmallInteger, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("touchpoint", String(100), nullable=False),
    Column("survey", String(100), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("excluded", Boolean, nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("sign", SmallInteger, nullable=False),
)
