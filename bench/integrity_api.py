"""The integrity benchmark's pass through the API and the worker (issue 14): what a new
tenant sees when it imports a month of mixed feedback over `POST /v1/responses/batch` and an
app adds a bot's burst through a publishable key, with `feedback-api serve` and
`feedback-api worker` as real processes. The scenario is the end-to-end test's
(tests/fixtures/mixed_import.py), larger. Reports how long until every response is screened,
the flags raised by type, and the NPS the metrics count against the honest data's.

    .venv/bin/python bench/integrity_api.py [--database-url …] [--honest 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from ingest import _free_port, bench_database, start, stop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from feedback_api.migrate import upgrade  # noqa: E402
from tests.fixtures.mixed_import import MixedImport, generate  # noqa: E402


async def unscreened(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM responses WHERE screened_at IS NULL"))
    finally:
        await conn.close()


def run(database_url: str | None, honest: int) -> dict[str, Any]:
    db_url, dsn = bench_database(database_url, "feedback_bench_integrity_api")
    upgrade(db_url)
    # The rate limits would stop most of the bot's burst at the door (429); this measures
    # the detectors behind them, which must also catch a bot that stays under the limits.
    env = {
        **os.environ,
        "FEEDBACK_DATABASE_URL": db_url,
        "FEEDBACK_LOG_LEVEL": "WARNING",
        "FEEDBACK_RATE_LIMITS_ENABLED": "false",
    }
    created = subprocess.run(
        [sys.executable, "-m", "feedback_api", "tenant", "create", "--name", "Bench"],
        env=env,
        capture_output=True,
        check=True,
    )
    headers = {"Authorization": f"Bearer {json.loads(created.stdout)['api_key']['secret']}"}
    port = _free_port()
    api = start(
        [sys.executable, "-m", "feedback_api", "serve", "--port", str(port), "--no-worker"],
        env,
        port,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "feedback_api", "worker"], env=env, stderr=subprocess.PIPE
    )
    data = generate(datetime.now(UTC), honest=honest)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as c:
            began = time.perf_counter()
            for i in range(0, len(data.imported), 1000):
                answer = c.post("/v1/responses/batch", json={"items": data.imported[i : i + 1000]})
                assert answer.status_code == 200, answer.text
                assert answer.json()["failed"] == 0, answer.text
            app_key = c.post("/v1/api-keys", json={"name": "app", "publishable": True}).json()
            public = {"Authorization": f"Bearer {app_key['secret']}"}
            for item in data.public:
                assert c.post("/v1/responses", json=item, headers=public).status_code == 201
            posted = time.perf_counter() - began
            while asyncio.run(unscreened(dsn)):
                assert time.perf_counter() - began < 300, "not screened within 5 minutes"
                time.sleep(0.2)
            screened = time.perf_counter() - began
            flags: list[dict[str, Any]] = []
            cursor = None
            while True:
                query = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                page = c.get("/v1/integrity/flags", params=query)
                flags += page.json()["items"]
                cursor = page.json()["next_cursor"]
                if cursor is None:
                    break
            today = datetime.now(UTC).date()
            period = {"from": str(today - timedelta(days=40)), "to": str(today + timedelta(days=2))}
            counted = c.get("/v1/metrics/nps", params=period).json()
            everything = c.get("/v1/metrics/nps", params={**period, "integrity": "all"}).json()
            failures = c.get("/v1/integrity/screen-failures").json()["items"]
    finally:
        stop(api)
        worker.terminate()
        _, err = worker.communicate(timeout=30)
    return {
        "responses": len(data.imported) + len(data.public),
        "posted_s": posted,
        "screened_s": screened,
        "flags": dict(Counter(f["type"] for f in flags)),
        "excluded": counted["excluded"],
        "nps_counted": counted["value"],
        "nps_all": everything["value"],
        "nps_honest": MixedImport.nps(data.honest_scores),
        "set_aside": len(failures),
        "ticker_failures": err.decode().count("ticker_failed"),
    }


def report(r: dict[str, Any]) -> str:
    flags = ", ".join(f"{k} {v}" for k, v in sorted(r["flags"].items()))
    return "\n".join(
        [
            "| through the API and a worker process | value |",
            "|---|---|",
            f"| responses posted (batches of 1,000, then one by one) | {r['responses']:,} |",
            f"| all posted after | {r['posted_s']:.1f} s |",
            f"| all screened after | {r['screened_s']:.1f} s |",
            f"| flags by type | {flags} |",
            f"| responses excluded | {r['excluded']:,} |",
            f"| NPS honest data / counted / everything | {r['nps_honest']:.1f} / "
            f"{r['nps_counted']:.1f} / {r['nps_all']:.1f} |",
            f"| responses set aside, ticker failures | {r['set_aside']}, {r['ticker_failures']} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a server to use (default: embedded PostgreSQL)")
    parser.add_argument("--honest", type=int, default=3000, help="honest imported responses")
    args = parser.parse_args()
    print(report(run(args.database_url, args.honest)))


if __name__ == "__main__":
    main()
