from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep
from feedback_api.keys.dependencies import AdminDep, require
from feedback_api.keys.schemas import ApiKeyCreated
from feedback_api.kit.params import Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.tenants.schemas import (
    RateLimitOverrides,
    TenantCreate,
    TenantCreated,
    TenantRead,
    TenantUpdate,
)
from feedback_api.tenants.service import tenant as tenant_service

router = APIRouter(prefix="/v1", tags=["tenants"])

AnyKey = Annotated[AuthContext, Depends(require())]
TenantManage = Annotated[AuthContext, Depends(require(Scope.TENANT_MANAGE))]


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    dependencies=[AdminDep],
    responses=problem_responses(409, body=True),
)
async def create_tenant(body: TenantCreate, session: SessionDep) -> TenantCreated:
    """Create a tenant (platform admin only).

    The answer holds the tenant's first secret key with every scope. It is shown only
    here: store it, then create narrower keys with `POST /v1/api-keys`."""
    tenant, key, secret = await tenant_service.create(
        session, name=body.name, slug=body.slug, timezone=body.timezone, locale=body.locale
    )
    return TenantCreated(
        tenant=TenantRead.model_validate(tenant),
        api_key=ApiKeyCreated.of(key, secret),
    )


@router.get("/tenants", dependencies=[AdminDep], responses=problem_responses())
async def list_tenants(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[TenantRead]:
    """List all tenants, newest first (platform admin only)."""
    after = parse_cursor(cursor, datetime, UUID)
    rows, next_cursor = await tenant_service.list_page(session, limit=limit, after=after)
    return Page(items=[TenantRead.model_validate(t) for t in rows], next_cursor=next_cursor)


@router.put(
    "/tenants/{tenant_id:uuid}/rate-limits",
    dependencies=[AdminDep],
    responses=problem_responses(404, body=True),
)
async def set_tenant_rate_limits(
    tenant_id: UUID, body: RateLimitOverrides, session: SessionDep
) -> TenantRead:
    """Set a tenant's rate limits (platform admin only). The body replaces the previous
    overrides: a policy left out or null goes back to the service's default. Takes effect
    on the tenant's next request, on every server."""
    limits = body.model_dump(mode="json", exclude_none=True)
    tenant = await tenant_service.update(session, tenant_id, {"rate_limits": limits})
    return TenantRead.model_validate(tenant)


@router.get("/tenant", responses=problem_responses(403))
async def get_own_tenant(session: SessionDep, auth: AnyKey) -> TenantRead:
    """The tenant that owns the calling key: its name, slug, time zone and locale."""
    return TenantRead.model_validate(await tenant_service.get(session, auth.tenant_id))


@router.patch("/tenant", responses=problem_responses(403, 409, body=True))
async def update_own_tenant(
    body: TenantUpdate, session: SessionDep, auth: TenantManage
) -> TenantRead:
    """Change the calling tenant's settings. Only the fields you send change.

    The time zone decides where metrics put day, week and month boundaries."""
    tenant = await tenant_service.update(session, auth.tenant_id, body.changes())
    return TenantRead.model_validate(tenant)
