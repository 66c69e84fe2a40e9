from __future__ import annotations

import io
import json

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from feedback_api.config import Settings
from feedback_api.logging import configure_logging
from tests.fixtures.app import build_app
from tests.fixtures.auth import TenantHandle


async def test_logs_a_json_line_per_request_without_secrets_or_comments(
    settings: Settings, engine: AsyncEngine, session: AsyncSession, tenant: TenantHandle
) -> None:
    app = build_app(settings.model_copy(update={"log_level": "INFO"}), engine, session)
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                "/v1/responses",
                json={
                    "kind": "nps",
                    "score": 1,
                    "channel": "crm",
                    "comment": "secret-complaint",
                    "customer": "alice@example.com",
                },
                headers={**tenant.headers, "X-Request-ID": "req-42"},
            )
        assert response.status_code == 201
    finally:
        configure_logging("WARNING")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert request_lines == [
        {
            "event": "request",
            "method": "POST",
            "path": "/v1/responses",
            "status": 201,
            "duration_ms": request_lines[0]["duration_ms"],
            "request_id": "req-42",
            "level": "info",
            "timestamp": request_lines[0]["timestamp"],
        }
    ]
    text = stream.getvalue()
    for secret in (tenant.admin_key, "secret-complaint", "alice@example.com"):
        assert secret not in text
