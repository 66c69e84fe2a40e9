"""SQL for the metrics: the histogram query, folding deltas into the rollup, rebuilding.

All on asyncpg under the session (kit.rawsql): the statements are generated, take arrays,
and a metrics request is one statement (so it reads one snapshot in READ COMMITTED).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.rawsql import driver_connection
from feedback_api.metrics.periods import Coverage, Interval, start_of
from feedback_api.metrics.selection import Selection

# Dimensions the rollup keeps: filters and groupings on these are answered from it.
ROLLUP_DIMENSIONS = frozenset({"channel", "touchpoint", "survey"})
# Columns of `responses` a breakdown can group by directly.
RAW_DIMENSIONS = frozenset(
    {"channel", "touchpoint", "survey", "agent_ref", "location_ref", "language"}
)
# Serialises folding and rebuilding (pg_try_advisory_xact_lock(class, key)).
ROLLUP_LOCK = (0x4642, 1)
FOLD_BATCH = 50_000


class HistogramRow(NamedTuple):
    bucket: int
    group: str | None
    excluded: bool
    score: int | None  # a single score's count (n) ...
    counts: list[int] | None  # ... or a whole histogram from the rollup
    n: int


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def _group_sql(group_by: str | None, alias: str, params: _Params) -> str:
    if group_by is None:
        return "NULL::text"
    if group_by in ("touchpoint", "survey") and alias in ("r", "d"):
        return f"nullif({alias}.{group_by}, '')"
    if group_by in RAW_DIMENSIONS:
        return f"{alias}.{group_by}::text"
    if group_by == "tag":
        return "t.tag"
    if group_by.startswith("attr."):
        return f"c.attributes ->> {params(group_by[5:], '::text')}"
    raise ValueError(f"cannot group by {group_by!r}")


def _filters(selection: Selection, alias: str, params: _Params) -> list[str]:
    s = selection
    where = [f"{alias}.kind = {params(s.kind, '::text')}"]
    if s.kind == "rating":  # nps, csat and ces have one scale each (enforced on input)
        where.append(f"{alias}.scale_min = {params(s.scale_min, '::int2')}")
        where.append(f"{alias}.scale_max = {params(s.scale_max, '::int2')}")
    for column in ("channel", "touchpoint", "survey"):
        value = getattr(s, column)
        if value is not None:
            where.append(f"{alias}.{column} = {params(value, '::text')}")
    if s.verified_only:
        where.append(f"{alias}.verified")
    if alias == "x":
        for column in ("agent_ref", "location_ref", "language"):
            value = getattr(s, column)
            if value is not None:
                where.append(f"x.{column} = {params(value, '::text')}")
        if s.tag is not None:
            where.append(f"x.tags @> ARRAY[{params(s.tag, '::text')}]")
        for name, value in s.attributes:
            where.append(f"c.attributes ->> {params(name, '::text')} = {params(value, '::text')}")
    return where


def _totals_suffice(selection: Selection, group_by: str | None) -> bool:
    """Whether metric_totals (no channel/touchpoint/survey) answers the query."""
    return (
        group_by is None
        and selection.channel is None
        and selection.touchpoint is None
        and selection.survey is None
    )


def histogram_query(
    selection: Selection,
    coverage: Coverage,
    *,
    group_by: str | None,
    raw_bounds: Sequence[datetime] | None = None,
) -> tuple[str, list[Any]]:
    """One statement: rollup rows + unfolded deltas for the whole days, raw rows for the
    rest. `raw_bounds` (bucket starts) buckets the raw part by width_bucket when the whole
    period is read raw."""
    p = _Params()
    tenant = p(selection.tenant_id, "::uuid")
    parts: list[str] = []
    if coverage.rollup:
        width = selection.scale_max - selection.scale_min + 1
        sums = ", ".join(f"sum(r.counts[{i}])" for i in range(1, width + 1))
        where = " AND ".join(_filters(selection, "r", p))
        buckets, grains, starts = zip(*coverage.rollup, strict=True)
        # One index probe per (grain, period_start): the LATERAL subquery with OFFSET 0
        # cannot be flattened into a join, so the plan does not depend on statistics
        # (a stale estimate once turned this into a scan of the tenant's whole rollup).
        table = "metric_totals" if _totals_suffice(selection, group_by) else "metric_rollups"
        parts.append(
            f"SELECT s.bucket, {_group_sql(group_by, 'r', p)} AS grp, r.excluded, "
            f"NULL::int2 AS score, ARRAY[{sums}]::int8[] AS counts, NULL::int8 AS n "
            f"FROM unnest({p(list(buckets), '::int[]')}, {p(list(grains), '::text[]')}, "
            f"{p(list(starts), '::date[]')}) AS s(bucket, grain, period_start) "
            f"CROSS JOIN LATERAL (SELECT * FROM {table} r WHERE r.tenant_id = {tenant} "
            f"AND r.grain = s.grain AND r.period_start = s.period_start AND {where} "
            f"OFFSET 0) AS r GROUP BY 1, 2, 3"
        )
        # Deltas in the same spans, in one pass: width_bucket finds the span (spans are in
        # time order and may have gaps where a partial day is read raw instead).
        buckets, los, his = zip(*coverage.rollup_spans, strict=True)
        where = " AND ".join(
            [
                f"d.tenant_id = {tenant}",
                f"d.occurred_at >= {p(los[0], '::timestamptz')}",
                f"d.occurred_at < {p(his[-1], '::timestamptz')}",
                *_filters(selection, "d", p),
            ]
        )
        span = f"width_bucket(d.occurred_at, {p(list(los), '::timestamptz[]')})"
        parts.append(
            f"SELECT ({p(list(buckets), '::int[]')})[d.span], "
            f"{_group_sql(group_by, 'd', p)}, d.excluded, d.score, NULL, sum(d.sign)::int8 "
            f"FROM (SELECT d.*, {span} AS span FROM metric_deltas d WHERE {where}) AS d "
            f"WHERE d.occurred_at < ({p(list(his), '::timestamptz[]')})[d.span] "
            f"GROUP BY 1, 2, 3, 4"
        )
    raw_ranges: list[tuple[str, datetime, datetime]] = []
    if raw_bounds is not None and coverage.raw:
        bounds = p(list(raw_bounds), "::timestamptz[]")
        raw_ranges.append(
            (f"width_bucket(x.occurred_at, {bounds}) - 1", coverage.raw[0][1], coverage.raw[-1][2])
        )
    else:
        raw_ranges.extend((p(b, "::int"), lo, hi) for b, lo, hi in coverage.raw)
    for bucket_sql, lo, hi in raw_ranges:
        joins = ""
        if selection.attributes:
            joins += " JOIN customers c ON c.tenant_id = x.tenant_id AND c.id = x.customer_id"
        elif group_by is not None and group_by.startswith("attr."):
            joins += " LEFT JOIN customers c ON c.tenant_id = x.tenant_id AND c.id = x.customer_id"
        if group_by == "tag":
            joins += " LEFT JOIN LATERAL unnest(x.tags) AS t(tag) ON true"
        group = _group_sql(group_by, "x", p)
        where = " AND ".join(
            [
                f"x.tenant_id = {tenant}",
                "x.deleted_at IS NULL",
                f"x.occurred_at >= {p(lo, '::timestamptz')}",
                f"x.occurred_at < {p(hi, '::timestamptz')}",
                *_filters(selection, "x", p),
            ]
        )
        parts.append(
            f"SELECT {bucket_sql}, {group}, x.excluded, x.score, NULL, count(*) "
            f"FROM responses x{joins} WHERE {where} GROUP BY 1, 2, 3, 4"
        )
    return " UNION ALL ".join(parts), p.values


@dataclass(frozen=True, slots=True)
class TenantMetricSettings:
    timezone: str
    rollup_timezone: str | None
    low_sample_n: int
    min_cell_n: int


class _GroupKey(NamedTuple):
    tenant_id: UUID
    grain: str
    period_start: date
    kind: str
    scale_min: int
    scale_max: int
    channel: str
    touchpoint: str
    survey: str
    verified: bool
    excluded: bool


class _TotalKey(NamedTuple):
    tenant_id: UUID
    grain: str
    period_start: date
    kind: str
    scale_min: int
    scale_max: int
    verified: bool
    excluded: bool


def _add(rows: dict[Any, list[int]], key: _GroupKey | _TotalKey, score: int, n: int) -> None:
    counts = rows.get(key)
    if counts is None:
        counts = rows[key] = [0] * (key.scale_max - key.scale_min + 1)
    counts[score - key.scale_min] += n


@dataclass(slots=True)
class _Histograms:
    rows: dict[_GroupKey, list[int]] = field(default_factory=dict)
    totals: dict[_TotalKey, list[int]] = field(default_factory=dict)

    def add(self, key: _GroupKey, score: int, n: int) -> None:
        _add(self.rows, key, score, n)
        total = _TotalKey(
            key.tenant_id,
            key.grain,
            key.period_start,
            key.kind,
            key.scale_min,
            key.scale_max,
            key.verified,
            key.excluded,
        )
        _add(self.totals, total, score, n)


# Columns returned by FOLD and REBUILD_SOURCE, in this order.
_SOURCE_COLUMNS = (
    "tenant_id, day, kind, scale_min, scale_max, channel, touchpoint, survey, verified, "
    "excluded, score, n"
)
FOLD = f"""
WITH batch AS (SELECT ctid FROM metric_deltas LIMIT $1 FOR UPDATE SKIP LOCKED),
moved AS (
    DELETE FROM metric_deltas d USING batch WHERE d.ctid = batch.ctid
    RETURNING d.tenant_id, d.occurred_at, d.kind, d.scale_min, d.scale_max, d.channel,
        d.touchpoint, d.survey, d.verified, d.excluded, d.score, d.sign
)
SELECT {_SOURCE_COLUMNS} FROM (
    SELECT m.tenant_id, (m.occurred_at AT TIME ZONE s.timezone)::date AS day, m.kind,
        m.scale_min, m.scale_max, m.channel, m.touchpoint, m.survey, m.verified, m.excluded,
        m.score, sum(m.sign)::int8 AS n
    FROM moved m JOIN metric_rollup_state s ON s.tenant_id = m.tenant_id
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
) AS folded WHERE n <> 0
"""
# One statement, so one snapshot: the deltas it deletes are exactly those of the responses
# it counts; later commits leave their deltas for the next fold.
REBUILD_SOURCE = f"""
WITH gone AS (DELETE FROM metric_deltas WHERE tenant_id = $1)
SELECT {_SOURCE_COLUMNS} FROM (
    SELECT x.tenant_id, (x.occurred_at AT TIME ZONE $2::text)::date AS day, x.kind,
        x.scale_min, x.scale_max, x.channel, coalesce(x.touchpoint, '') AS touchpoint,
        coalesce(x.survey, '') AS survey, x.verified, x.excluded, x.score, count(*) AS n
    FROM responses x WHERE x.tenant_id = $1 AND x.deleted_at IS NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
) AS counted
"""
UPSERT = """
INSERT INTO metric_rollups AS r (tenant_id, grain, period_start, kind, scale_min, scale_max,
    channel, touchpoint, survey, verified, excluded, counts)
SELECT u.tenant_id, u.grain, u.period_start, u.kind, u.scale_min, u.scale_max, u.channel,
    u.touchpoint, u.survey, u.verified, u.excluded, u.counts::int[]
FROM unnest($1::uuid[], $2::text[], $3::date[], $4::text[], $5::int2[], $6::int2[],
    $7::text[], $8::text[], $9::text[], $10::bool[], $11::bool[], $12::text[])
    AS u(tenant_id, grain, period_start, kind, scale_min, scale_max, channel, touchpoint,
    survey, verified, excluded, counts)
ON CONFLICT ON CONSTRAINT pk_metric_rollups DO UPDATE SET counts = (
    SELECT array_agg(a + b ORDER BY i)
    FROM unnest(r.counts, excluded.counts) WITH ORDINALITY AS h(a, b, i)
)
"""
UPSERT_TOTALS = """
INSERT INTO metric_totals AS r (tenant_id, grain, period_start, kind, scale_min, scale_max,
    verified, excluded, counts)
SELECT u.tenant_id, u.grain, u.period_start, u.kind, u.scale_min, u.scale_max, u.verified,
    u.excluded, u.counts::int[]
FROM unnest($1::uuid[], $2::text[], $3::date[], $4::text[], $5::int2[], $6::int2[],
    $7::bool[], $8::bool[], $9::text[])
    AS u(tenant_id, grain, period_start, kind, scale_min, scale_max, verified, excluded, counts)
ON CONFLICT ON CONSTRAINT pk_metric_totals DO UPDATE SET counts = (
    SELECT array_agg(a + b ORDER BY i)
    FROM unnest(r.counts, excluded.counts) WITH ORDINALITY AS h(a, b, i)
)
"""
GRAINS = (Interval.DAY, Interval.WEEK, Interval.MONTH)
GRAIN_NAMES = tuple(g.value for g in GRAINS)


def _to_histograms(records: Iterable[Any]) -> _Histograms:
    histograms = _Histograms()
    starts: dict[date, tuple[date, date, date]] = {}  # day -> its day, week and month starts
    for rec in records:
        day = rec["day"]
        if day not in starts:
            starts[day] = (day, start_of(day, Interval.WEEK), start_of(day, Interval.MONTH))
        grain_starts = starts[day]
        dims = tuple(rec)[2:10]  # kind … excluded
        for grain, period_start in zip(GRAIN_NAMES, grain_starts, strict=True):
            histograms.add(
                _GroupKey(rec["tenant_id"], grain, period_start, *dims), rec["score"], rec["n"]
            )
    return histograms


class MetricRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def settings(self, tenant_id: UUID) -> TenantMetricSettings | None:
        conn = await driver_connection(self.session)
        record = await conn.fetchrow(
            "SELECT t.timezone, s.timezone AS rollup_timezone, t.metrics_low_sample_n, "
            "t.metrics_min_cell_n FROM tenants t "
            "LEFT JOIN metric_rollup_state s ON s.tenant_id = t.id WHERE t.id = $1",
            tenant_id,
        )
        if record is None:
            return None
        return TenantMetricSettings(*record)

    async def histograms(
        self,
        selection: Selection,
        coverage: Coverage,
        *,
        group_by: str | None,
        raw_bounds: Sequence[datetime] | None = None,
    ) -> list[HistogramRow]:
        sql, params = histogram_query(selection, coverage, group_by=group_by, raw_bounds=raw_bounds)
        if not sql:
            return []
        conn = await driver_connection(self.session)
        return [HistogramRow(*record) for record in await conn.fetch(sql, *params)]

    async def _lock(self) -> bool:
        conn = await driver_connection(self.session)
        locked: bool = await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", *ROLLUP_LOCK)
        return locked

    async def fold(self, limit: int = FOLD_BATCH) -> int:
        """Move up to `limit` deltas into the rollup. Returns how many were moved (0 when
        another worker is folding or rebuilding)."""
        if not await self._lock():
            return 0
        conn = await driver_connection(self.session)
        records = await conn.fetch(FOLD, limit)
        await self._upsert(_to_histograms(records))
        return len(records)

    async def rebuild(self, tenant_id: UUID) -> bool:
        """Recount the tenant's rollup from its responses in its current time zone. False
        when a fold or another rebuild holds the lock (try again shortly)."""
        if not await self._lock():
            return False
        conn = await driver_connection(self.session)
        timezone = await conn.fetchval("SELECT timezone FROM tenants WHERE id = $1", tenant_id)
        if timezone is None:
            return True
        await conn.execute("DELETE FROM metric_rollups WHERE tenant_id = $1", tenant_id)
        await conn.execute("DELETE FROM metric_totals WHERE tenant_id = $1", tenant_id)
        records = await conn.fetch(REBUILD_SOURCE, tenant_id, timezone)
        await self._upsert(_to_histograms(records))
        await conn.execute(
            "INSERT INTO metric_rollup_state (tenant_id, timezone, rebuilt_at) "
            "VALUES ($1, $2, now()) ON CONFLICT (tenant_id) DO UPDATE "
            "SET timezone = excluded.timezone, rebuilt_at = excluded.rebuilt_at",
            tenant_id,
            timezone,
        )
        return True

    async def _upsert(self, histograms: _Histograms) -> None:
        conn = await driver_connection(self.session)
        tables: tuple[tuple[str, dict[Any, list[int]]], ...] = (
            (UPSERT, histograms.rows),
            (UPSERT_TOTALS, histograms.totals),
        )
        for statement, rows in tables:
            if not rows:
                continue
            # A stable order, so two upserts touching the same rows cannot deadlock.
            keys = sorted(rows, key=lambda k: tuple(str(v) for v in k))
            columns: list[list[Any]] = [list(c) for c in zip(*keys, strict=True)]
            counts = ["{" + ",".join(map(str, rows[k])) + "}" for k in keys]
            await conn.execute(statement, *columns, counts)

    async def pending_deltas(self) -> int:
        conn = await driver_connection(self.session)
        count: int = await conn.fetchval("SELECT count(*) FROM metric_deltas")
        return count
