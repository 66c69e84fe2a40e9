"""Metrics benchmark: ten million responses, queried through the HTTP API and by raw SQL.

Loads N responses (default 10,000,000) for one tenant over 365 days with COPY, builds the
rollup, then in one run times through the API (p50/p95 of sequential calls):
NPS for 30 and 365 days, the weekly trend of a year, a breakdown by channel over 90 days and
a customer-attribute filter, each beside the plain SQL aggregate over the raw table. Then
ingest (POST /v1/responses, wrk) with the rollup maintained, without it, and with a naive
"counter row per day" trigger, to show why the rollup is fed by an append-only log.

    make bench-metrics                                   # embedded PostgreSQL
    make bench-metrics ARGS="--database-url postgresql://postgres@127.0.0.1:5432/postgres"
    make bench-metrics ARGS="--rows 1000000"             # a quicker run

Prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uuid_utils
from ingest import ONE, _free_port, bench_database, start, stop, wrk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from feedback_api.migrate import upgrade  # noqa: E402

TIMEZONE = "Asia/Shanghai"
END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(days=365)
CUSTOMERS = 200_000
CHANNELS = ["app", "web", "email", "sms", "in_person", "crm"]
TOUCHPOINTS = [
    "delivery",
    "installation",
    "support",
    "billing",
    "onboarding",
    "returns",
    "store_visit",
    "repair",
]
SURVEYS = {"nps": ["relationship", "post_purchase"], "csat": ["support_csat"], "ces": ["ces"]}
KINDS = [("nps", 0, 10, 0.6), ("csat", 1, 5, 0.25), ("ces", 1, 7, 0.15)]
RESPONSE_COLUMNS = [
    "tenant_id",
    "id",
    "kind",
    "score",
    "scale_min",
    "scale_max",
    "tags",
    "channel",
    "touchpoint",
    "survey",
    "customer_id",
    "request_hash",
    "occurred_at",
    "received_at",
    "updated_at",
]
RUNS = 40


def _responses(
    tenant: uuid.UUID, customers: list[uuid.UUID], rows: int
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(42)
    span = (END - START).total_seconds()
    weights = [w for *_, w in KINDS]
    nps_scores = list(range(11))
    nps_weights = [2, 1, 1, 2, 2, 3, 5, 10, 18, 26, 30]
    for i in range(rows):
        at = START + timedelta(seconds=span * i / rows)
        kind, low, high, _ = rng.choices(KINDS, weights)[0]
        if kind == "nps":
            score = rng.choices(nps_scores, nps_weights)[0]
        else:
            score = min(high, max(low, round(rng.triangular(low, high, high - 1))))
        yield (
            tenant,
            uuid.UUID(bytes=uuid_utils.uuid7().bytes),
            kind,
            score,
            low,
            high,
            ["late"] if rng.random() < 0.1 else [],
            rng.choice(CHANNELS),
            rng.choice(TOUCHPOINTS),
            rng.choice(SURVEYS[kind]),
            rng.choice(customers) if rng.random() < 0.7 else None,
            "bench",
            at,
            at,
            at,
        )


def _chunks(iterator: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in iterator:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def load(dsn: str, tenant: uuid.UUID, rows: int) -> dict[str, float]:
    """COPY customers and responses with the rollup trigger off and the secondary indexes
    dropped (the usual bulk load), then rebuild indexes and the rollup."""
    timings: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    try:
        customers = [uuid.UUID(bytes=uuid_utils.uuid7().bytes) for _ in range(CUSTOMERS)]
        tiers = ["gold"] * 1 + ["silver"] * 3 + ["bronze"] * 6
        await conn.copy_records_to_table(
            "customers",
            columns=["tenant_id", "id", "external_ref", "attributes", "created_at", "updated_at"],
            records=[
                (tenant, c, f"c-{n}", json.dumps({"tier": tiers[n % 10]}), END, END)
                for n, c in enumerate(customers)
            ],
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'responses' "
            "AND indexname <> 'pk_responses'"
        )
        for index in indexes:
            await conn.execute(f"DROP INDEX {index['indexname']}")
        await conn.execute("ALTER TABLE responses DISABLE TRIGGER responses_metric_insert")
        started = time.perf_counter()
        done = 0
        for chunk in _chunks(_responses(tenant, customers, rows), 250_000):
            await conn.copy_records_to_table("responses", columns=RESPONSE_COLUMNS, records=chunk)
            done += len(chunk)
            print(f"  loaded {done:,}", file=sys.stderr)
        timings["copy_s"] = time.perf_counter() - started
        await conn.execute("ALTER TABLE responses ENABLE TRIGGER responses_metric_insert")
        started = time.perf_counter()
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute("VACUUM ANALYZE responses")
        await conn.execute("VACUUM ANALYZE customers")
        timings["index_s"] = time.perf_counter() - started
    finally:
        await conn.close()
    return timings


async def rebuild(db_url: str, tenant: uuid.UUID) -> float:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from feedback_api.metrics.repository import MetricRepository

    engine = create_async_engine(db_url)
    started = time.perf_counter()
    async with AsyncSession(engine) as session:
        assert await MetricRepository(session).rebuild(tenant)
        await session.commit()
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed


async def _existing_tenant(dsn: str) -> uuid.UUID:
    conn = await asyncpg.connect(dsn)
    try:
        tenant: uuid.UUID = await conn.fetchval("SELECT id FROM tenants WHERE name = 'Bench'")
    finally:
        await conn.close()
    return tenant


async def _fold(db_url: str) -> float:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from feedback_api.metrics.repository import MetricRepository

    engine = create_async_engine(db_url)
    started = time.perf_counter()
    async with AsyncSession(engine) as session:
        while await MetricRepository(session).fold():
            await session.commit()
        await session.commit()
    await engine.dispose()
    return time.perf_counter() - started


def _local(days_before_end: int) -> str:
    return (END - timedelta(days=days_before_end)).date().isoformat()


QUERIES: list[tuple[str, str, dict[str, str], str]] = [
    # name, API path, params, raw SQL over the same rows ($1 tenant, $2 from, $3 to)
    (
        "NPS, 30 days",
        "/v1/metrics/nps",
        {"from": _local(30), "to": END.date().isoformat()},
        "SELECT score, count(*) FROM responses WHERE tenant_id = $1 AND kind = 'nps' "
        "AND deleted_at IS NULL AND occurred_at >= $2 AND occurred_at < $3 GROUP BY score",
    ),
    (
        "NPS, 365 days",
        "/v1/metrics/nps",
        {"from": _local(365), "to": END.date().isoformat()},
        "SELECT score, count(*) FROM responses WHERE tenant_id = $1 AND kind = 'nps' "
        "AND deleted_at IS NULL AND occurred_at >= $2 AND occurred_at < $3 GROUP BY score",
    ),
    (
        "NPS weekly trend, 1 year",
        "/v1/metrics/nps/trend",
        {"from": _local(364), "to": END.date().isoformat(), "interval": "week"},
        f"SELECT date_trunc('week', occurred_at AT TIME ZONE '{TIMEZONE}'), score, count(*) "
        "FROM responses WHERE tenant_id = $1 AND kind = 'nps' AND deleted_at IS NULL "
        "AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1, 2",
    ),
    (
        "NPS by channel, 90 days",
        "/v1/metrics/nps/breakdown",
        {"from": _local(90), "to": END.date().isoformat(), "by": "channel"},
        "SELECT channel, score, count(*) FROM responses WHERE tenant_id = $1 AND kind = 'nps' "
        "AND deleted_at IS NULL AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1, 2",
    ),
    (
        "NPS, 30 days, attr.tier=gold",
        "/v1/metrics/nps",
        {"from": _local(30), "to": END.date().isoformat(), "attr.tier": "gold"},
        "SELECT x.score, count(*) FROM responses x JOIN customers c ON c.tenant_id = "
        "x.tenant_id AND c.id = x.customer_id WHERE x.tenant_id = $1 AND x.kind = 'nps' "
        "AND x.deleted_at IS NULL AND x.occurred_at >= $2 AND x.occurred_at < $3 "
        "AND c.attributes ->> 'tier' = 'gold' GROUP BY 1",
    ),
    (
        "NPS, 365 days, attr.tier=gold",
        "/v1/metrics/nps",
        {"from": _local(365), "to": END.date().isoformat(), "attr.tier": "gold"},
        "SELECT x.score, count(*) FROM responses x JOIN customers c ON c.tenant_id = "
        "x.tenant_id AND c.id = x.customer_id WHERE x.tenant_id = $1 AND x.kind = 'nps' "
        "AND x.deleted_at IS NULL AND x.occurred_at >= $2 AND x.occurred_at < $3 "
        "AND c.attributes ->> 'tier' = 'gold' GROUP BY 1",
    ),
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_api(base: str, key: str, path: str, params: dict[str, str], runs: int) -> list[float]:
    times: list[float] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        for n in range(runs + 3):
            started = time.perf_counter()
            response = client.get(path, params=params, timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if n >= 3:  # warm-up
                times.append(elapsed)
    return times


async def time_sql(
    dsn: str, sql: str, tenant: uuid.UUID, lo: datetime, hi: datetime, runs: int
) -> list[float]:
    conn = await asyncpg.connect(dsn)
    times: list[float] = []
    try:
        for n in range(runs + 1):
            started = time.perf_counter()
            await conn.fetch(sql, tenant, lo, hi)
            if n >= 1:
                times.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    return times


def _bounds(params: dict[str, str]) -> tuple[datetime, datetime]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(TIMEZONE)
    lo = datetime.fromisoformat(params["from"]).replace(tzinfo=zone)
    hi = datetime.fromisoformat(params["to"]).replace(tzinfo=zone)
    return lo, hi


HOT_ROW_TRIGGER = """
CREATE TABLE bench_counters (tenant_id uuid, day date, kind text, channel text, n bigint,
    PRIMARY KEY (tenant_id, day, kind, channel));
CREATE FUNCTION bench_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_counters VALUES (NEW.tenant_id, NEW.occurred_at::date, NEW.kind,
        NEW.channel, 1)
    ON CONFLICT (tenant_id, day, kind, channel) DO UPDATE SET n = bench_counters.n + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_count AFTER INSERT ON responses FOR EACH ROW EXECUTE FUNCTION bench_count();
"""


NO_HOT_ROW = """
DROP TRIGGER IF EXISTS bench_count ON responses;
DROP FUNCTION IF EXISTS bench_count();
DROP TABLE IF EXISTS bench_counters;
"""


async def _sql(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a maintenance database URL; default: embedded")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--seconds", type=int, default=15, help="per ingest run")
    parser.add_argument(
        "--reuse", action="store_true", help="query the data an earlier run loaded (no load)"
    )
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    db_url, dsn = bench_database(opts.database_url, "feedback_bench_metrics", keep=opts.reuse)
    env = {**os.environ, "FEEDBACK_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT / "src")}
    timings: dict[str, float] = {}
    if opts.reuse:  # the data of an earlier run: migrate, fold what ingest left, new key
        upgrade(db_url)
        tenant = asyncio.run(_existing_tenant(dsn))
        timings["fold_s"] = asyncio.run(_fold(db_url))
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "feedback_api",
                "key",
                "create",
                "--tenant",
                str(tenant),
                "--name",
                "bench",
                "--scope",
                "metrics:read",
                "--scope",
                "responses:write",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = json.loads(created.stdout)["secret"]
    else:
        upgrade(db_url)
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "feedback_api",
                "tenant",
                "create",
                "--name",
                "Bench",
                "--timezone",
                TIMEZONE,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        tenant_info: dict[str, Any] = json.loads(created.stdout)
        key = tenant_info["api_key"]["secret"]
        tenant = uuid.UUID(tenant_info["tenant"]["id"])
        print(f"loading {opts.rows:,} responses …", file=sys.stderr)
        timings = asyncio.run(load(dsn, tenant, opts.rows))
        timings["rollup_rebuild_s"] = asyncio.run(rebuild(db_url, tenant))

    async def sizes() -> dict[str, Any]:
        conn = await asyncpg.connect(dsn)
        try:
            return dict(
                await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM responses) AS responses, "
                    "(SELECT count(*) FROM metric_rollups) AS rollup_rows, "
                    "pg_size_pretty(pg_total_relation_size('metric_rollups')) AS rollup_size, "
                    "pg_size_pretty(pg_total_relation_size('responses')) AS responses_size"
                )
            )
        finally:
            await conn.close()

    storage = asyncio.run(sizes())
    print(f"load: {timings}  storage: {storage}", file=sys.stderr)

    port = _free_port()
    api = start(
        [sys.executable, "-m", "feedback_api", "serve", "--port", str(port), "--no-worker"],
        env,
        port,
    )
    results = []
    try:
        base = f"http://127.0.0.1:{port}"
        for title, path, params, sql in QUERIES:
            # attribute filters read raw rows: fewer runs, they take seconds each
            runs = opts.runs if "attr.tier" not in params else max(3, opts.runs // 8)
            api_ms = time_api(base, key, path, params, runs)
            lo, hi = _bounds(params)
            sql_ms = asyncio.run(time_sql(dsn, sql, tenant, lo, hi, 3))
            results.append((title, api_ms, sql_ms))
            print(f"  {title}: {statistics.median(api_ms):.1f} ms", file=sys.stderr)
    finally:
        stop(api)

    # Ingest: the same single-response POST, rollup maintained (as shipped), rollup trigger
    # off, and a naive counter-row trigger instead.
    one = json.dumps(ONE)
    ingest: dict[str, Any] = {}
    disable = "ALTER TABLE responses DISABLE TRIGGER responses_metric_insert;"
    enable = "ALTER TABLE responses ENABLE TRIGGER responses_metric_insert;"
    variants = [
        ("rollup maintained (delta log), as shipped", "", ""),
        ("no rollup (trigger disabled)", disable, enable),
        ("naive: a counter row per day instead", disable + HOT_ROW_TRIGGER, enable + NO_HOT_ROW),
    ]
    asyncio.run(_sql(dsn, NO_HOT_ROW))  # left over from an interrupted run
    for title, setup, teardown in variants:
        if setup:
            asyncio.run(_sql(dsn, setup))
        port = _free_port()
        # --worker: the rollup is folded while ingest runs, as in production
        command = ["serve", "--port", str(port), "--worker"]
        api = start([sys.executable, "-m", "feedback_api", *command], env, port)
        try:
            target = f"http://127.0.0.1:{port}/v1/responses"
            wrk(target, one, key, connections=16, seconds=3, pid=api.pid)
            ingest[title] = wrk(target, one, key, connections=16, seconds=opts.seconds, pid=api.pid)
        finally:
            stop(api)
        if teardown:
            asyncio.run(_sql(dsn, teardown))

    print(f"\n### Metrics at {storage['responses']:,} responses ({datetime.now(UTC):%Y-%m-%d})\n")
    if "copy_s" in timings:
        print(
            f"Load: COPY {timings['copy_s']:.0f} s, indexes {timings['index_s']:.0f} s, "
            f"rollup rebuild {timings['rollup_rebuild_s']:.1f} s."
        )
    print(
        f"Rollup {storage['rollup_rows']:,} rows / {storage['rollup_size']}; responses "
        f"{storage['responses_size']} with indexes.\n"
    )
    print("| Query | API p50 | API p95 | raw SQL (median) | raw ÷ API p95 |")
    print("|---|---:|---:|---:|---:|")
    for title, api_ms, sql_ms in results:
        p95 = _percentile(api_ms, 0.95)
        raw = statistics.median(sql_ms)
        print(
            f"| {title} | {statistics.median(api_ms):.1f} ms | {p95:.1f} ms | "
            f"{raw:.0f} ms | {raw / p95:.0f}× |"
        )
    print("\n| Ingest, POST /v1/responses, 16 connections | req/s | p50 | p99 |")
    print("|---|---:|---:|---:|")
    for title, load_result in ingest.items():
        print(
            f"| {title} | {load_result.requests_per_s:.0f} | {load_result.p50_ms:.1f} ms | "
            f"{load_result.p99_ms:.1f} ms |"
        )


if __name__ == "__main__":
    main()
