"""Delighted's transport: errors in its shape, every path with and without `.json`, and
HTTP Basic authentication with one of our secret keys as the user name."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep
from feedback_api.exceptions import FeedbackError
from feedback_api.keys.dependencies import admit

PREFIX = "/compat/delighted/"
MESSAGES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


def error(
    status: int, errors: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """`{"status": 422, "message": "Unprocessable Entity", "errors": {...}}`, as Delighted
    answered; 429 and 503 with an integer `Retry-After` (the SDKs `int()` it)."""
    body: dict[str, Any] = {"status": status, "message": MESSAGES.get(status, "Error")}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def error_bytes(status: int) -> tuple[bytes, bytes]:
    """An error the middleware answers (the database busy or unreachable, a body too large)
    in Delighted's shape: the content type and the body."""
    body = {"status": status, "message": MESSAGES.get(status, "Error")}
    return b"application/json", json.dumps(body).encode()


class DelightedError(BaseModel):
    status: int
    message: str = Field(description="The status's name, e.g. `Unprocessable Entity`.")
    errors: dict[str, list[str]] | None = Field(
        default=None, description="On 422: the field (dotted path) and what is wrong with it."
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": DelightedError, "description": MESSAGES[status]}
    for status in (400, 401, 403, 404, 422, 429, 503)
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in (loc[1:] if loc and loc[0] in ("body", "query", "path") else loc)]
    return ".".join(parts) or "base"


class DelightedRoute(APIRoute):
    """Errors as Delighted's clients parse them, never problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, ValidationError) as exc:
                # A ValidationError here is Delighted's input meeting one of our own schemas
                # (what the edge let through and ours refuse): the client's to fix, a 422.
                fields: dict[str, list[str]] = {}
                for e in exc.errors():
                    fields.setdefault(_field(tuple(e.get("loc", ()))), []).append(
                        str(e.get("msg", "is invalid"))
                    )
                return error(422, fields)
            except StarletteHTTPException as exc:  # a body that is not JSON: 400
                status = exc.status_code if exc.status_code in MESSAGES else 400
                return error(status, headers=dict(exc.headers or {}))
            except FeedbackError as exc:
                fields = {}
                for e in getattr(exc, "errors", None) or []:
                    loc = tuple(e.get("loc", ()) or ())
                    fields.setdefault(_field(loc), []).append(str(e.get("message", "")))
                if exc.status == 422 and not fields:
                    fields = {"base": [str(exc)]}
                status = exc.status if exc.status in MESSAGES else 400
                return error(status, fields or None, headers=getattr(exc, "headers", None))

        return route


def basic_secret(request: Request) -> str | None:
    """The key from `Authorization: Basic base64(key)` (Delighted's Python SDK) or
    `base64(key + ":")` (Ruby, Node, PHP): the user name; the password is ignored."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded.split(":", 1)[0] or None


def delighted_key(*scopes: Scope) -> Callable[..., Awaitable[AuthContext]]:
    async def dependency(request: Request, session: SessionDep) -> AuthContext:
        return await admit(
            request,
            session,
            basic_secret(request),
            scopes,
            False,
            "send HTTP Basic authentication with your secret API key as the user name",
        )

    return dependency


class DelightedRouter(APIRouter):
    """Registers each route also with `.json` (first, so `{id}` does not swallow it)."""

    def both(
        self, method: str, path: str, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            options.setdefault("responses", ERROR_RESPONSES)
            self.add_api_route(
                f"{path}.json", endpoint, methods=[method], include_in_schema=False, **options
            )
            self.add_api_route(path, endpoint, methods=[method], **options)
            return endpoint

        return register
