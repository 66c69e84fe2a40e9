from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep, SettingsDep
from feedback_api.keys.dependencies import require
from feedback_api.kit.params import Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.webhooks.schemas import (
    SecretRotated,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
)
from feedback_api.webhooks.service import webhook as webhook_service

router = APIRouter(prefix="/v1", tags=["webhooks"])

WebhooksManage = Annotated[AuthContext, Depends(require(Scope.WEBHOOKS_MANAGE))]


@router.post(
    "/webhook-endpoints",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, body=True),
)
async def create_webhook_endpoint(
    body: WebhookEndpointCreate, session: SessionDep, settings: SettingsDep, auth: WebhooksManage
) -> WebhookEndpointCreated:
    """Register a URL to receive events, signed per Standard Webhooks (or, with `format:
    delighted`, as Delighted's webhooks were).

    The `secret` (`whsec_…`) is shown only here: verify each delivery's `webhook-signature`
    with it (any Standard Webhooks library does; a `delighted` endpoint's receiver checks
    `X-Delighted-Webhook-Signature` with it). Deliveries start with events that happen
    after this call."""
    endpoint = await webhook_service.create(
        session,
        auth.tenant_id,
        url=str(body.url),
        description=body.description,
        event_types=body.event_types,
        enabled=body.enabled,
        settings=settings,
        payload_format=body.format,
    )
    return WebhookEndpointCreated(
        **WebhookEndpointRead.model_validate(endpoint).model_dump(), secret=endpoint.secret
    )


@router.get("/webhook-endpoints", responses=problem_responses(403))
async def list_webhook_endpoints(
    session: SessionDep, auth: WebhooksManage, limit: Limit = 50, cursor: Cursor = None
) -> Page[WebhookEndpointRead]:
    """The tenant's webhook endpoints, newest first. Secrets are never shown again."""
    after = parse_cursor(cursor, datetime, UUID)
    rows, next_cursor = await webhook_service.list_page(
        session, auth.tenant_id, limit=limit, after=after
    )
    return Page(
        items=[WebhookEndpointRead.model_validate(e) for e in rows], next_cursor=next_cursor
    )


@router.get("/webhook-endpoints/{endpoint_id:uuid}", responses=problem_responses(403, 404))
async def get_webhook_endpoint(
    endpoint_id: UUID, session: SessionDep, auth: WebhooksManage
) -> WebhookEndpointRead:
    """One webhook endpoint, with `disabled_reason` if we turned it off."""
    return WebhookEndpointRead.model_validate(
        await webhook_service.get(session, auth.tenant_id, endpoint_id)
    )


@router.patch(
    "/webhook-endpoints/{endpoint_id:uuid}", responses=problem_responses(403, 404, body=True)
)
async def update_webhook_endpoint(
    endpoint_id: UUID,
    body: WebhookEndpointUpdate,
    session: SessionDep,
    settings: SettingsDep,
    auth: WebhooksManage,
) -> WebhookEndpointRead:
    """Change the URL, description, event filter, `format` or `enabled`. Setting
    `enabled: true` on an endpoint we disabled turns it back on."""
    endpoint = await webhook_service.update(
        session, auth.tenant_id, endpoint_id, body.changes(), settings
    )
    return WebhookEndpointRead.model_validate(endpoint)


@router.delete(
    "/webhook-endpoints/{endpoint_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
async def delete_webhook_endpoint(
    endpoint_id: UUID, session: SessionDep, auth: WebhooksManage
) -> None:
    """Remove an endpoint and its delivery history. Pending deliveries are dropped."""
    await webhook_service.delete(session, auth.tenant_id, endpoint_id)


@router.post(
    "/webhook-endpoints/{endpoint_id:uuid}/rotate-secret", responses=problem_responses(403, 404)
)
async def rotate_webhook_secret(
    endpoint_id: UUID, session: SessionDep, auth: WebhooksManage
) -> SecretRotated:
    """Issue a new signing secret. For 24 hours every delivery carries two signatures (old
    and new secret), so you can switch your receiver over without missing a message."""
    secret, expires = await webhook_service.rotate_secret(session, auth.tenant_id, endpoint_id)
    return SecretRotated(secret=secret, previous_secret_expires_at=expires)


@router.post(
    "/webhook-endpoints/{endpoint_id:uuid}/test",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(403, 404),
)
async def test_webhook_endpoint(
    endpoint_id: UUID, session: SessionDep, auth: WebhooksManage
) -> WebhookDeliveryRead:
    """Send a `webhook.test` event to this endpoint only. Follow it with
    `GET /v1/webhook-endpoints/{id}/deliveries`."""
    return await webhook_service.send_test(session, auth.tenant_id, endpoint_id)


@router.get(
    "/webhook-endpoints/{endpoint_id:uuid}/deliveries", responses=problem_responses(403, 404)
)
async def list_webhook_deliveries(
    endpoint_id: UUID,
    session: SessionDep,
    auth: WebhooksManage,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[WebhookDeliveryRead]:
    """Deliveries to this endpoint, newest first, each with its recent attempts (status,
    latency, the start of the answer)."""
    after = parse_cursor(cursor, datetime, UUID)
    items, next_cursor = await webhook_service.deliveries_page(
        session, auth.tenant_id, endpoint_id, limit=limit, after=after
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/webhook-deliveries/{delivery_id:uuid}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(403, 404),
)
async def retry_webhook_delivery(
    delivery_id: UUID, session: SessionDep, auth: WebhooksManage
) -> WebhookDeliveryRead:
    """Try a delivery again now, whatever its state (e.g. after fixing your receiver)."""
    return await webhook_service.retry(session, auth.tenant_id, delivery_id)
