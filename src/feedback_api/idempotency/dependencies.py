"""The FastAPI side of idempotency: the header and a wrapper for create endpoints."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.auth.context import AuthContext
from feedback_api.config import Settings
from feedback_api.idempotency.service import StoredResult
from feedback_api.idempotency.service import idempotency as idempotency_service
from feedback_api.kit.crypto import canonical_hash
from feedback_api.kit.http import json_response
from feedback_api.kit.types import Text

IdempotencyKeyHeader = Annotated[
    Annotated[str, Text(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")] | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string of visible ASCII, up to 255 (a UUID is good). A "
        "retry with the same key replays the first result; kept for at least 24 h, per API key.",
    ),
]


async def run_idempotent(
    *,
    session: AsyncSession,
    auth: AuthContext,
    settings: Settings,
    request: Request,
    key: str | None,
    payload: object,
    handler: Callable[[], Awaitable[tuple[int, BaseModel]]],
) -> Response:
    if key is None:
        status, model = await handler()
        return json_response(status, model)
    request_hash = canonical_hash([request.method, request.url.path, payload])
    stored = await idempotency_service.begin(
        session, auth.tenant_id, auth.key_id, key, request_hash
    )
    if stored is not None:
        return Response(
            json.dumps(stored.body),
            status_code=stored.status,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    status, model = await handler()
    await idempotency_service.complete(
        session,
        auth.tenant_id,
        auth.key_id,
        key,
        method=request.method,
        path=request.url.path,
        request_hash=request_hash,
        result=StoredResult(status, model.model_dump(mode="json")),
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
    )
    return json_response(status, model)
