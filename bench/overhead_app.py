"""Where the time of POST /v1/responses goes: the real app (middleware, error handlers)
with extra routes that add one layer at a time. Run one and load it with wrk:

    FEEDBACK_DATABASE_URL=postgresql+asyncpg://… PYTHONPATH=bench \\
        .venv/bin/uvicorn overhead_app:create --factory --port 8124 --no-access-log
    wrk -t2 -c16 -d6s -s post.lua http://127.0.0.1:8124/overhead/<step>

Steps: body (validation only), generator-dep (one async-generator dependency),
session-dep (the request session, unused), pool-insert (body + one plain asyncpg INSERT),
deps-insert (all create_response dependencies + the same INSERT). Results in
docs/benchmarks.md.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Request

from feedback_api.app import create_app
from feedback_api.config import Settings
from feedback_api.db import SessionDep, SettingsDep, normalize_url
from feedback_api.idempotency.dependencies import IdempotencyKeyHeader
from feedback_api.keys.dependencies import Credentials
from feedback_api.responses.schemas import ResponseCreate

INSERT = (
    "INSERT INTO responses (tenant_id, id, kind, score, scale_min, scale_max, comment, tags,"
    " channel, attributes, request_hash, occurred_at, received_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '{}', '', $10, $10, $10)"
)


async def _one() -> AsyncIterator[int]:
    yield 1


def create() -> FastAPI:
    app = create_app(Settings())
    dsn = normalize_url(os.environ["FEEDBACK_DATABASE_URL"]).replace("+asyncpg", "")
    state: dict[str, Any] = {}

    async def insert(body: ResponseCreate) -> None:
        if "pool" not in state:
            state["pool"] = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
            state["tenant"] = await state["pool"].fetchval("SELECT id FROM tenants LIMIT 1")
        now = datetime.now(UTC)
        await state["pool"].execute(
            INSERT,
            state["tenant"],
            uuid.uuid4(),
            body.kind.value,
            body.score,
            body.scale_min,
            body.scale_max,
            body.comment,
            body.tags,
            body.channel.value,
            now,
        )

    @app.post("/overhead/body")
    async def body_only(body: ResponseCreate) -> dict[str, int]:
        return {}

    @app.post("/overhead/generator-dep")
    async def generator_dep(
        body: ResponseCreate, one: Annotated[int, Depends(_one, scope="function")]
    ) -> dict[str, int]:
        return {}

    @app.post("/overhead/session-dep")
    async def session_dep(body: ResponseCreate, session: SessionDep) -> dict[str, int]:
        return {}

    @app.post("/overhead/pool-insert")
    async def pool_insert(body: ResponseCreate) -> dict[str, int]:
        await insert(body)
        return {}

    @app.post("/overhead/deps-insert")
    async def deps_insert(
        body: ResponseCreate,
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        credentials: Credentials,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> dict[str, int]:
        await insert(body)
        return {}

    # Before the /v1 routes, so the lookups cost the same as for a real route.
    app.router.routes.sort(key=lambda r: not getattr(r, "path", "").startswith("/overhead"))
    return app
