"""What rate limiting costs single ingest: POST /v1/responses with one secret key under wrk,
with limits off, counted in memory, and counted in Redis, one API process each, in one run.

    .venv/bin/python bench/ratelimits.py \
        --database-url postgresql://postgres@127.0.0.1:5432/postgres \
        [--redis-url redis://127.0.0.1:6379/0] [--seconds 15]

Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import uuid

from ingest import ONE, ROOT, _free_port, bench_database, create_tenant, start, stop, wrk

from feedback_api.migrate import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a maintenance database URL; default: embedded")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    db_url, _ = bench_database(opts.database_url, "feedback_bench_limits")
    upgrade(db_url)
    env = {**os.environ, "FEEDBACK_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT / "src")}
    key = create_tenant(env)["api_key"]["secret"]
    one = json.dumps(ONE)
    runs = {
        "off": {"FEEDBACK_RATE_LIMITS_ENABLED": "false"},
        "memory": {},
        "redis": {
            "FEEDBACK_REDIS_URL": opts.redis_url,
            "FEEDBACK_REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex}",
        },
    }
    results = {}
    for name, extra in runs.items():
        port = _free_port()
        api = start(
            [sys.executable, "-m", "feedback_api", "serve", "--port", str(port)],
            {**env, **extra},
            port,
        )
        try:
            url = f"http://127.0.0.1:{port}/v1/responses"
            wrk(url, one, key, connections=opts.connections, seconds=3, pid=api.pid)  # warm-up
            results[name] = wrk(
                url, one, key, connections=opts.connections, seconds=opts.seconds, pid=api.pid
            )
        finally:
            stop(api)
    base = results["off"].requests_per_s
    print("| rate limits | req/s | vs off | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|---|")
    for name, load in results.items():
        print(
            f"| {name} | {load.requests_per_s:.0f} | {load.requests_per_s / base:.2f} | "
            f"{load.p50_ms:.1f} | {load.p99_ms:.1f} | {load.errors} |"
        )


if __name__ == "__main__":
    main()
