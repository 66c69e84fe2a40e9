"""The ceiling for POST /v1/responses: the same Pydantic validation and one plain asyncpg
INSERT per request into a copy of the responses table, nothing else (no auth, no
idempotency, no customer lookup, no SQLAlchemy)."""

from __future__ import annotations

import gc
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import FastAPI

from feedback_api.responses.schemas import ResponseCreate

DSN = os.environ["BENCH_ASYNCPG_DSN"]
TENANT = uuid.UUID(os.environ["BENCH_TENANT_ID"])
INSERT = """
INSERT INTO bench_baseline (tenant_id, id, kind, score, scale_min, scale_max, comment, tags,
  channel, touchpoint, survey, language, attributes, request_hash, occurred_at, received_at,
  updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', $14, $14, $14)
"""
state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state["pool"] = await asyncpg.create_pool(DSN, min_size=10, max_size=10)
    gc.collect()
    gc.freeze()  # the same start-up treatment as the real app
    yield
    await state["pool"].close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/responses", status_code=201)
async def create(body: ResponseCreate) -> dict[str, str]:
    now = datetime.now(UTC)
    new_id = uuid.uuid4()
    async with state["pool"].acquire() as conn:
        await conn.execute(
            INSERT,
            TENANT,
            new_id,
            body.kind.value,
            body.score,
            body.scale_min,
            body.scale_max,
            body.comment,
            body.tags,
            body.channel.value,
            body.touchpoint,
            body.survey,
            body.language,
            json.dumps(body.attributes),
            body.occurred_at or now,
        )
    return {"id": str(new_id)}
