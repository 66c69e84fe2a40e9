"""Races that only real, separately committed transactions can show. These tests use
the worker's database without the per-test rollback and delete their tenant afterwards."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from feedback_api.models import Customer, Response
from tests.fixtures.live import Live

NPS = {"kind": "nps", "score": 9, "channel": "crm", "customer": "racer"}
CONCURRENCY = 20


async def _count(sessionmaker: async_sessionmaker, model: type) -> int:  # type: ignore[type-arg]
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


class TestConcurrentRetries:
    async def test_same_idempotency_key_stores_one_row(
        self,
        live: Live,
    ) -> None:
        client, headers, sessionmaker = live.client, live.headers, live.sessionmaker
        before = await _count(sessionmaker, Response)
        responses = await asyncio.gather(
            *[
                client.post(
                    "/v1/responses", json=NPS, headers={**headers, "Idempotency-Key": "race-1"}
                )
                for _ in range(CONCURRENCY)
            ]
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 409}, statuses
        created_ids = {r.json()["id"] for r in responses if r.status_code == 201}
        assert len(created_ids) == 1
        for r in responses:
            if r.status_code == 409:
                assert r.json()["code"] == "idempotency_key_in_use"
        assert await _count(sessionmaker, Response) == before + 1
        assert await _count(sessionmaker, Customer) >= 1

        # Once the first has finished, a retry replays it.
        replay = await client.post(
            "/v1/responses", json=NPS, headers={**headers, "Idempotency-Key": "race-1"}
        )
        assert replay.status_code == 201
        assert replay.json()["id"] in created_ids

    async def test_same_external_id_stores_one_row(
        self,
        live: Live,
    ) -> None:
        client, headers, sessionmaker = live.client, live.headers, live.sessionmaker
        before = await _count(sessionmaker, Response)
        body = {**NPS, "external_id": "crm-race", "customer": "new-racer"}
        responses = await asyncio.gather(
            *[client.post("/v1/responses", json=body, headers=headers) for _ in range(CONCURRENCY)]
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * (CONCURRENCY - 1) + [201], [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await _count(sessionmaker, Response) == before + 1

    async def test_batches_sharing_external_ids_in_opposite_orders_do_not_deadlock(
        self,
        live: Live,
    ) -> None:
        """Rows are inserted in external_id order whatever the order of the items, so two
        imports of the same records (one sorted newest first) wait for each other instead of
        deadlocking: every item ends stored once, created by one batch, a replay in the
        other."""
        client, headers = live.client, live.headers
        for round_ in range(3):
            items = [
                {**NPS, "external_id": f"imp-{round_}-{i:03}", "customer": f"c-{i % 40}"}
                for i in range(300)
            ]
            answers = await asyncio.gather(
                client.post("/v1/responses/batch", json={"items": items}, headers=headers),
                client.post("/v1/responses/batch", json={"items": items[::-1]}, headers=headers),
            )
            assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
            forward, backward = (a.json() for a in answers)
            assert forward["failed"] == backward["failed"] == 0
            assert forward["created"] + backward["created"] == len(items)
