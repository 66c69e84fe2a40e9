"""Delighted's transport conventions through the app: Basic with and without the colon,
`.json` paths, a `{}` body on GET, its error bodies, another tenant's key, hostile values."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from feedback_api.compat.delighted.routing import PREFIX, error_bytes
from feedback_api.config import Settings
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.middleware import RequestContextMiddleware
from tests.fixtures.auth import TenantHandle

BASE = "/compat/delighted/v1"


def basic(key: str, colon: bool) -> dict[str, str]:
    raw = f"{key}:" if colon else key
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


async def call(
    tenant: TenantHandle, method: str, path: str, *, key: str | None = None, **kw: Any
) -> Any:
    headers = basic(key or tenant.admin_key, colon=True)
    return await tenant.client.request(method, BASE + path, headers=headers, **kw)


@pytest.mark.parametrize("colon", [False, True])
@pytest.mark.parametrize("suffix", ["", ".json"])
async def test_basic_with_or_without_the_colon_and_json_paths(
    tenant: TenantHandle, colon: bool, suffix: str
) -> None:
    made = await tenant.client.post(
        f"{BASE}/people{suffix}",
        json={"email": "a@example.com", "send": False},
        headers=basic(tenant.admin_key, colon),
    )
    assert made.status_code == 200, made.text
    assert isinstance(made.json()["id"], str)
    listed = await tenant.client.request(
        "GET", f"{BASE}/people{suffix}", content=b"{}", headers=basic(tenant.admin_key, colon)
    )
    assert listed.status_code == 200, listed.text
    assert [p["email"] for p in listed.json()] == ["a@example.com"]
    assert "link" not in listed.headers  # one page


async def test_errors_have_delighteds_shape(tenant: TenantHandle) -> None:
    bad_key = await call(tenant, "GET", "/people", key="fbk_sk_wrong")
    assert (bad_key.status_code, bad_key.json()) == (
        401,
        {"status": 401, "message": "Unauthorized"},
    )
    bearer = await tenant.client.get(f"{BASE}/people", headers={"Authorization": "Bearer x"})
    assert bearer.status_code == 401
    refused = await call(tenant, "POST", "/people", json={"email": "not-an-address"})
    assert refused.status_code == 422
    body = refused.json()
    assert (body["status"], body["message"]) == (422, "Unprocessable Entity")
    assert list(body["errors"]) == ["email"]
    missing = await call(tenant, "GET", "/survey_responses/nope")
    assert (missing.status_code, missing.json()["message"]) == (404, "Not Found")


async def test_another_tenants_key_sees_nothing(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    person = (
        await call(tenant, "POST", "/people", json={"email": "b@example.com", "send": False})
    ).json()
    answer = await call(
        tenant, "POST", "/survey_responses", json={"person": person["id"], "score": 3}
    )
    assert answer.status_code == 201, answer.text
    theirs = other_tenant.admin_key
    assert (
        await call(other_tenant, "GET", f"/survey_responses/{answer.json()['id']}", key=theirs)
    ).status_code == 404
    assert (await call(other_tenant, "GET", "/people", key=theirs)).json() == []
    assert (await call(other_tenant, "GET", "/survey_responses", key=theirs)).json() == []
    as_other = await call(
        other_tenant,
        "POST",
        "/survey_responses",
        key=theirs,
        json={"person": person["id"], "score": 3},
    )
    assert as_other.status_code == 422  # no such person for them
    gone = await call(other_tenant, "DELETE", f"/people/{person['id']}", key=theirs)
    assert gone.status_code == 404
    assert (await call(tenant, "GET", "/metrics")).json()["response_count"] == 1
    assert (await call(other_tenant, "GET", "/metrics", key=theirs)).json()["response_count"] == 0


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("GET", "/people", {"params": {"per_page": "NaN"}}),
        ("GET", "/people", {"params": {"since": "1e30"}}),
        ("GET", "/people", {"params": {"page_info": "\x00"}}),
        ("GET", "/people", {"params": {"email": "a\x00b"}}),
        ("GET", "/survey_responses", {"params": {"page": "99999999999999999999"}}),
        ("GET", "/survey_responses", {"params": {"order": "sideways"}}),
        ("GET", "/metrics", {"params": {"until": "-1"}}),
        ("POST", "/people", {"json": {"email": "a\x00@example.com"}}),
        ("POST", "/people", {"json": {"phone_number": "+1" + "9" * 40}}),
        ("POST", "/people", {"json": {"email": "c@example.com", "delay": 1e300}}),
        ("POST", "/people", {"json": {"email": "c@example.com", "properties": {"k": "\x00"}}}),
        ("POST", "/survey_responses", {"json": {"person": "x", "score": float("nan")}}),
        (
            "POST",
            "/survey_responses",
            {"json": {"person": "\x00", "score": 1, "created_at": 10**20}},
        ),
        ("DELETE", "/people/email:%00", {}),
        ("GET", "/autopilot/email/memberships", {"params": {"person_id": "\x00"}}),
        ("GET", "/autopilot/sms/memberships", {"params": {"per_page": "1e9"}}),
        ("POST", "/autopilot/email/memberships", {"json": {"person_email": 1e308}}),
        (
            "POST",
            "/autopilot/email/memberships",
            {"json": {"person_email": "e@example.com", "properties": {"k": float("nan")}}},
        ),
        ("DELETE", "/autopilot/email/memberships", {"params": {"person_email": "x\x00"}}),
        ("DELETE", "/autopilot/sms/memberships", {"json": {"person_phone_number": "+" * 30}}),
        ("GET", "/survey_responses/%00", {}),
    ],
)
async def test_hostile_values_get_a_4xx(
    tenant: TenantHandle, method: str, path: str, kw: dict[str, Any]
) -> None:
    if "json" in kw:  # as Python's json writes it, NaN and all
        kw = {"content": json.dumps(kw["json"]), "headers": {"Content-Type": "application/json"}}
    headers = {**basic(tenant.admin_key, colon=False), **kw.pop("headers", {})}
    answer = await tenant.client.request(method, BASE + path, headers=headers, **kw)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["status"] == answer.status_code


async def test_a_body_that_is_not_json_is_a_400_in_delighteds_shape(tenant: TenantHandle) -> None:
    answer = await tenant.client.post(
        f"{BASE}/survey_responses",
        content=b"}m\xff\\",
        headers={**basic(tenant.admin_key, colon=True), "Content-Type": "application/json"},
    )
    assert (answer.status_code, answer.json()) == (400, {"status": 400, "message": "Bad Request"})


async def test_unsubscribes_and_bounces_list_the_people_as_delighted_did(
    tenant: TenantHandle, other_tenant: TenantHandle, settings: Settings
) -> None:
    ann = (await call(tenant, "POST", "/people", json={"email": "ann@example.com"})).json()
    # due when the person's survey is scheduled: after the default quiet hours at night
    due = datetime.fromtimestamp(ann["survey_scheduled_at"], UTC)
    await invitation_service.process_due(tenant.session, due, settings=settings)
    (sent,) = (await tenant.get("/v1/invitations")).json()["items"]
    reported = await tenant.post(
        f"/v1/invitations/{sent['id']}/delivery", json={"status": "bounced"}
    )
    assert reported.status_code == 200, reported.text
    bob = (
        await call(tenant, "POST", "/people", json={"email": "bob@example.com", "send": False})
    ).json()
    await call(tenant, "POST", "/unsubscribes", json={"person_email": "bob@example.com"})
    # opted out through our own API, of e-mail: listed; of SMS alone: not
    await call(tenant, "POST", "/people", json={"email": "cy@example.com", "send": False})
    await tenant.post("/v1/customers/cy@example.com/unsubscribe", json={"channel": "email"})
    await call(tenant, "POST", "/people", json={"email": "di@example.com", "send": False})
    await tenant.post("/v1/customers/di@example.com/unsubscribe", json={"channel": "sms"})
    # an address with no person is opted out, but only its keyed hash is kept
    await call(tenant, "POST", "/unsubscribes", json={"person_email": "ghost@example.com"})

    listed = (await call(tenant, "GET", "/unsubscribes")).json()
    assert [u["email"] for u in listed] == ["bob@example.com", "cy@example.com"]
    assert listed[0]["person_id"] == bob["id"]
    assert isinstance(listed[0]["unsubscribed_at"], int)
    assert [
        u["email"]
        for u in (await call(tenant, "GET", "/unsubscribes.json?per_page=1&page=2")).json()
    ] == ["cy@example.com"]
    future = listed[0]["unsubscribed_at"] + 3600
    assert (await call(tenant, "GET", f"/unsubscribes?since={future}")).json() == []
    bounces = (await call(tenant, "GET", "/bounces")).json()
    assert [(b["person_id"], b["email"]) for b in bounces] == [(ann["id"], "ann@example.com")]
    assert isinstance(bounces[0]["bounced_at"], int)
    theirs = other_tenant.admin_key
    assert (await call(other_tenant, "GET", "/unsubscribes", key=theirs)).json() == []
    assert (await call(other_tenant, "GET", "/bounces", key=theirs)).json() == []


async def test_metrics_by_survey_group_are_our_channels(tenant: TenantHandle) -> None:
    for channel, score in (("email", 10), ("email", 0), ("sms", 9), ("app", 3), ("qr", 10)):
        made = await tenant.post(
            "/v1/responses", json={"kind": "nps", "score": score, "channel": channel}
        )
        assert made.status_code == 201, made.text

    async def count(query: str) -> Any:
        answer = await call(tenant, "GET", f"/metrics{query}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    email = await count("?groups[]=email")
    assert (email["response_count"], email["nps"]) == (2, 0)
    assert (await count("?groups[]=email&groups[]=sms"))["response_count"] == 3
    assert (await count("?groups=web"))["detractor_count"] == 1  # one value, no brackets
    assert (await count("?groups[]=link"))["promoter_count"] == 1
    assert (await count(""))["response_count"] == 5
    refused = await call(tenant, "GET", "/metrics?groups[]=carrier-pigeon")
    assert (refused.status_code, refused.json()["status"]) == (422, 422)


async def test_a_busy_database_is_a_503_in_delighteds_shape_with_retry_after() -> None:
    """What the middleware answers for every route (the database busy, a body too large) has
    Delighted's shape on its paths, and stays problem+json on ours."""

    class StatementTimeout(Exception):
        sqlstate = "57014"  # as asyncpg's QueryCanceledError carries it

    async def busy(scope: Any, receive: Any, send: Any) -> None:
        raise StatementTimeout

    shaped = RequestContextMiddleware(
        busy, max_body_bytes=1024, error_shapes=[(PREFIX, error_bytes)]
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=shaped), base_url="http://test"
    ) as client:
        answer = await client.get(f"{BASE}/people.json")
        assert (answer.status_code, answer.json()) == (
            503,
            {"status": 503, "message": "Service Unavailable"},
        )
        assert int(answer.headers["Retry-After"]) >= 1
        too_large = await client.post(f"{BASE}/people", content=b"x" * 2000)
        assert too_large.json() == {"status": 413, "message": "Payload Too Large"}
        ours = await client.get("/v1/customers")
        assert ours.headers["content-type"] == "application/problem+json"
        assert ours.json()["code"] == "database_busy"
