"""CORS for web pages that submit ratings with a publishable key (docs/integration.md, "Web
pages"). Only `POST /v1/responses` answers it; every other route is for servers holding
secret keys, and a browser must never be able to read them on a page's behalf.

Two halves, because the key is known only to the second:

- the preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) carries no
  `Authorization`, so `CORSMiddleware` answers it for an origin that at least one active
  publishable key lists (of any tenant) and refuses it otherwise;
- the request itself is checked by `auth.origins.check_origin`, called by `require`
  as soon as the key is known, before it is counted against the rate limits: a
  publishable key must list the page's origin, or the request is refused before anything is
  stored. A check that passes tells the middleware, which then adds the CORS headers to
  whatever the answer is (201, and problems such as 422 and 429, so the page can read them).

No `Access-Control-Allow-Credentials`: keys are bearer tokens, never cookies.
"""

from __future__ import annotations

import re

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedback_api.auth.origins import SCOPE_KEY, OriginNotAllowed, Verdict
from feedback_api.exceptions import RateLimited
from feedback_api.keys.schemas import MAX_ORIGIN_LENGTH, ORIGIN_PATTERN
from feedback_api.keys.service import api_key as api_key_service
from feedback_api.problems import answer_for, problem_bytes
from feedback_api.ratelimits.limiter import Check, Limiter, client_subject
from feedback_api.ratelimits.policies import Policy

logger = structlog.get_logger("feedback_api.cors")

PATH = "/v1/responses"
ALLOW_METHODS = "POST"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
EXPOSE_HEADERS = "Retry-After, RateLimit, RateLimit-Policy, X-Request-Id, Idempotent-Replayed"
# Browsers cap it (Chromium at 2 hours). Caching a preflight weakens nothing: each request
# is checked against its own key's origins anyway.
MAX_AGE = "7200"
_ORIGIN = re.compile(ORIGIN_PATTERN)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class CORSMiddleware:
    """Pure ASGI. Outermost, so that answers made further in (the request middleware's 503s
    included) carry the headers once the origin check passed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only POST (and its preflight) is served to pages; any other method on the path is
        # a server's and gets no CORS headers.
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] not in ("POST", "OPTIONS")
        ):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        requested = _header(scope, b"access-control-request-method")
        if scope["method"] == "OPTIONS" and requested is not None:
            await self._preflight(scope, origin, requested, send)
            return
        verdict = Verdict()

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and verdict.allowed is not None:
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"access-control-allow-origin", verdict.allowed.encode()),
                        (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
                        (b"vary", b"Origin"),
                    ],
                }
            await send(message)

        await self.app({**scope, SCOPE_KEY: verdict}, receive, send_with_cors)

    async def _preflight(self, scope: Scope, origin: str, requested: str, send: Send) -> None:
        # Only well-formed origins reach the database; anything else (`null`, a path, upper
        # case, 10,000 characters) can be listed by no key.
        well_formed = len(origin) <= MAX_ORIGIN_LENGTH and _ORIGIN.match(origin) is not None
        # A preflight carries no key but costs a lookup: counted per client address.
        limiter: Limiter = scope["app"].state.limiter
        client = scope.get("client")
        address = client_subject(client[0]) if client else "unknown"
        check = Check(Policy.PREFLIGHT_CLIENT, limiter.limit(Policy.PREFLIGHT_CLIENT), (address,))
        try:
            await limiter.take([check])
        except RateLimited as exc:
            await self._problem(
                send, exc.status, exc.code, exc.title, exc.detail, dict(exc.headers or {})
            )
            return
        try:
            listed = (
                requested == ALLOW_METHODS and well_formed and await self._listed(scope, origin)
            )
        except Exception as exc:
            # Outside the request middleware: map database trouble (503) here ourselves.
            answer = answer_for(exc)
            await self._problem(
                send,
                answer.status,
                answer.code,
                answer.title,
                answer.detail,
                dict(answer.headers or {}),
            )
            return
        if not listed:
            detail = (
                f"only {ALLOW_METHODS} is served to web pages here"
                if requested != ALLOW_METHODS
                else "no publishable key lists this origin in its allowed_origins"
            )
            await self._problem(
                send, 403, OriginNotAllowed.code, OriginNotAllowed.title, detail, {"Vary": "Origin"}
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin.encode()),
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", MAX_AGE.encode()),
                    (b"vary", b"Origin"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _listed(self, scope: Scope, origin: str) -> bool:
        sessionmaker = scope["app"].state.sessionmaker
        async with sessionmaker() as session:
            return await api_key_service.origin_listed(session, origin)

    async def _problem(
        self, send: Send, status: int, code: str, title: str, detail: str, headers: dict[str, str]
    ) -> None:
        body = problem_bytes(status=status, code=code, title=title, detail=detail)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
