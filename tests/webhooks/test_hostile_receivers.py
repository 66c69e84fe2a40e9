"""One tenant's hostile receivers against another tenant's healthy one, with a real worker
process: a receiver that answers its headers and then trickles its body, and one that
streams an endless body, must hold up nobody else and cost the worker no memory."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from sqlalchemy import func, select

from feedback_api.models import Event
from tests.fixtures.live import Live
from tests.fixtures.processes import Processes, rss_bytes
from tests.fixtures.processes import processes as processes  # the fixture
from tests.fixtures.receiver import Answer, Receiver
from tests.fixtures.waiting import until
from tests.fixtures.webhooks import UNSETTLED, register

NPS: dict[str, Any] = {"kind": "nps", "score": 9, "channel": "crm"}
DEADLINE = 3  # FEEDBACK_WEBHOOKS_TIMEOUT_SECONDS for the worker (15 by default)
HUGE = 200 * 2**20
MB = 2**20


async def settled(live: Live) -> bool:
    """Whether every event is readable (dispatch waits for that). Any transaction open on
    the server, in any database, holds events back a moment: not what this test measures."""
    async with live.sessionmaker() as session:
        unsettled = await session.scalar(select(func.count()).select_from(Event).where(UNSETTLED))
    return not unsettled


async def attempts(live: Live, endpoint_id: str) -> list[dict[str, Any]]:
    response = await live.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=live.headers
    )
    return [a for d in response.json()["items"] for a in d["recent_attempts"]]


async def test_trickling_and_endless_answers_hold_up_no_other_tenant(
    live: Live, other_live: Live, processes: Processes
) -> None:
    trickle = Receiver(Answer(trickle=2, body=b"." * 100))  # headers, then a byte per 2 s
    endless = Receiver(Answer(stream_bytes=HUGE))
    healthy = Receiver()
    for receiver in (trickle, endless, healthy):
        await receiver.start()
    sampler: asyncio.Task[None] | None = None
    try:
        slow = [await register(live, f"{trickle.url}/{i}") for i in range(3)]
        huge = await register(live, endless.url)
        await register(other_live, healthy.url, event_types=["response.*"])
        for _ in range(6):  # tenant A: 24 test deliveries, more than the worker runs at once
            for endpoint in (*slow, huge):
                sent = await live.client.post(
                    f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=live.headers
                )
                assert sent.status_code == 202

        processes.env["FEEDBACK_WEBHOOKS_TIMEOUT_SECONDS"] = str(DEADLINE)
        worker = processes.start("worker", "worker")
        await until(lambda: "worker_started" in processes.log("worker"), within=30)
        baseline = peak = rss_bytes(worker.pid)

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, rss_bytes(worker.pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        # tenant A's deliveries are going out
        await until(lambda: len(trickle.received) >= 8 and bool(endless.received), within=15)

        for _ in range(10):  # tenant B
            created = await other_live.client.post(
                "/v1/responses", json=NPS, headers=other_live.headers
            )
            assert created.status_code == 201
        await until(lambda: settled(other_live), within=60, every=0.05)
        started = time.time()
        with contextlib.suppress(TimeoutError):
            await until(lambda: len(healthy.received) == 10, within=15)
        lags = sorted(round(r.at - started, 1) for r in healthy.received)
        assert len(lags) == 10, f"{len(lags)} of tenant B's 10 arrived within 15 s: {lags}"
        assert lags[-1] < 5, lags  # from the moment they could be dispatched

        # The trickling receiver's attempts end at the deadline and say so.
        async def timed_out() -> bool:
            errors = [a["error"] for a in await attempts(live, slow[0]["id"])]
            return f"no complete answer within {DEADLINE} s" in errors

        await until(timed_out, within=DEADLINE + 10, every=0.2)

        # The endless body: answered 200, its first KiB kept, the rest never read.
        async def answered() -> bool:
            return bool(await attempts(live, huge["id"]))

        await until(answered, within=10, every=0.2)
        (first, *_) = await attempts(live, huge["id"])
        assert first["status_code"] == 200
        assert first["response_body"] == "x" * 1024
        assert peak - baseline < 100 * MB, f"worker RSS grew by {(peak - baseline) / MB:.0f} MB"
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        for receiver in (trickle, endless, healthy):
            await receiver.stop()
