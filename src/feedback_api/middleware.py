"""One pure-ASGI middleware (no BaseHTTPMiddleware: it costs a task per request): request
id, body size and media type limits, the last line of defence for errors (contention
retried, database errors mapped, a 500 that keeps the connection), access log and
Prometheus metrics."""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections.abc import Callable, Sequence

import structlog
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedback_api.exceptions import FeedbackError, PayloadTooLarge, UnsupportedMediaType
from feedback_api.kit.poison import sqlstate
from feedback_api.problems import Answer, answer_for, problem_bytes

logger = structlog.get_logger("feedback_api.access")

REQUEST_DURATION = Histogram(
    "feedback_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _accepted(content_type: str, path: str) -> bool:
    """JSON everywhere; HTML form posts only on the one-tap answer pages."""
    if path.startswith("/r/"):
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/x-www-form-urlencoded":
            return True
    return _is_json(content_type)


class ClientGone(Exception):
    """The connection closed while the request body was still arriving."""


MAX_ATTEMPTS = 3  # a request that deadlocks or fails to serialise is run up to 3 times


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class _Exchange:
    """One request as the middleware follows it: the status it answered (500 until the
    app starts a response), whether a response has started, and the scope routing wrote
    the route into (the last attempt's)."""

    __slots__ = ("final_scope", "request_id", "scope", "started", "status", "_send")

    def __init__(self, scope: Scope, send: Send, request_id: str) -> None:
        self.scope = self.final_scope = scope
        self._send = send
        self.request_id = request_id
        self.status = 500
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            extra = [(b"x-request-id", self.request_id.encode())]
            # The RateLimit fields of a request the limiter let through (ratelimits).
            limits = self.final_scope.get("state", {}).get("ratelimit")
            if limits:
                extra += [(k.lower().encode(), v.encode()) for k, v in limits.items()]
            message["headers"] = [*message.get("headers", []), *extra]
        await self._send(message)

    def record(self, elapsed: float) -> None:
        """The request's duration metric and its access-log line."""
        method = self.scope["method"]
        route = self.final_scope.get("route")
        # path_format: the template without convertors ({id}, not {id:uuid})
        template = getattr(route, "path_format", None) or getattr(route, "path", "unmatched")
        REQUEST_DURATION.labels(method, template, str(self.status)).observe(elapsed)
        logger.info(
            "request",
            method=method,
            path=template,
            status=self.status,
            duration_ms=round(elapsed * 1000, 2),
        )


#: A path prefix whose clients expect errors in another shape than problem+json, and what
#: renders them: the status → (content type, body).
ErrorShape = tuple[str, Callable[[int], tuple[bytes, bytes]]]


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, error_shapes: Sequence[ErrorShape] = ()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.error_shapes = tuple(error_shapes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        supplied = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        exchange = _Exchange(scope, send, request_id)
        try:
            body: bytes | None = None
            if scope["method"].encode() in _BODY_METHODS:
                try:
                    body = await self._read_body(headers, receive, scope["path"])
                except FeedbackError as exc:
                    answer = Answer(exc.status, exc.code, exc.title, exc.detail)
                    await self._send_answer(answer, scope["path"], request_id, exchange.send)
                    return
                except ClientGone:
                    exchange.status = 499  # logged as nginx does: client closed request
                    return
            await self._run(exchange, receive, body)
        finally:
            exchange.record(time.perf_counter() - started)

    async def _run(self, exchange: _Exchange, receive: Receive, body: bytes | None) -> None:
        """The app, run again (from the body read here) when the database asked for a retry
        (deadlock, serialization failure) and no byte of the response is out yet."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            # A fresh scope per attempt: routing and FastAPI write into it.
            exchange.final_scope = dict(exchange.scope)
            try:
                await self.app(
                    exchange.final_scope,
                    receive if body is None else _replay(body, receive),
                    exchange.send,
                )
                return
            except Exception as exc:
                if exchange.started:
                    raise  # half a response is out: only closing the connection is honest
                answer = answer_for(exc)
                if answer.retry and attempt < MAX_ATTEMPTS:
                    logger.warning("request_retried", attempt=attempt, sqlstate=sqlstate(exc))
                    await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
                    continue
                await self._send_answer(
                    answer, exchange.scope["path"], exchange.request_id, exchange.send
                )
                return

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive, path: str) -> bytes:
        """The whole body, read here within the limit (so a request can be run again after
        a deadlock); a declared Content-Length over the limit is refused before reading."""
        length_header = headers.get(b"content-length")
        if length_header is not None:
            try:
                length = int(length_header)
            except ValueError:
                raise FeedbackError("Content-Length is not a number") from None
            if length > self.max_body_bytes:
                raise PayloadTooLarge(f"the body may be at most {self.max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before its body was complete: whatever arrived is a
                # fragment (`score=1` of `score=10`), and there is nobody to answer.
                raise ClientGone

            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLarge(f"the body may be at most {self.max_body_bytes} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and not _accepted(headers.get(b"content-type", b"").decode("latin-1"), path):
            raise UnsupportedMediaType("send the body as application/json")
        return body

    async def _send_answer(self, answer: Answer, path: str, request_id: str, send: Send) -> None:
        shape = next(
            (render for prefix, render in self.error_shapes if path.startswith(prefix)), None
        )
        if shape is not None:
            content_type, body = shape(answer.status)
        else:
            content_type = b"application/problem+json"
            body = problem_bytes(
                status=answer.status,
                code=answer.code,
                title=answer.title,
                detail=answer.detail,
                request_id=request_id,
            )
        extra = [(k.lower().encode(), v.encode()) for k, v in (answer.headers or {}).items()]
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
