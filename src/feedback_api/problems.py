"""Rendering of RFC 9457 problem details and the app's exception handlers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from feedback_api.exceptions import FeedbackError
from feedback_api.kit.schemas import field_errors

logger = structlog.get_logger("feedback_api")

PROBLEM_TYPE = "urn:feedback-api:problem:{code}"
HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Missing or invalid credentials"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def problem_bytes(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    request_id: str | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE.format(code=code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": errors or [],
    }
    if request_id:
        body["request_id"] = request_id
    return json.dumps(body, ensure_ascii=False, default=str).encode()


def _request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        problem_bytes(
            status=status,
            code=code,
            title=title,
            detail=detail,
            errors=errors,
            request_id=_request_id(),
        ),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


async def _feedback_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FeedbackError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.errors, headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem_response(400, "invalid_json", "Malformed JSON", "the body is not valid JSON")
    errors = field_errors(raw)
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    return problem_response(
        422, "validation_error", "The request is not valid", f"check these fields: {fields}", errors
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, title = HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(exc.status_code, code, title, detail, headers=exc.headers)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # Not the client's fault and usually brief: say so, and when to try again.
    logger.error("database_unavailable", error_type=type(exc).__name__)
    busy = isinstance(exc, sa_exc.TimeoutError)
    return problem_response(
        503,
        "database_busy" if busy else "database_unavailable",
        "Service unavailable",
        "all database connections are in use; retry shortly"
        if busy
        else "the database cannot be reached; retry shortly",
        headers={"Retry-After": "1" if busy else "5"},
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled_error", error_type=type(exc).__name__)
    return problem_response(
        500, "internal_error", "Internal server error", "something went wrong on our side"
    )


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FeedbackError, _feedback_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for unavailable in (
        sa_exc.TimeoutError,
        sa_exc.InterfaceError,
        sa_exc.OperationalError,
        OSError,
    ):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
