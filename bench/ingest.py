"""Ingest benchmark: feedback-api against its ceilings, in one run on one database.

  (a) POST /v1/responses, 16 connections (wrk)        vs (c) minimal FastAPI + asyncpg INSERT
  (b) POST /v1/responses/batch, 1,000-item batches    vs (d) asyncpg executemany, 1,000 rows

Load comes from wrk (Debian package `wrk`), a compiled generator, so the client does not
measure itself. Usage:

    make bench                       # embedded PostgreSQL in .feedback-data/bench
    make bench ARGS="--database-url postgresql://postgres@127.0.0.1:5432/postgres"

Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from feedback_api.db import normalize_url, start_embedded_server  # noqa: E402
from feedback_api.migrate import upgrade  # noqa: E402

ONE = {
    "kind": "nps",
    "score": 9,
    "channel": "app",
    "touchpoint": "delivery",
    "comment": "Fast delivery, friendly driver",
    "tags": ["delivery", "speed"],
    "language": "en",
    "attributes": {"app_version": "5.2.0"},
}
COLUMNS = (
    "tenant_id, id, kind, score, scale_min, scale_max, comment, tags, channel, touchpoint, "
    "survey, language, attributes, request_hash, occurred_at, received_at, updated_at"
)


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mb: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never became ready")


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# With a body holding __N__, each request replaces it with a value unique across wrk's
# threads (a new customer per request).
VARY = (
    "local threads = 0\n"
    "function setup(thread) threads = threads + 1; thread:set('tid', threads) end\n"
    "local n = 0\n"
    "function request()\n"
    "  n = n + 1\n"
    "  local body = string.gsub(wrk.body, '__N__', tid .. '-' .. n)\n"
    "  return wrk.format(nil, nil, nil, body)\n"
    "end\n"
)


def wrk(url: str, body: str, key: str, *, connections: int, seconds: int, pid: int) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {key}"\n'
            f"wrk.body = [==[{body}]==]\n"
            "function response(status, headers, body)\n"
            "  if status >= 300 then io.stderr:write(status .. ' ' .. body .. '\\n') end\n"
            "end\n" + (VARY if "__N__" in body else "")
        )
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb(pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    args = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        script.name,
        url,
    ]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    done.set()
    sampler.join()
    os.unlink(script.name)
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if errors:
        print(result.stderr[:2000], file=sys.stderr)
    return Load(rps, p50, p99, errors, peak[0])


def bench_database(
    maintenance_url: str | None, name: str, *, keep: bool = False
) -> tuple[str, str]:
    """A database `name` on the given server (default: the embedded one), created afresh
    unless `keep`. Returns its SQLAlchemy URL and its plain asyncpg DSN."""
    server = normalize_url(
        maintenance_url or start_embedded_server(ROOT / ".feedback-data" / "bench")
    )

    async def recreate() -> None:
        admin_dsn = make_url(server).set(drivername="postgresql").render_as_string(False)
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    if not keep:
        asyncio.run(recreate())
    url = make_url(server).set(database=name)
    return url.render_as_string(False), url.set(drivername="postgresql").render_as_string(False)


def start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_ready(f"http://127.0.0.1:{port}/docs", proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


async def prepare(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_baseline")
        # The same columns, constraints and indexes as the real table.
        await conn.execute("CREATE TABLE bench_baseline (LIKE responses INCLUDING ALL)")
    finally:
        await conn.close()


async def executemany(dsn: str, tenant: uuid.UUID, rows: int, batch: int = 1000) -> float:
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    sql = (
        f"INSERT INTO bench_baseline ({COLUMNS}) VALUES "
        "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', $14, $14, $14)"
    )
    records = [
        (
            tenant,
            uuid.uuid4(),
            "nps",
            9,
            0,
            10,
            ONE["comment"],
            ONE["tags"],
            "app",
            "delivery",
            None,
            "en",
            json.dumps(ONE["attributes"]),
            now,
        )
        for _ in range(batch)
    ]
    try:
        await conn.executemany(sql, records)  # warm-up
        started = time.perf_counter()
        for _ in range(rows // batch):
            fresh = [(r[0], uuid.uuid4(), *r[2:]) for r in records]
            async with conn.transaction():
                await conn.executemany(sql, fresh)
        return (rows // batch) * batch / (time.perf_counter() - started)
    finally:
        await conn.close()


async def _count(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


def create_tenant(env: dict[str, str]) -> dict[str, Any]:
    """A tenant made with `feedback-api tenant create`: the tenant and its admin key."""
    created = subprocess.run(
        [sys.executable, "-m", "feedback_api", "tenant", "create", "--name", "Bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    tenant: dict[str, Any] = json.loads(created.stdout)
    return tenant


def install_dictionary(base: str, key: str) -> None:
    """The 14 themes of the benchmark dictionary, and their re-classification of what (a)
    and (b) stored, finished (so that (g) measures ingest alone)."""
    dictionary = json.loads((ROOT / "tests/reference/insights/dictionary.json").read_text())
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
        for theme in dictionary:
            body = {k: theme[k] for k in ("names", "keywords", "aliases", "negative_keywords")}
            api.put(f"/v1/themes/{theme['key']}", json=body).raise_for_status()
        deadline = time.monotonic() + 600
        while not api.get("/v1/themes").json()["classification"]["up_to_date"]:
            if time.monotonic() > deadline:
                raise SystemExit("the re-classification did not finish in 10 minutes")
            time.sleep(0.5)


def themes(base: str, key: str, pid: int, opts: argparse.Namespace, plain: float) -> None:
    """(g): the same single ingest with a 14-theme dictionary, against (a) of this run."""
    load = wrk(
        f"{base}/v1/responses",
        json.dumps(ONE),
        key,
        connections=opts.connections,
        seconds=opts.seconds,
        pid=pid,
    )
    print(
        f"(g) single ingest, 14-theme dictionary: {load.requests_per_s:.0f} req/s "
        f"(g/a = {load.requests_per_s / plain:.2f}), p99 {load.p99_ms:.1f} ms, "
        f"non-2xx {load.errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a maintenance database URL; default: embedded")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--tickets",
        action="store_true",
        help="also (e) detractors from new customers, each opening a ticket, against (f) "
        "promoters from new customers (same work minus the ticket)",
    )
    parser.add_argument(
        "--themes",
        action="store_true",
        help="also (g) single ingest after the tenant's theme dictionary holds the 14 themes "
        "of tests/reference/insights/dictionary.json (every comment classified at ingest)",
    )
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    db_url, dsn = bench_database(opts.database_url, "feedback_bench")
    upgrade(db_url)
    asyncio.run(prepare(dsn))

    env = {**os.environ, "FEEDBACK_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT / "src")}
    tenant = create_tenant(env)
    key = tenant["api_key"]["secret"]
    tenant_id = tenant["tenant"]["id"]
    one = json.dumps(ONE)
    batch = json.dumps({"items": [{**ONE, "channel": "import"} for _ in range(1000)]})

    port = _free_port()
    api = start([sys.executable, "-m", "feedback_api", "serve", "--port", str(port)], env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wrk(
            f"{base}/v1/responses", one, key, connections=opts.connections, seconds=3, pid=api.pid
        )  # warm-up
        a = wrk(
            f"{base}/v1/responses",
            one,
            key,
            connections=opts.connections,
            seconds=opts.seconds,
            pid=api.pid,
        )
        b = wrk(
            f"{base}/v1/responses/batch",
            batch,
            key,
            connections=4,
            seconds=opts.seconds,
            pid=api.pid,
        )
        if opts.tickets:
            for label, score in (
                ("(e) detractor, new customer", 2),
                ("(f) promoter, new customer", 9),
            ):
                body = json.dumps({**ONE, "score": score, "customer": f"c{score}-__N__"})
                load = wrk(
                    f"{base}/v1/responses",
                    body,
                    key,
                    connections=opts.connections,
                    seconds=opts.seconds,
                    pid=api.pid,
                )
                print(
                    f"{label}: {load.requests_per_s:.0f} req/s, p50 {load.p50_ms:.1f} ms, "
                    f"p99 {load.p99_ms:.1f} ms, non-2xx {load.errors}"
                )
            print(f"tickets opened: {asyncio.run(_count(dsn, 'tickets'))}")
        if opts.themes:
            # The re-classification is the worker's (the API runs none with a configured
            # database); it stops before (g) is measured.
            worker = subprocess.Popen(
                [sys.executable, "-m", "feedback_api", "worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                install_dictionary(base, key)
            finally:
                stop(worker)
            themes(base, key, api.pid, opts, a.requests_per_s)
    finally:
        stop(api)

    port = _free_port()
    baseline_env = {
        **env,
        "BENCH_ASYNCPG_DSN": dsn,
        "BENCH_TENANT_ID": tenant_id,
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'bench'}",
    }
    baseline = start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "baseline_app:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        baseline_env,
        port,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wrk(
            f"{base}/v1/responses",
            one,
            key,
            connections=opts.connections,
            seconds=3,
            pid=baseline.pid,
        )
        c = wrk(
            f"{base}/v1/responses",
            one,
            key,
            connections=opts.connections,
            seconds=opts.seconds,
            pid=baseline.pid,
        )
    finally:
        stop(baseline)
    d = asyncio.run(executemany(dsn, uuid.UUID(tenant_id), rows=100_000))

    batch_rows = b.requests_per_s * 1000
    print(
        f"\nMeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{opts.connections} connections, {opts.seconds} s per run.\n"
    )
    print("| run | throughput | p50 | p99 | non-2xx | peak RSS |")
    print("|---|---|---|---|---|---|")
    print(
        f"| (a) POST /v1/responses | {a.requests_per_s:,.0f} req/s | {a.p50_ms:.1f} ms | "
        f"{a.p99_ms:.1f} ms | {a.errors} | {a.peak_rss_mb:.0f} MB |"
    )
    print(
        f"| (b) POST /v1/responses/batch ×1000 | {batch_rows:,.0f} rows/s | {b.p50_ms:.0f} ms"
        f" | {b.p99_ms:.0f} ms | {b.errors} | {b.peak_rss_mb:.0f} MB |"
    )
    print(
        f"| (c) minimal FastAPI + asyncpg INSERT | {c.requests_per_s:,.0f} req/s | "
        f"{c.p50_ms:.1f} ms | {c.p99_ms:.1f} ms | {c.errors} | {c.peak_rss_mb:.0f} MB |"
    )
    print(f"| (d) asyncpg executemany ×1000 | {d:,.0f} rows/s | | | | |")
    print(
        f"\n**a/c = {a.requests_per_s / c.requests_per_s:.2f}** (target ≥ 0.5), "
        f"**b/d = {batch_rows / d:.2f}** (target ≥ 0.7), p99 (a) = {a.p99_ms:.1f} ms "
        f"(target ≤ 15 ms), peak RSS = {max(a.peak_rss_mb, b.peak_rss_mb):.0f} MB "
        "(target < 200 MB)."
    )


if __name__ == "__main__":
    main()
