"""The rollup under real concurrency: committed inserts from many connections while workers
fold, then the rollup alone must equal a count of the raw rows."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from feedback_api.config import Settings
from feedback_api.metrics.repository import MetricRepository
from feedback_api.worker import Worker
from tests.fixtures.live import Live
from tests.fixtures.metrics import make_items

WRITERS = 8
BATCHES = 5


async def test_concurrent_inserts_and_folds_lose_nothing(live: Live) -> None:
    rng = random.Random(11)
    stop = asyncio.Event()

    async def writer(seed: int) -> None:
        items = make_items(random.Random(seed), 20 * BATCHES)
        for first in range(0, len(items), 20):
            response = await live.client.post(
                "/v1/responses/batch",
                json={"items": items[first : first + 20]},
                headers=live.headers,
            )
            assert response.status_code == 200, response.text
            await asyncio.sleep(rng.random() / 100)

    async def folder() -> None:
        while not stop.is_set():
            async with live.sessionmaker() as session:
                await MetricRepository(session).fold(limit=37)
                await session.commit()
            await asyncio.sleep(0.005)

    folders = [asyncio.create_task(folder()) for _ in range(2)]
    try:
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    finally:
        stop.set()
        await asyncio.gather(*folders)
    async with live.sessionmaker() as session:
        while await MetricRepository(session).fold():
            await session.commit()
        await session.commit()
        raw = (
            await session.execute(
                text(
                    "SELECT kind, score, count(*) FROM responses WHERE tenant_id = :t "
                    "AND deleted_at IS NULL GROUP BY 1, 2"
                ),
                {"t": live.tenant_id},
            )
        ).all()
        rolled = {}
        for table in ("metric_rollups", "metric_totals"):
            rolled[table] = (
                await session.execute(
                    text(
                        f"SELECT r.kind, r.scale_min + h.i - 1, sum(h.n) FROM {table} r, "
                        "unnest(r.counts) WITH ORDINALITY AS h(n, i) WHERE r.tenant_id = :t "
                        "AND r.grain = 'month' GROUP BY 1, 2 HAVING sum(h.n) > 0"
                    ),
                    {"t": live.tenant_id},
                )
            ).all()
    assert sum(n for _, _, n in raw) == WRITERS * BATCHES * 20
    for rows in rolled.values():
        assert {(k, s): n for k, s, n in raw} == {(k, s): n for k, s, n in rows}


async def test_the_worker_folds_new_responses(live: Live, settings: Settings) -> None:
    response = await live.client.post(
        "/v1/responses", json={"kind": "ces", "score": 6, "channel": "crm"}, headers=live.headers
    )
    assert response.status_code == 201
    count = "SELECT count(*) FROM metric_deltas WHERE tenant_id = :t"
    async with live.sessionmaker() as session:
        assert await session.scalar(text(count), {"t": live.tenant_id}) == 1
    worker = Worker(live.sessionmaker, settings, periodic=())
    async with asyncio.timeout(10):
        await worker.run_until_idle()
    async with live.sessionmaker() as session:
        assert await session.scalar(text(count), {"t": live.tenant_id}) == 0
        folded = await session.scalar(
            text(
                "SELECT counts FROM metric_rollups WHERE tenant_id = :t AND grain = 'day' "
                "AND kind = 'ces'"
            ),
            {"t": live.tenant_id},
        )
    assert folded == [0, 0, 0, 0, 0, 1, 0]
