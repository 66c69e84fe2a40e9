"""Webhook benchmark: delivery throughput with 1 and 2 workers, end-to-end lag at a steady
200 responses/s, and what webhooks cost ingest. Usage:

    make bench-webhooks                                   # embedded PostgreSQL
    .venv/bin/python bench/webhooks.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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

ITEM = {"kind": "nps", "score": 9, "channel": "crm", "comment": "fine", "tags": ["a"]}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """Answers 204 and notes when each delivery arrived and when its event happened."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, float]] = []  # (arrived, occurred) epoch seconds
        self.port = _port()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = json.loads(await reader.readexactly(length))
                occurred = datetime.fromisoformat(body["timestamp"]).timestamp()
                self.arrivals.append((time.time(), occurred))
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "feedback_api", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("API did not start")


async def wait_for(receiver: Receiver, count: int) -> float:
    started = time.perf_counter()
    while len(receiver.arrivals) < count:
        if time.perf_counter() - started > 600:
            raise SystemExit(f"only {len(receiver.arrivals)} of {count} deliveries arrived")
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


def wrk_rps(url: str, key: str, seconds: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {key}"\n'
            f"wrk.body = [==[{json.dumps(ITEM)}]==]\n"
        )
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--lag-workers", type=int, default=1)
    opts = parser.parse_args()

    server = normalize_url(
        opts.database_url or start_embedded_server(ROOT / ".feedback-data" / "bench")
    )
    admin = await asyncpg.connect(
        make_url(server).set(drivername="postgresql").render_as_string(False)
    )
    await admin.execute("DROP DATABASE IF EXISTS feedback_bench_wh WITH (FORCE)")
    await admin.execute("CREATE DATABASE feedback_bench_wh")
    await admin.close()
    db_url = make_url(server).set(database="feedback_bench_wh").render_as_string(False)
    await asyncio.to_thread(upgrade, db_url)
    env = {
        **os.environ,
        "FEEDBACK_DATABASE_URL": db_url,
        "FEEDBACK_WEBHOOKS_ALLOW_HTTP": "true",
        "FEEDBACK_WEBHOOKS_ALLOW_PRIVATE": "true",
        "FEEDBACK_LOG_LEVEL": "WARNING",
    }
    created = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "feedback_api", "tenant", "create", "--name", "Bench"],
        env=env,
        capture_output=True,
        check=True,
    )
    key = json.loads(created.stdout)["api_key"]["secret"]
    headers = {"Authorization": f"Bearer {key}"}

    receiver = Receiver()
    server_task = await asyncio.start_server(receiver.handle, "127.0.0.1", receiver.port)
    port = _port()
    base = f"http://127.0.0.1:{port}"
    api = start(["serve", "--port", str(port), "--no-worker"], env)
    results: dict[str, Any] = {}
    try:
        await wait_ready(base)
        results["ingest_without"] = (
            await asyncio.to_thread(wrk_rps, f"{base}/v1/responses", key, 10)
            if shutil.which("wrk")
            else None
        )
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
        async with httpx.AsyncClient(
            base_url=base, headers=headers, timeout=120, limits=limits
        ) as client:
            await client.post(
                "/v1/webhook-endpoints", json={"url": f"http://127.0.0.1:{receiver.port}/"}
            )
            for workers in (1, 2):
                receiver.arrivals.clear()
                for _ in range(opts.events // 1000):
                    await client.post("/v1/responses/batch", json={"items": [ITEM] * 1000})
                procs = [start(["worker"], env) for _ in range(workers)]
                elapsed = await wait_for(receiver, opts.events)
                stop(*procs)
                results[f"throughput_{workers}"] = opts.events / elapsed

            # Steady load: lag from the response's time to the delivery's arrival.
            lag_workers = [start(["worker"], env) for _ in range(opts.lag_workers)]
            await asyncio.sleep(2)
            receiver.arrivals.clear()
            total = opts.rate * opts.seconds
            begin = time.perf_counter()
            sends = []
            for i in range(total):
                delay = begin + i / opts.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sends.append(asyncio.create_task(client.post("/v1/responses", json=ITEM)))
            await asyncio.gather(*sends)
            await wait_for(receiver, total)
            lags = sorted(arrived - occurred for arrived, occurred in receiver.arrivals)
            results["lag_p50"] = statistics.median(lags)
            results["lag_p99"] = lags[int(len(lags) * 0.99) - 1]
            results["ingest_with"] = (
                await asyncio.to_thread(wrk_rps, f"{base}/v1/responses", key, 10)
                if shutil.which("wrk")
                else None
            )
            stop(*lag_workers)
            # The same, with the endpoint registered but no worker running: what webhooks
            # cost the ingest path itself (deliveries queue up, durably, for later).
            results["ingest_queued"] = (
                await asyncio.to_thread(wrk_rps, f"{base}/v1/responses", key, 10)
                if shutil.which("wrk")
                else None
            )
    finally:
        stop(api)
        server_task.close()

    print(f"\nMeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores.\n")
    print("| measurement | result |\n|---|---|")
    print(
        f"| deliveries/s, 1 worker ({opts.events} queued events) | {results['throughput_1']:,.0f} |"
    )
    print(f"| deliveries/s, 2 workers | {results['throughput_2']:,.0f} |")
    w = f"{opts.lag_workers} worker" + ("s" if opts.lag_workers > 1 else "")
    print(f"| lag p50 at {opts.rate} responses/s, {w} | {results['lag_p50'] * 1000:,.0f} ms |")
    print(f"| lag p99 at {opts.rate} responses/s, {w} | {results['lag_p99'] * 1000:,.0f} ms |")
    if results["ingest_without"]:
        drop = 1 - results["ingest_with"] / results["ingest_without"]
        print(
            f"| ingest req/s without / with a webhook endpoint and a busy worker | "
            f"{results['ingest_without']:,.0f} / {results['ingest_with']:,.0f} ({drop:.0%} drop) |"
        )
        queued = 1 - results["ingest_queued"] / results["ingest_without"]
        print(
            "| ingest req/s with a webhook endpoint, workers elsewhere (none running here) | "
            f"{results['ingest_queued']:,.0f} ({queued:.0%} drop) |"
        )


if __name__ == "__main__":
    asyncio.run(main())
