"""FastAPI dependencies that authenticate the caller and check scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.auth.context import AuthContext
from feedback_api.auth.origins import OriginNotAllowed, check_origin
from feedback_api.auth.scopes import Scope
from feedback_api.config import Settings
from feedback_api.db import SessionDep, SettingsDep, request_session
from feedback_api.exceptions import MissingScope, PublishableKeyForbidden, Unauthenticated
from feedback_api.keys.service import api_key as api_key_service
from feedback_api.kit.crypto import constant_time_equals
from feedback_api.kit.http import client_ip
from feedback_api.ratelimits.limiter import Check, Limiter, client_subject
from feedback_api.ratelimits.policies import Policy

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer fbk_sk_…` (secret key) or `fbk_pk_…` (publishable key).",
)
admin_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="`Authorization: Bearer <FEEDBACK_ADMIN_TOKEN>`: platform administration only.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require(
    *scopes: Scope, allow_publishable: bool = False
) -> Callable[..., Awaitable[AuthContext]]:
    """A dependency that admits a secret key holding every scope in ``scopes`` and, when
    ``allow_publishable``, any publishable key (endpoints then apply its limits)."""

    async def dependency(
        request: Request, session: SessionDep, credentials: Credentials
    ) -> AuthContext:
        secret = None if credentials is None else credentials.credentials
        return await admit(
            request,
            session,
            secret,
            scopes,
            allow_publishable,
            "send `Authorization: Bearer <API key>`",
        )

    return dependency


@dataclass(frozen=True, slots=True)
class Work:
    """What a hot write route needs, resolved as one dependency (`unit_of_work`)."""

    session: AsyncSession
    auth: AuthContext
    settings: Settings


def unit_of_work(
    *scopes: Scope, allow_publishable: bool = False
) -> Callable[[Request], AsyncIterator[Work]]:
    """`SessionDep` + `require(...)` + `SettingsDep` as one dependency, for the ingest
    route: FastAPI resolves each dependency and sub-dependency on every request, which
    cost more than the database work there (docs/benchmarks.md). The same semantics: the
    session commits after the endpoint returns and before the answer is sent (use it with
    `Depends(..., scope="function")`), the key is admitted as `require` admits it. The
    route states its security scheme itself (`openapi_extra=BEARER_SECURITY`)."""

    async def dependency(request: Request) -> AsyncIterator[Work]:
        async with request_session(request) as session:
            auth = await admit(
                request,
                session,
                bearer_secret(request),
                scopes,
                allow_publishable,
                "send `Authorization: Bearer <API key>`",
            )
            yield Work(session, auth, request.app.state.settings)

    return dependency


BEARER_SECURITY: dict[str, Any] = {"security": [{"ApiKey": []}]}


def bearer_secret(request: Request) -> str | None:
    """The credentials of `Authorization: Bearer <key>`, read by the function HTTPBearer
    reads them with (so `require` and `unit_of_work` admit the same headers)."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


async def admit(
    request: Request,
    session: AsyncSession,
    secret: str | None,
    scopes: tuple[Scope, ...],
    allow_publishable: bool,
    how: str,
) -> AuthContext:
    """Authenticate `secret` (from whichever header the route reads it), take the request
    from the key's rate limits and check its scopes. `how` says how to send a key."""
    limiter: Limiter = request.app.state.limiter
    ip = client_subject(client_ip(request))
    failures = limiter.failures(ip)
    # A client that keeps failing gets 429 instead of 401 for its failures. A valid key
    # from the same address is never refused for them: behind one NAT or proxy, one
    # client's stale key must not lock every tenant's clients out.
    if secret is None:
        await limiter.fail(failures)
        raise Unauthenticated(how)
    auth = await api_key_service.authenticate(session, secret)
    if auth is None:
        await limiter.fail(failures)
        raise Unauthenticated("the API key is not valid or has been revoked")
    # Before counting: a page from an origin the key does not list is refused, and a
    # page it does list can read every answer that follows, a 429 included.
    try:
        check_origin(request, auth)
    except OriginNotAllowed:
        await limiter.fail(failures)
        raise
    request.state.ratelimit = await limiter.take(_checks(limiter, auth, ip))
    if auth.is_publishable:
        if not allow_publishable:
            raise PublishableKeyForbidden(
                "publishable keys may only submit ratings with POST /v1/responses"
            )
        return auth
    missing = [s.value for s in scopes if s.value not in auth.scopes]
    if missing:
        raise MissingScope(f"this endpoint needs the scope(s): {', '.join(missing)}")
    return auth


def _checks(limiter: Limiter, auth: AuthContext, ip: str) -> list[Check]:
    """The counters a request with this key is taken from, narrowest first. Publishable
    keys do not draw on the tenant's budget: a key pulled out of an app must not be able
    to spend what the tenant's servers share; `publishable_key` caps them instead."""
    overrides = auth.rate_limits
    key, tenant = str(auth.key_id), str(auth.tenant_id)
    if auth.is_publishable:
        return [
            Check(
                Policy.PUBLISHABLE_CLIENT,
                limiter.limit(Policy.PUBLISHABLE_CLIENT, overrides),
                (key, ip),
            ),
            Check(Policy.PUBLISHABLE_KEY, limiter.limit(Policy.PUBLISHABLE_KEY, overrides), (key,)),
        ]
    return [
        Check(Policy.SECRET_KEY, limiter.limit(Policy.SECRET_KEY, overrides), (key,)),
        Check(Policy.TENANT, limiter.limit(Policy.TENANT, overrides), (tenant,)),
    ]


async def require_admin(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    token = settings.admin_token
    if token is None:
        raise Unauthenticated("platform administration is disabled: FEEDBACK_ADMIN_TOKEN is unset")
    if credentials is None or not constant_time_equals(
        credentials.credentials, token.get_secret_value()
    ):
        limiter: Limiter = request.app.state.limiter
        await limiter.fail(limiter.failures(client_ip(request)))
        raise Unauthenticated("send `Authorization: Bearer <FEEDBACK_ADMIN_TOKEN>`")


AdminDep = Depends(require_admin)
