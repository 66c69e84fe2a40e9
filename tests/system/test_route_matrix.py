"""Every route, checked against the key kinds and scopes that may not use it. A new route
must be added to ROUTES (the last test fails otherwise), which makes its scope explicit."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.routes import BODIES, SOME_ID

# route -> the scope it needs (None: any secret key)
ROUTES: dict[str, str | None] = {
    "GET /v1/tenant": None,
    "PATCH /v1/tenant": "tenant:manage",
    "GET /v1/api-keys": "keys:manage",
    "POST /v1/api-keys": "keys:manage",
    "PATCH /v1/api-keys/{key_id}": "keys:manage",
    "DELETE /v1/api-keys/{key_id}": "keys:manage",
    "GET /v1/customers": "customers:read",
    "GET /v1/customers/{external_ref}": "customers:read",
    "GET /v1/customers/{external_ref}/export": "customers:read",
    "PUT /v1/customers/{external_ref}": "customers:write",
    "DELETE /v1/customers/{external_ref}": "customers:write",
    "GET /v1/responses": "responses:read",
    "GET /v1/responses/export": "responses:read",
    "GET /v1/responses/{response_id}": "responses:read",
    "POST /v1/responses": "responses:write",
    "POST /v1/responses/batch": "responses:write",
    "PATCH /v1/responses/{response_id}": "responses:write",
    "POST /v1/responses/{response_id}/reply": "responses:write",
    "GET /v1/responses/{response_id}/reply": "responses:read",
    "GET /v1/events": "events:read",
    "GET /v1/events/{event_id}": "events:read",
    "POST /v1/webhook-endpoints": "webhooks:manage",
    "GET /v1/webhook-endpoints": "webhooks:manage",
    "GET /v1/webhook-endpoints/{endpoint_id}": "webhooks:manage",
    "PATCH /v1/webhook-endpoints/{endpoint_id}": "webhooks:manage",
    "DELETE /v1/webhook-endpoints/{endpoint_id}": "webhooks:manage",
    "POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret": "webhooks:manage",
    "POST /v1/webhook-endpoints/{endpoint_id}/test": "webhooks:manage",
    "GET /v1/webhook-endpoints/{endpoint_id}/deliveries": "webhooks:manage",
    "POST /v1/webhook-deliveries/{delivery_id}/retry": "webhooks:manage",
    "GET /v1/metrics/summary": "metrics:read",
    "GET /v1/metrics/{kind}": "metrics:read",
    "GET /v1/metrics/{kind}/trend": "metrics:read",
    "GET /v1/metrics/{kind}/breakdown": "metrics:read",
    "GET /v1/metrics/{kind}/compare": "metrics:read",
    "GET /v1/tickets": "tickets:read",
    "POST /v1/tickets": "tickets:write",
    "GET /v1/tickets/stats": "tickets:read",
    "GET /v1/tickets/{ticket_id}": "tickets:read",
    "PATCH /v1/tickets/{ticket_id}": "tickets:write",
    "POST /v1/tickets/{ticket_id}/notes": "tickets:write",
    "POST /v1/tickets/{ticket_id}/replies": "tickets:write",
    "POST /v1/tickets/{ticket_id}/follow-up": "tickets:write",
    "GET /v1/tickets/{ticket_id}/timeline": "tickets:read",
    "GET /v1/ticket-rules": "tickets:read",
    "POST /v1/ticket-rules": "tickets:write",
    "GET /v1/ticket-rules/{rule_id}": "tickets:read",
    "PATCH /v1/ticket-rules/{rule_id}": "tickets:write",
    "DELETE /v1/ticket-rules/{rule_id}": "tickets:write",
    "GET /v1/sla-policies": "tickets:read",
    "POST /v1/sla-policies": "tickets:write",
    "GET /v1/sla-policies/{key}": "tickets:read",
    "PATCH /v1/sla-policies/{key}": "tickets:write",
    "DELETE /v1/sla-policies/{key}": "tickets:write",
    "POST /v1/surveys": "invitations:write",
    "GET /v1/surveys": "invitations:read",
    "GET /v1/surveys/{key}": "invitations:read",
    "PATCH /v1/surveys/{key}": "invitations:write",
    "GET /v1/contact-rules": "invitations:read",
    "PATCH /v1/contact-rules": "invitations:write",
    "POST /v1/invitations": "invitations:write",
    "POST /v1/invitations/batch": "invitations:write",
    "GET /v1/invitations": "invitations:read",
    "GET /v1/invitations/stats": "invitations:read",
    "GET /v1/invitations/{invitation_id}": "invitations:read",
    "DELETE /v1/invitations/{invitation_id}": "invitations:write",
    "POST /v1/invitations/{invitation_id}/delivery": "invitations:write",
    "GET /v1/customers/{external_ref}/eligibility": "invitations:read",
    "POST /v1/customers/{external_ref}/unsubscribe": "customers:write",
    "DELETE /v1/customers/{external_ref}/unsubscribe": "customers:write",
    "GET /v1/signing-keys": "keys:manage",
    "POST /v1/signing-keys/rotate": "keys:manage",
    "GET /v1/integrity/flags": "integrity:read",
    "POST /v1/integrity/flags": "integrity:write",
    "GET /v1/integrity/flags/{flag_id}": "integrity:read",
    "POST /v1/integrity/flags/{flag_id}/confirm": "integrity:write",
    "POST /v1/integrity/flags/{flag_id}/dismiss": "integrity:write",
    "GET /v1/integrity/settings": "integrity:read",
    "PATCH /v1/integrity/settings": "integrity:write",
    "GET /v1/integrity/report": "integrity:read",
    "GET /v1/integrity/screen-failures": "integrity:read",
    "POST /v1/integrity/screen-failures/retry": "integrity:write",
    "GET /v1/themes": "insights:read",
    "GET /v1/themes/{key}": "insights:read",
    "PUT /v1/themes/{key}": "insights:write",
    "DELETE /v1/themes/{key}": "insights:write",
    "GET /v1/insights/themes": "insights:read",
    "GET /v1/insights/theme-candidates": "insights:read",
    "GET /v1/insights/themes/rising": "insights:read",
    "GET /v1/insights/themes/{key}/trend": "insights:read",
    "POST /v1/insights/theme-candidates/accept": "insights:write",
    "GET /v1/insights/drivers": "insights:read",
    "GET /v1/insights/segments": "insights:read",
    "GET /v1/insights/priorities": "insights:read",
    "POST /v1/actions": "actions:write",
    "GET /v1/actions": "actions:read",
    "GET /v1/actions/{action_id}": "actions:read",
    "PATCH /v1/actions/{action_id}": "actions:write",
    "GET /v1/actions/{action_id}/impact": "actions:read",
    "GET /v1/actions/{action_id}/customers": "actions:read",
}
ADMIN_ROUTES = {"GET /v1/tenants", "POST /v1/tenants", "PUT /v1/tenants/{tenant_id}/rate-limits"}
PUBLISHABLE_ALLOWED = {"POST /v1/responses"}


def _url(route: str) -> tuple[str, str]:
    method, path = route.split(" ", 1)
    path = path.replace("{external_ref}", "crm-1").replace("{key_id}", SOME_ID)
    path = path.replace("{key}", "standard")
    for name in (
        "{event_id}",
        "{endpoint_id}",
        "{delivery_id}",
        "{ticket_id}",
        "{rule_id}",
        "{invitation_id}",
        "{flag_id}",
        "{action_id}",
    ):
        path = path.replace(name, SOME_ID)
    return method, path.replace("{response_id}", SOME_ID).replace("{kind}", "nps")


async def _call(tenant: TenantHandle, route: str, key: str | None) -> httpx.Response:
    method, path = _url(route)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await tenant.client.request(method, path, json=BODIES.get(route), headers=headers)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_without_a_key_is_401(tenant: TenantHandle, route: str) -> None:
    assert_problem(await _call(tenant, route, None), 401, "unauthenticated")


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_revoked_key_is_401(tenant: TenantHandle, route: str) -> None:
    key = await tenant.key(ROUTES[route] or "metrics:read")
    keys = (await tenant.get("/v1/api-keys")).json()["items"]
    key_id = next(k["id"] for k in keys if k["prefix"] == key[:12])
    await tenant.delete(f"/v1/api-keys/{key_id}")
    assert_problem(await _call(tenant, route, key), 401, "unauthenticated")


@pytest.mark.parametrize("route", sorted(set(ROUTES) - PUBLISHABLE_ALLOWED))
async def test_a_publishable_key_is_403(tenant: TenantHandle, route: str) -> None:
    key = await tenant.key(publishable=True)
    assert_problem(await _call(tenant, route, key), 403, "publishable_key_forbidden")


@pytest.mark.parametrize("route", sorted(r for r, s in ROUTES.items() if s))
async def test_a_key_without_the_scope_is_403(tenant: TenantHandle, route: str) -> None:
    other_scope = "events:read" if ROUTES[route] == "metrics:read" else "metrics:read"
    key = await tenant.key(other_scope)
    assert_problem(await _call(tenant, route, key), 403, "missing_scope")


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_the_scope_alone_is_enough(tenant: TenantHandle, route: str) -> None:
    scope = ROUTES[route]
    key = await tenant.key(scope or "metrics:read")
    response = await _call(tenant, route, key)
    assert response.status_code not in (401, 403), response.text


def test_every_route_is_in_the_matrix(app: FastAPI) -> None:
    routes = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    assert routes == set(ROUTES) | ADMIN_ROUTES
