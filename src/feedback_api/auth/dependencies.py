"""FastAPI dependencies that authenticate the caller and check scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep, SettingsDep
from feedback_api.exceptions import MissingScope, PublishableKeyForbidden, Unauthenticated
from feedback_api.keys.service import api_key as api_key_service
from feedback_api.kit.crypto import constant_time_equals

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

    async def dependency(session: SessionDep, credentials: Credentials) -> AuthContext:
        if credentials is None:
            raise Unauthenticated("send `Authorization: Bearer <API key>`")
        auth = await api_key_service.authenticate(session, credentials.credentials)
        if auth is None:
            raise Unauthenticated("the API key is not valid or has been revoked")
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

    return dependency


async def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    token = settings.admin_token
    if token is None:
        raise Unauthenticated("platform administration is disabled: FEEDBACK_ADMIN_TOKEN is unset")
    if credentials is None or not constant_time_equals(
        credentials.credentials, token.get_secret_value()
    ):
        raise Unauthenticated("send `Authorization: Bearer <FEEDBACK_ADMIN_TOKEN>`")


AdminDep = Depends(require_admin)
