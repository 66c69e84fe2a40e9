"""The request half of CORS: a publishable key used from a web page must list the page's
origin. `require` calls `check_origin` as soon as the key is known; a check that passes
tells `cors.CORSMiddleware` (through the ASGI scope), which then adds the CORS headers to
whatever the answer is."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from feedback_api.auth.context import AuthContext
from feedback_api.exceptions import Forbidden

SCOPE_KEY = "feedback_api.cors"


class OriginNotAllowed(Forbidden):
    code = "origin_not_allowed"
    title = "This web origin may not use this key"


@dataclass(slots=True)
class Verdict:
    """Shared by the middleware and `check_origin` through the ASGI scope (copies of the
    scope made further in keep the same object)."""

    allowed: str | None = None


def check_origin(request: Request, auth: AuthContext) -> None:
    """Refuse a publishable key used from a web page whose origin the key does not list.
    Requests without `Origin` (apps, servers) and secret keys pass untouched; secret keys
    never get CORS headers. Harmless to call more than once."""
    origin = request.headers.get("origin")
    if origin is None or not auth.is_publishable:
        return
    if origin not in auth.allowed_origins:
        raise OriginNotAllowed(
            "this publishable key does not list the page's origin (the Origin header) in "
            "its allowed_origins; add it with PATCH /v1/api-keys/{id}"
        )
    verdict = request.scope.get(SCOPE_KEY)
    if isinstance(verdict, Verdict):
        verdict.allowed = origin
