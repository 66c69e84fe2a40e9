"""Insights at volume: re-classifying 1,000,000 comments after a dictionary change on one
worker, then the insight reports over the last 30 days (about 100,000 comments) through the
HTTP API.

Loads N comments (default 1,000,000) for one tenant over 300 days with COPY: texts drawn
from the labelled sets of tests/reference/insights, scores from the labels' polarity (a
negative label gives NPS 0–6, a positive one 9–10, none 7–10), 8 touchpoints, 10 % tagged,
and customers with `tier` and `region` attributes. Then, in one run:

(a) PUT the 14 themes of tests/reference/insights/dictionary.json, start one
    `feedback-api worker` process and time until `classification.up_to_date`;
(b) each report 10 times in a row after one warm-up call (one `serve` process): p50, p95.

    make bench-insights ARGS="--database-url postgresql://postgres@127.0.0.1:5432/postgres"
    make bench-insights ARGS="--rows 200000"   # a quicker run

Prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
from ingest import _free_port, bench_database, create_tenant, start, stop
from metrics import RESPONSE_COLUMNS, _chunks, _percentile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from feedback_api.migrate import upgrade  # noqa: E402

DATA = ROOT / "tests" / "reference" / "insights"
DAYS = 300
END = datetime.now(UTC).replace(microsecond=0)
START = END - timedelta(days=DAYS)
CUSTOMERS = 50_000
TOUCHPOINTS = ["delivery", "store", "app", "support", "returns", "billing", "repair", "web"]
REGIONS = ["east", "north", "south", "west", "central"]
TIERS = ["gold"] * 1 + ["silver"] * 3 + ["bronze"] * 6
RUNS = 10


def _texts() -> list[tuple[str, str | None]]:
    """(text, polarity): 'neg' when any label is negative, 'pos' when any is positive."""
    out = []
    for name in ("development.jsonl", "heldout.jsonl"):
        for line in (DATA / name).read_text().splitlines():
            row = json.loads(line)
            values = set(row["polarity"].values())
            out.append((row["text"], "neg" if "neg" in values else "pos" if values else None))
    return out


def _responses(
    tenant: uuid.UUID, customers: list[uuid.UUID], rows: int
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(18)
    texts = _texts()
    span = (END - START).total_seconds()
    for i in range(rows):
        at = START + timedelta(seconds=span * i / rows)
        text, polarity = rng.choice(texts)
        if polarity == "neg":
            score = rng.randint(0, 6)
        elif polarity == "pos":
            score = rng.randint(9, 10)
        else:
            score = rng.randint(7, 10)
        yield (
            tenant,
            uuid.UUID(bytes=uuid_utils.uuid7().bytes),
            "nps",
            score,
            0,
            10,
            ["late"] if rng.random() < 0.1 else [],
            rng.choice(["app", "web", "email"]),
            rng.choice(TOUCHPOINTS),
            None,
            rng.choice(customers),
            "bench",
            at,
            at,
            at,
            text,
            at,
        )


async def load(dsn: str, tenant: uuid.UUID, rows: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        customers = [uuid.UUID(bytes=uuid_utils.uuid7().bytes) for _ in range(CUSTOMERS)]
        await conn.copy_records_to_table(
            "customers",
            columns=["tenant_id", "id", "external_ref", "attributes", "created_at", "updated_at"],
            records=[
                (
                    tenant,
                    c,
                    f"c-{n}",
                    json.dumps({"tier": TIERS[n % 10], "region": REGIONS[n % 5]}),
                    END,
                    END,
                )
                for n, c in enumerate(customers)
            ],
        )
        await conn.execute("ALTER TABLE responses DISABLE TRIGGER responses_metric_insert")
        started = time.perf_counter()
        for chunk in _chunks(_responses(tenant, customers, rows), 100_000):
            await conn.copy_records_to_table(
                # screened_at: as if integrity had screened them at ingest, so that the
                # worker's screening of a bulk load does not compete with what is measured
                "responses",
                columns=[*RESPONSE_COLUMNS, "comment", "screened_at"],
                records=chunk,
            )
        took = time.perf_counter() - started
        await conn.execute("ALTER TABLE responses ENABLE TRIGGER responses_metric_insert")
        await conn.execute("VACUUM ANALYZE responses")
        await conn.execute("VACUUM ANALYZE customers")
    finally:
        await conn.close()
    return took


def reclassify(base: str, key: str, env: dict[str, str]) -> float:
    """(a): the dictionary's 14 themes, then one worker until every comment is classified."""
    dictionary = json.loads((DATA / "dictionary.json").read_text())
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
        for theme in dictionary:
            body = {k: theme[k] for k in ("names", "keywords", "aliases", "negative_keywords")}
            api.put(f"/v1/themes/{theme['key']}", json=body).raise_for_status()
        worker = subprocess.Popen(
            [sys.executable, "-m", "feedback_api", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.perf_counter()
        try:
            while not api.get("/v1/themes").json()["classification"]["up_to_date"]:
                if time.perf_counter() - started > 3600:
                    raise SystemExit("the re-classification did not finish in an hour")
                time.sleep(0.5)
            took = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    return took


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


REPORTS = [
    ("themes", "/v1/insights/themes", {}),
    ("drivers, by theme", "/v1/insights/drivers", {"by": "theme"}),
    ("drivers, by touchpoint", "/v1/insights/drivers", {"by": "touchpoint"}),
    ("priorities", "/v1/insights/priorities", {}),
    ("segments, tier × region", "/v1/insights/segments", {"attr": "tier,region"}),
    ("rising themes", "/v1/insights/themes/rising", {}),
    ("a theme's daily trend", "/v1/insights/themes/delivery_speed/trend", {"interval": "day"}),
    ("theme candidates (latest 20,000)", "/v1/insights/theme-candidates", {}),
]


def time_reports(base: str, key: str, runs: int) -> list[tuple[str, float, float]]:
    out = []
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as api:
        for label, path, params in REPORTS:
            api.get(path, params=params).raise_for_status()  # warm-up
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                api.get(path, params=params).raise_for_status()
                times.append(time.perf_counter() - started)
            out.append((label, _percentile(times, 0.5), _percentile(times, 0.95)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a maintenance database URL; default: embedded")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=RUNS)
    opts = parser.parse_args()

    db_url, dsn = bench_database(opts.database_url, "feedback_bench_insights")
    upgrade(db_url)
    env = {**os.environ, "FEEDBACK_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT / "src")}
    tenant = create_tenant(env)
    key = tenant["api_key"]["secret"]
    tenant_id = uuid.UUID(tenant["tenant"]["id"])
    copy_s = asyncio.run(load(dsn, tenant_id, opts.rows))
    window = asyncio.run(
        _count(
            dsn, "SELECT count(*) FROM responses WHERE occurred_at >= now() - interval '30 days'"
        )
    )
    port = _free_port()
    api = start([sys.executable, "-m", "feedback_api", "serve", "--port", str(port)], env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        took = reclassify(base, key, env)
        mentions = asyncio.run(_count(dsn, "SELECT count(*) FROM response_themes"))
        reports = time_reports(base, key, opts.runs)
    finally:
        stop(api)
    print(f"Loaded {opts.rows:,} comments with COPY in {copy_s:.0f} s.\n")
    print("| (a) re-classification, one worker | comments | mentions | seconds | comments/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| 14 themes | {opts.rows:,} | {mentions:,} | {took:.1f} | {opts.rows / took:,.0f} |")
    print()
    print(f"(b) reports over the last 30 days: {window:,} comments, {opts.runs} calls each.\n")
    print("| report | p50 | p95 |")
    print("|---|---:|---:|")
    for label, p50, p95 in reports:
        print(f"| {label} | {p50 * 1000:,.0f} ms | {p95 * 1000:,.0f} ms |")


if __name__ == "__main__":
    main()
