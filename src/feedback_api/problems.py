"""Rendering of RFC 9457 problem details and the app's exception handlers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from feedback_api.exceptions import FeedbackError
from feedback_api.kit.poison import is_data_error, sqlstate
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
    if exc.headers:
        headers = {**(headers or {}), **exc.headers}
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


def _route_table(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    """(path regex, methods) of every route, included routers walked (each carries its
    full path, so no prefix is added on inclusion); built once per app."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "route_table", None)
    if table is None:
        table = []
        pending: list[Any] = list(app.router.routes)
        while pending:
            route = pending.pop()
            router = getattr(route, "original_router", None)
            if router is not None:
                pending.extend(router.routes)
            elif isinstance(route, BaseRoute) and hasattr(route, "path_regex"):
                table.append((route.path_regex, set(getattr(route, "methods", None) or ())))
        app.state.route_table = table
    return table


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's 405 names only the methods
    of the first route whose path matched, but one path often has several (GET and PATCH
    as separate operations)."""
    path = request.url.path
    methods: set[str] = set()
    for regex, served in _route_table(request.app):
        if regex.match(path):
            methods |= served
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, title = HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        detail = f"{request.method} is not served here; use one of {headers['Allow']}"
    return problem_response(exc.status_code, code, title, detail, headers=headers)


@dataclass(frozen=True, slots=True)
class Answer:
    """What to tell the client about an exception no handler took."""

    status: int
    code: str
    title: str
    detail: str
    headers: Mapping[str, str] | None = None
    retry: bool = False  # run the whole request again (the transaction was rolled back)


BUSY = Answer(
    503,
    "database_busy",
    "Service unavailable",
    "the database is busy; retry shortly",
    {"Retry-After": "1"},
)
UNAVAILABLE = Answer(
    503,
    "database_unavailable",
    "Service unavailable",
    "the database cannot be reached; retry shortly",
    {"Retry-After": "5"},
)
CONTENDED = Answer(
    503,
    "database_contention",
    "Service unavailable",
    "the request met a concurrent change (deadlock or serialization failure) several times; "
    "retry shortly",
    {"Retry-After": "1"},
    retry=True,
)
INTERNAL = Answer(
    500, "internal_error", "Internal server error", "something went wrong on our side"
)


def answer_for(exc: BaseException) -> Answer:
    """The last line of defence: an exception that reached the middleware becomes a
    problem. Data the database refused is the client's (422) but also a gap in validation at
    the edge, so it is logged as a bug; contention is retried by the caller first."""
    state = sqlstate(exc)
    if state in ("40001", "40P01"):
        return CONTENDED
    if state == "57014" or state == "55P03" or isinstance(exc, sa_exc.TimeoutError):
        # statement or lock timeout, or no pooled connection within pool_timeout
        logger.warning("database_busy", error_type=type(exc).__name__, sqlstate=state)
        return BUSY
    if is_data_error(exc) and not (state or "").startswith("23"):
        logger.error(
            "edge_validation_gap", error_type=type(exc).__name__, sqlstate=state, exc_info=exc
        )
        return Answer(
            422,
            "invalid_value",
            "The request is not valid",
            "a value cannot be stored (for example a character or number out of range)",
        )
    if state is not None and state.startswith("23"):
        logger.error("unmapped_integrity_error", sqlstate=state, exc_info=exc)
        return Answer(409, "conflict", "Conflict", "the change conflicts with stored data")
    if (state is not None and state[:2] in ("08", "53", "57")) or isinstance(
        exc, (sa_exc.InterfaceError, sa_exc.OperationalError, OSError)
    ):
        logger.error("database_unavailable", error_type=type(exc).__name__, sqlstate=state)
        return UNAVAILABLE
    logger.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return INTERNAL


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FeedbackError, _feedback_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Everything else (database errors included) propagates to RequestContextMiddleware,
    # which retries contention, maps the rest with `answer_for` and keeps the connection
    # usable: Starlette's own 500 handler re-raises, and uvicorn then drops the connection.
