from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel


def json_response(status: int, model: BaseModel) -> Response:
    """Serialise with pydantic-core directly, for endpoints whose status depends on the
    outcome (201 created / 200 already there)."""
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def client_ip(request: Request) -> str:
    """The client's address: uvicorn takes it from `X-Forwarded-For` when the peer is a
    trusted proxy (`FORWARDED_ALLOW_IPS`, default 127.0.0.1), else the peer itself."""
    return request.client.host if request.client else "unknown"
