"""Races that only real, separately committed transactions can show. These tests use
the worker's database without the per-test rollback and delete their tenant afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from feedback_api.app import create_app
from feedback_api.config import Settings
from feedback_api.models import Customer, Response, Tenant
from feedback_api.tenants.service import tenant as tenant_service
from tests.fixtures.auth import bearer

NPS = {"kind": "nps", "score": 9, "channel": "crm", "customer": "racer"}
CONCURRENCY = 20


@pytest.fixture
async def live(
    engine: AsyncEngine, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], async_sessionmaker]]:  # type: ignore[type-arg]
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker() as session:
        tenant, _, secret = await tenant_service.create(session, name="Live", slug=None)
        await session.commit()
    app = create_app(settings)
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, bearer(secret), sessionmaker
    async with sessionmaker() as session:
        await session.execute(delete(Tenant).where(Tenant.id == tenant.id))
        await session.commit()


async def _count(sessionmaker: async_sessionmaker, model: type) -> int:  # type: ignore[type-arg]
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


class TestConcurrentRetries:
    async def test_same_idempotency_key_stores_one_row(
        self,
        live: tuple[httpx.AsyncClient, dict[str, str], async_sessionmaker],  # type: ignore[type-arg]
    ) -> None:
        client, headers, sessionmaker = live
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
        live: tuple[httpx.AsyncClient, dict[str, str], async_sessionmaker],  # type: ignore[type-arg]
    ) -> None:
        client, headers, sessionmaker = live
        before = await _count(sessionmaker, Response)
        body = {**NPS, "external_id": "crm-race", "customer": "new-racer"}
        responses = await asyncio.gather(
            *[client.post("/v1/responses", json=body, headers=headers) for _ in range(CONCURRENCY)]
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * (CONCURRENCY - 1) + [201], [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await _count(sessionmaker, Response) == before + 1
