"""Every Delighted-compatible route against the keys that may not use it, authenticated the
way Delighted's SDKs do (HTTP Basic, the key as user name), answered in Delighted's shape.
A new compat route must be added to ROUTES (the last test fails otherwise)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.compat.test_delighted_transport import BASE, basic
from tests.fixtures.auth import TenantHandle

ID = "01a23e9b-b8b5-74f3-8355-0c1b076f5993"
# route -> the scopes it needs, all of them
ROUTES: dict[str, tuple[str, ...]] = {
    "POST /people": ("customers:write", "invitations:write"),
    "GET /people": ("customers:read",),
    "DELETE /people/{email}/survey_requests/pending": ("customers:write", "invitations:write"),
    "DELETE /people/{identifier}": ("customers:write",),
    "POST /survey_responses": ("responses:write",),
    "GET /survey_responses": ("responses:read",),
    "GET /survey_responses/{response_id}": ("responses:read",),
    "PUT /survey_responses/{response_id}": ("responses:write",),
    "GET /metrics": ("metrics:read",),
    "POST /unsubscribes": ("customers:write", "invitations:write"),
    "GET /unsubscribes": ("customers:read",),
    "GET /bounces": ("customers:read",),
    "GET /autopilot/{platform}": ("invitations:read",),
    "GET /autopilot/{platform}/memberships": ("invitations:read",),
    "POST /autopilot/{platform}/memberships": ("customers:write", "invitations:write"),
    "DELETE /autopilot/{platform}/memberships": ("customers:write", "invitations:write"),
}
BODIES: dict[str, Any] = {
    "POST /people": {"email": "m@example.com", "send": False},
    "POST /survey_responses": {"person": ID, "score": 9},
    "PUT /survey_responses/{response_id}": {"tags": ["x"]},
    "POST /unsubscribes": {"person_email": "m@example.com"},
    "POST /autopilot/{platform}/memberships": {"person_email": "m@example.com"},
    "DELETE /autopilot/{platform}/memberships": {"person_email": "m@example.com"},
}


async def _call(tenant: TenantHandle, route: str, headers: dict[str, str]) -> httpx.Response:
    method, path = route.split(" ", 1)
    path = path.replace("{email}", "m@example.com").replace("{identifier}", "email:m@example.com")
    path = path.replace("{response_id}", ID).replace("{platform}", "email")
    return await tenant.client.request(
        method, f"{BASE}{path}.json", json=BODIES.get(route), headers=headers
    )


def _refused(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["status"] == status  # Delighted's shape, not problem+json
    assert answer.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_without_a_key_is_401(tenant: TenantHandle, route: str) -> None:
    _refused(await _call(tenant, route, {}), 401)
    _refused(await _call(tenant, route, {"Authorization": f"Bearer {tenant.admin_key}"}), 401)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_revoked_key_is_401(tenant: TenantHandle, route: str) -> None:
    key = await tenant.key(*ROUTES[route])
    keys = (await tenant.get("/v1/api-keys")).json()["items"]
    key_id = next(k["id"] for k in keys if k["prefix"] == key[:12])
    await tenant.delete(f"/v1/api-keys/{key_id}")
    _refused(await _call(tenant, route, basic(key, colon=True)), 401)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_publishable_key_is_403(tenant: TenantHandle, route: str) -> None:
    key = await tenant.key(publishable=True)
    _refused(await _call(tenant, route, basic(key, colon=False)), 403)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_key_without_one_of_the_scopes_is_403(tenant: TenantHandle, route: str) -> None:
    for missing in ROUTES[route]:
        others = [s for s in ROUTES[route] if s != missing] or ["events:read"]
        key = await tenant.key(*others)
        _refused(await _call(tenant, route, basic(key, colon=True)), 403)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_the_scopes_alone_are_enough(tenant: TenantHandle, route: str) -> None:
    key = await tenant.key(*ROUTES[route])
    answer = await _call(tenant, route, basic(key, colon=False))
    assert answer.status_code not in (401, 403), answer.text


def test_every_compat_route_is_in_the_matrix(app: FastAPI) -> None:
    routes = {
        f"{method.upper()} {path.removeprefix(BASE)}"
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(BASE)
        for method in operations
    }
    assert routes == set(ROUTES)
