from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep
from feedback_api.keys.dependencies import require
from feedback_api.keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, ApiKeyUpdate
from feedback_api.keys.service import api_key as api_key_service
from feedback_api.kit.params import Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

KeysManage = Annotated[AuthContext, Depends(require(Scope.KEYS_MANAGE))]


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(403, body=True))
async def create_api_key(
    body: ApiKeyCreate, session: SessionDep, auth: KeysManage
) -> ApiKeyCreated:
    """Create a secret key with the scopes you list, or a publishable key.

    The key itself is in `secret` and is shown only in this answer; we keep only its hash.
    You can grant only scopes that your own key holds (`scope_escalation`), and only a key
    holding `keys:trust` can create a `trusted` key (`trust_requires_scope`). A publishable
    key for web pages lists the pages' origins in `allowed_origins`."""
    key, secret = await api_key_service.create(
        session,
        auth.tenant_id,
        name=body.name,
        scopes=[s.value for s in body.scopes or ()],
        publishable=body.publishable,
        trusted=body.trusted,
        allowed_origins=body.allowed_origins,
        granted_by=auth,
    )
    return ApiKeyCreated.of(key, secret)


@router.get("", responses=problem_responses(403))
async def list_api_keys(
    session: SessionDep, auth: KeysManage, limit: Limit = 50, cursor: Cursor = None
) -> Page[ApiKeyRead]:
    """List the tenant's keys, newest first, revoked ones included. Secrets are never shown."""
    after = parse_cursor(cursor, datetime, UUID)
    rows, next_cursor = await api_key_service.list_page(
        session, auth.tenant_id, limit=limit, after=after
    )
    return Page(items=[ApiKeyRead.model_validate(k) for k in rows], next_cursor=next_cursor)


@router.patch("/{key_id:uuid}", responses=problem_responses(403, 404, 409, body=True))
async def update_api_key(
    key_id: UUID, body: ApiKeyUpdate, session: SessionDep, auth: KeysManage
) -> ApiKeyRead:
    """Change a key's `name`, `allowed_origins` (publishable keys) or `trusted` (secret
    keys; sending it needs a key holding `keys:trust`). Each field sent replaces the old
    value; the change holds from the next request on, on every server. A revoked key
    cannot be changed (409 `api_key_revoked`)."""
    key = await api_key_service.update(session, auth.tenant_id, key_id, body.changes(), actor=auth)
    return ApiKeyRead.model_validate(key)


@router.delete(
    "/{key_id:uuid}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404)
)
async def revoke_api_key(key_id: UUID, session: SessionDep, auth: KeysManage) -> None:
    """Revoke a key. It stops working at once, on every server. Revoking twice is harmless."""
    await api_key_service.revoke(session, auth.tenant_id, key_id, actor=auth)
