"""SQL for the metrics: the histogram query, folding deltas into the rollup, rebuilding.

All on asyncpg under the session (kit.rawsql): the statements are generated, take arrays,
and a metrics request is one statement (so it reads one snapshot in READ COMMITTED).

A rebuild (a tenant's time zone changed) runs in bounded steps, one transaction each
(`rebuild_step`), with its progress in metric_rollup_state, so a crash or a second rebuild
carries on from the last committed step:

1. start: set `rebuild_timezone` (reads go raw, the fold leaves the tenant's deltas alone)
   and `rebuilt_from = NULL`, under the fold lock, so no fold that read the old state can
   still write the old rollup after the start;
2. empty the tenant's rollup, REBUILD_WIPE rows per step, then `rebuilt_from = 'infinity'`;
3. recount one range [lo, rebuilt_from) of about REBUILD_CHUNK responses per step, newest
   first, deleting the range's deltas in the same statement (one snapshot: every change is
   either counted or left as a delta, never both nor neither), then `rebuilt_from = lo`.
   Meanwhile the fold moves the tenant's deltas at or after `rebuilt_from` (their range is
   recounted; later changes are deltas on top, bucketed in `rebuild_timezone`) and leaves
   older ones for their range's step. Newest first, so the live ingest of "now" is in a
   recounted range after the first step and keeps being folded;
4. the step whose range reaches '-infinity' makes `rebuild_timezone` the rollup's zone.

A step that finds the tenant's zone changed again starts over in the new zone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.periods import Coverage, Interval, start_of
from feedback_api.kit.rawsql import driver_connection
from feedback_api.metrics.selection import Selection

# Dimensions the rollup keeps: filters and groupings on these are answered from it.
ROLLUP_DIMENSIONS = frozenset({"channel", "touchpoint", "survey"})
# Columns of `responses` a breakdown can group by directly.
RAW_DIMENSIONS = frozenset(
    {"channel", "touchpoint", "survey", "agent_ref", "location_ref", "language"}
)
# Serialises folds (pg_try_advisory_xact_lock(class, key)), and a fold with the start of a
# rebuild (which takes it for a few milliseconds). The other rebuild steps do not take it.
ROLLUP_LOCK = (0x4642, 1)
FOLD_BATCH = 50_000
# Responses recounted per rebuild step (one transaction): one to two seconds on 2 shared
# cores with 10M responses and a dense rollup (docs/metrics.md).
REBUILD_CHUNK = 100_000
# Rollup rows deleted per step when a rebuild empties the tenant's old rollup.
REBUILD_WIPE = 50_000


class HistogramRow(NamedTuple):
    bucket: int
    group: str | None
    excluded: bool
    score: int | None  # a single score's count (n) ...
    counts: list[int] | None  # ... or a whole histogram from the rollup
    n: int


class SqlParams:
    """Bind parameters of a statement built in pieces: `p(value, "::text")` appends the
    value and answers its placeholder."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def _group_sql(group_by: str | None, alias: str, params: SqlParams) -> str:
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


def selection_filters(selection: Selection, alias: str, params: SqlParams) -> list[str]:
    """The WHERE conditions of a selection over `responses` (alias "x", with customers as
    "c" when it filters on attributes), the rollup ("r") or the deltas ("d"). Other reports
    over responses (insights) filter with it too, so the same filters mean the same."""
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
        if s.tag_any:
            named = [t for t in s.tag_any if t is not None]
            any_of = [f"x.tags && {params(named, '::text[]')}"] if named else []
            if None in s.tag_any:
                any_of.append("coalesce(cardinality(x.tags), 0) = 0")
            where.append(f"({' OR '.join(any_of)})")
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
    p = SqlParams()
    tenant = p(selection.tenant_id, "::uuid")
    parts: list[str] = []
    if coverage.rollup:
        width = selection.scale_max - selection.scale_min + 1
        sums = ", ".join(f"sum(r.counts[{i}])" for i in range(1, width + 1))
        where = " AND ".join(selection_filters(selection, "r", p))
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
                *selection_filters(selection, "d", p),
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
                *selection_filters(selection, "x", p),
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
# Deltas of a tenant being rebuilt are folded only once their range is recounted
# (occurred_at >= rebuilt_from), and then in the zone being rebuilt in; the others wait for
# the rebuild step that counts their range (and deletes them). The state is read in the
# same statement (one snapshot) as the deltas are taken.
FOLD = f"""
WITH batch AS (
    SELECT d.ctid FROM metric_deltas d
    WHERE NOT EXISTS (
        SELECT FROM metric_rollup_state s
        WHERE s.tenant_id = d.tenant_id AND s.rebuild_timezone IS NOT NULL
            AND (s.rebuilt_from IS NULL OR d.occurred_at < s.rebuilt_from)
    )
    LIMIT $1 FOR UPDATE OF d SKIP LOCKED
),
moved AS (
    DELETE FROM metric_deltas d USING batch WHERE d.ctid = batch.ctid
    RETURNING d.tenant_id, d.occurred_at, d.kind, d.scale_min, d.scale_max, d.channel,
        d.touchpoint, d.survey, d.verified, d.excluded, d.score, d.sign
)
SELECT {_SOURCE_COLUMNS} FROM (
    SELECT m.tenant_id,
        (m.occurred_at AT TIME ZONE coalesce(s.rebuild_timezone, s.timezone))::date AS day,
        m.kind, m.scale_min, m.scale_max, m.channel, m.touchpoint, m.survey, m.verified,
        m.excluded, m.score, sum(m.sign)::int8 AS n
    FROM moved m JOIN metric_rollup_state s ON s.tenant_id = m.tenant_id
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
) AS folded WHERE n <> 0
"""
# The state of the tenant's rollup, locked for the step: rebuild steps of one tenant (two
# jobs after two time-zone changes) take turns, and each sees the last one's progress.
REBUILD_STATE = """
SELECT t.timezone AS zone, s.timezone AS rollup_zone, s.rebuild_timezone,
    s.rebuilt_from IS NULL AS emptying,
    CASE WHEN isfinite(s.rebuilt_from) THEN s.rebuilt_from END AS hi
FROM metric_rollup_state s JOIN tenants t ON t.id = s.tenant_id
WHERE s.tenant_id = $1 FOR UPDATE OF s
"""
# The lower bound of the next range: the `$3`-th newest occurred_at below the upper bound
# (NULL: fewer are left, the range reaches '-infinity'). A walk down the partial index on
# (tenant_id, occurred_at, id) WHERE deleted_at IS NULL, like the count below.
REBUILD_BOUND = """
SELECT occurred_at FROM responses
WHERE tenant_id = $1 AND deleted_at IS NULL
    AND occurred_at < coalesce($2::timestamptz, 'infinity')
ORDER BY occurred_at DESC OFFSET $3 LIMIT 1
"""
# One statement, so one snapshot: the deltas it deletes are exactly those of the responses
# it counts in the range; later commits leave their deltas for the fold.
REBUILD_SOURCE = f"""
WITH gone AS (
    DELETE FROM metric_deltas WHERE tenant_id = $1
        AND occurred_at >= coalesce($3::timestamptz, '-infinity')
        AND occurred_at < coalesce($4::timestamptz, 'infinity')
)
SELECT {_SOURCE_COLUMNS} FROM (
    SELECT x.tenant_id, (x.occurred_at AT TIME ZONE $2::text)::date AS day, x.kind,
        x.scale_min, x.scale_max, x.channel, coalesce(x.touchpoint, '') AS touchpoint,
        coalesce(x.survey, '') AS survey, x.verified, x.excluded, x.score, count(*) AS n
    FROM responses x WHERE x.tenant_id = $1 AND x.deleted_at IS NULL
        AND x.occurred_at >= coalesce($3::timestamptz, '-infinity')
        AND x.occurred_at < coalesce($4::timestamptz, 'infinity')
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
            # No zone (raw reads) while a rebuild runs: the rollup is half recounted.
            "SELECT t.timezone, CASE WHEN s.rebuild_timezone IS NULL THEN s.timezone END "
            "AS rollup_timezone, t.metrics_low_sample_n, t.metrics_min_cell_n FROM tenants t "
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
        another worker is folding, or a rebuild is starting: milliseconds)."""
        if not await self._lock():
            return 0
        conn = await driver_connection(self.session)
        records = await conn.fetch(FOLD, limit)
        await self._upsert(_to_histograms(records))
        return len(records)

    async def rebuild_step(
        self, tenant_id: UUID, *, chunk: int | None = None, restart: bool = False
    ) -> bool:
        """One bounded step of re-bucketing the tenant's rollup in its current time zone,
        in the caller's transaction (commit it before the next step). True when the rollup
        is complete in that zone (nothing was left to do, or this step finished it).
        `restart` recounts from scratch even when the rollup is already in that zone."""
        conn = await driver_connection(self.session)
        state = await conn.fetchrow(REBUILD_STATE, tenant_id)
        if state is None:
            exists = await conn.fetchval("SELECT true FROM tenants WHERE id = $1", tenant_id)
            if not exists:
                return True
            await conn.execute(
                "INSERT INTO metric_rollup_state (tenant_id, timezone) "
                "SELECT id, timezone FROM tenants WHERE id = $1 ON CONFLICT DO NOTHING",
                tenant_id,
            )
            state = await conn.fetchrow(REBUILD_STATE, tenant_id)
            restart = True
        zone: str = state["zone"]
        if restart or state["rebuild_timezone"] != zone:
            if not restart and state["rebuild_timezone"] is None and state["rollup_zone"] == zone:
                return True
            await self._start(tenant_id, zone)
            return False
        if state["emptying"]:
            await self._empty(tenant_id)
            return False
        # The range's groups fit a hash table in this much memory (about 20 MB for 100,000
        # responses): sorting them on disk instead doubled the step's time.
        await conn.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        hi: datetime | None = state["hi"]
        lo: datetime | None = await conn.fetchval(
            REBUILD_BOUND, tenant_id, hi, (chunk or REBUILD_CHUNK) - 1
        )
        records = await conn.fetch(REBUILD_SOURCE, tenant_id, zone, lo, hi)
        await self._upsert(_to_histograms(records))
        if lo is not None:
            await conn.execute(
                "UPDATE metric_rollup_state SET rebuilt_from = $2 WHERE tenant_id = $1",
                tenant_id,
                lo,
            )
            return False
        await conn.execute(
            "UPDATE metric_rollup_state SET timezone = rebuild_timezone, "
            "rebuild_timezone = NULL, rebuilt_from = NULL, rebuilt_at = now() "
            "WHERE tenant_id = $1",
            tenant_id,
        )
        return True

    async def _start(self, tenant_id: UUID, zone: str) -> None:
        # Waits for a running fold (milliseconds): once this commits, no fold that read the
        # old state is left, and every later one sees the rebuild and leaves the tenant's
        # rollup to it.
        conn = await driver_connection(self.session)
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *ROLLUP_LOCK)
        await conn.execute(
            "UPDATE metric_rollup_state SET rebuild_timezone = $2, rebuilt_from = NULL "
            "WHERE tenant_id = $1",
            tenant_id,
            zone,
        )

    async def _empty(self, tenant_id: UUID) -> None:
        conn = await driver_connection(self.session)
        for table in ("metric_rollups", "metric_totals"):
            await conn.execute(
                f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {table} WHERE tenant_id = $1 LIMIT $2))",
                tenant_id,
                REBUILD_WIPE,
            )
        await conn.execute(
            "UPDATE metric_rollup_state SET rebuilt_from = 'infinity' WHERE tenant_id = $1 "
            "AND NOT EXISTS (SELECT FROM metric_rollups WHERE tenant_id = $1) "
            "AND NOT EXISTS (SELECT FROM metric_totals WHERE tenant_id = $1)",
            tenant_id,
        )

    async def rebuild(
        self,
        tenant_id: UUID,
        *,
        checkpoint: Callable[[], Awaitable[None]] | None = None,
        chunk: int | None = None,
    ) -> bool:
        """Recount the tenant's rollup from its responses in its current time zone, step
        by step, awaiting `checkpoint` (which should commit) between steps. Without one,
        everything runs in the caller's transaction (a bulk load, nothing else running)."""
        restart = True
        while not await self.rebuild_step(tenant_id, chunk=chunk, restart=restart):
            restart = False
            if checkpoint is not None:
                await checkpoint()
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
