"""CORS for web pages (src/feedback_api/cors.py, docs/integration.md "Web pages"): only
`POST /v1/responses` answers it, for origins a publishable key lists; secret-key routes never
do. Preflights look keys up in their own transaction, so their tests use committed data
(`live`); the real-browser side is tests/system/test_browser_cors.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import IdempotencyKey, Response
from tests.fixtures.auth import TenantHandle, assert_problem, bearer
from tests.fixtures.live import Live
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture

RATING = {"kind": "csat", "score": 5, "channel": "web"}
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
EXPOSE_HEADERS = "Retry-After, RateLimit, RateLimit-Policy, X-Request-Id, Idempotent-Replayed"
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-max-age",
)


def unique_origin() -> str:
    """An origin no other test (nor any other tenant in this database) lists."""
    return f"https://t{uuid.uuid4().hex[:12]}.example"


def preflight_headers(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
    }


def assert_no_cors(response: httpx.Response) -> None:
    present = [h for h in CORS_HEADERS if h in response.headers]
    assert present == [], (response.status_code, present)


def assert_cors(response: httpx.Response, origin: str) -> None:
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-expose-headers"] == EXPOSE_HEADERS
    assert "Origin" in response.headers.get_list("vary")
    assert "access-control-allow-credentials" not in response.headers


async def web_key(
    client: httpx.AsyncClient, admin: dict[str, str], *origins: str
) -> dict[str, Any]:
    created = await client.post(
        "/v1/api-keys",
        headers=admin,
        json={"name": "web", "publishable": True, "allowed_origins": list(origins)},
    )
    assert created.status_code == 201, created.text
    key: dict[str, Any] = created.json()
    return key


async def submit(
    client: httpx.AsyncClient, key: str, origin: str | bytes | None, **kwargs: Any
) -> httpx.Response:
    headers: dict[str, Any] = {**bearer(key), **kwargs.pop("headers", {})}
    if origin is not None:
        headers["Origin"] = origin
    return await client.post("/v1/responses", json=kwargs.pop("json", RATING), headers=headers)


async def stored(session: AsyncSession, tenant: TenantHandle) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Response).where(Response.tenant_id == tenant.id)
    )
    return int(count or 0)


class TestPreflight:
    async def test_an_origin_a_key_lists_is_answered(self, live: Live) -> None:
        origin = unique_origin()
        await web_key(live.client, live.headers, origin)
        response = await live.client.options("/v1/responses", headers=preflight_headers(origin))
        assert response.status_code == 204, response.text
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-methods"] == "POST"
        assert response.headers["access-control-allow-headers"] == ALLOW_HEADERS
        assert int(response.headers["access-control-max-age"]) > 0
        assert response.headers.get_list("vary") == ["Origin"]
        assert "access-control-allow-credentials" not in response.headers
        assert response.content == b""

    async def test_an_origin_no_key_lists_is_refused(self, live: Live) -> None:
        await web_key(live.client, live.headers, unique_origin())
        response = await live.client.options(
            "/v1/responses", headers=preflight_headers(unique_origin())
        )
        assert_problem(response, 403, "origin_not_allowed")
        assert_no_cors(response)

    async def test_a_revoked_keys_origins_are_refused(self, live: Live) -> None:
        origin = unique_origin()
        key = await web_key(live.client, live.headers, origin)
        await live.client.delete(f"/v1/api-keys/{key['id']}", headers=live.headers)
        response = await live.client.options("/v1/responses", headers=preflight_headers(origin))
        assert_problem(response, 403, "origin_not_allowed")
        assert_no_cors(response)

    async def test_only_post_is_offered(self, live: Live) -> None:
        origin = unique_origin()
        await web_key(live.client, live.headers, origin)
        for method in ("GET", "PATCH", "DELETE", "post"):
            response = await live.client.options(
                "/v1/responses", headers=preflight_headers(origin, method)
            )
            assert_problem(response, 403, "origin_not_allowed")
            assert_no_cors(response)

    async def test_other_paths_never_answer(self, live: Live) -> None:
        """Secret-key routes: even an origin some key lists gets no CORS headers there."""
        origin = unique_origin()
        await web_key(live.client, live.headers, origin)
        for path in (
            "/v1/responses/batch",
            "/v1/responses/export",
            "/v1/responses/",
            "/v1/customers",
            "/v1/api-keys",
            "/v1/tenant",
            "/r/anything",
            "/healthz",
        ):
            for method in ("POST", "GET"):
                headers = preflight_headers(origin, method)
                response = await live.client.options(path, headers=headers)
                assert response.status_code < 500, (path, response.text)
                assert_no_cors(response)

    async def test_a_key_changed_by_patch_changes_the_answer(self, live: Live) -> None:
        first, second = unique_origin(), unique_origin()
        key = await web_key(live.client, live.headers, first)
        changed = await live.client.patch(
            f"/v1/api-keys/{key['id']}", headers=live.headers, json={"allowed_origins": [second]}
        )
        assert changed.status_code == 200, changed.text
        refused = await live.client.options("/v1/responses", headers=preflight_headers(first))
        assert refused.status_code == 403
        allowed = await live.client.options("/v1/responses", headers=preflight_headers(second))
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == second

    async def test_another_tenants_origin_passes_the_preflight_not_the_request(
        self, live: Live, other_live: Live
    ) -> None:
        """A preflight carries no key, so it cannot tell tenants apart; the request itself
        is checked against its own key, and this tenant's key does not list that origin."""
        theirs = unique_origin()
        await web_key(other_live.client, other_live.headers, theirs)
        mine = await web_key(live.client, live.headers, unique_origin())
        preflight = await live.client.options("/v1/responses", headers=preflight_headers(theirs))
        assert preflight.status_code == 204
        response = await submit(live.client, mine["secret"], theirs)
        assert_problem(response, 403, "origin_not_allowed")
        assert_no_cors(response)
        listed = await live.client.get("/v1/responses", headers=live.headers)
        assert listed.json()["items"] == []

    @pytest.mark.parametrize(
        "origin",
        [
            "null",
            "*",
            "https://" + "a" * 10_000 + ".example",
            "HTTPS://SHOP.EXAMPLE.COM",
            "https://shop.example.com/rate",
            "https://shop.example.com/",
            "https://shop.example.com, https://evil.example",
            "https://shöp.example".encode(),
            "https://\xff\xfe.example".encode("latin-1"),
            "javascript:alert(1)",
            "",
        ],
        ids=repr,
    )
    async def test_hostile_origins_are_refused_never_500(
        self, live: Live, origin: str | bytes
    ) -> None:
        await web_key(live.client, live.headers, "https://shop.example.com")
        headers = [
            (k.encode(), v.encode()) for k, v in preflight_headers("x").items() if k != "Origin"
        ]
        headers.append((b"origin", origin if isinstance(origin, bytes) else origin.encode()))
        response = await live.client.options("/v1/responses", headers=headers)
        assert_problem(response, 403, "origin_not_allowed")
        assert_no_cors(response)


class TestRequest:
    async def test_an_allowed_origin_gets_the_answer_with_cors_headers(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        origin = "https://shop.example.com"
        key = await web_key(tenant.client, tenant.headers, origin)
        response = await submit(tenant.client, key["secret"], origin)
        assert response.status_code == 201, response.text
        assert_cors(response, origin)
        assert "x-request-id" in response.headers
        assert await stored(session, tenant) == 1

    async def test_problems_carry_them_too(self, tenant: TenantHandle) -> None:
        """A page can read why its rating was refused (and a 429's Retry-After)."""
        origin = "http://127.0.0.1:5173"
        key = await web_key(tenant.client, tenant.headers, origin)
        bad = await submit(tenant.client, key["secret"], origin, json={**RATING, "score": 6})
        problem = assert_problem(bad, 422, "validation_error")
        assert problem["errors"][0]["code"] == "score_out_of_range"
        assert_cors(bad, origin)
        forbidden = await submit(
            tenant.client, key["secret"], origin, json={**RATING, "customer": "crm-1"}
        )
        assert forbidden.status_code in (403, 422), forbidden.text
        assert_cors(forbidden, origin)

    async def test_a_replay_exposes_idempotent_replayed(self, tenant: TenantHandle) -> None:
        origin = "https://shop.example.com"
        key = await web_key(tenant.client, tenant.headers, origin)
        headers = {"Idempotency-Key": "tap-1"}
        first = await submit(tenant.client, key["secret"], origin, headers=headers)
        again = await submit(tenant.client, key["secret"], origin, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
        assert_cors(again, origin)
        assert again.json()["id"] == first.json()["id"]

    async def test_an_origin_the_key_does_not_list_is_refused_and_nothing_stored(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        key = await web_key(tenant.client, tenant.headers, "https://shop.example.com")
        bare = await web_key(tenant.client, tenant.headers)  # lists no origin at all
        for secret, origin in (
            (key["secret"], "https://evil.example"),
            (key["secret"], "http://shop.example.com"),  # another scheme is another origin
            (key["secret"], "https://shop.example.com:8443"),
            (bare["secret"], "https://shop.example.com"),
        ):
            response = await submit(
                tenant.client, secret, origin, headers={"Idempotency-Key": f"tap-{origin}"}
            )
            assert_problem(response, 403, "origin_not_allowed")
            assert_no_cors(response)
        # The check comes before the body is even read: a bad body is refused the same way.
        response = await submit(tenant.client, key["secret"], "https://evil.example", json={})
        assert_problem(response, 403, "origin_not_allowed")
        assert await stored(session, tenant) == 0
        idempotency = await session.scalar(
            select(func.count())
            .select_from(IdempotencyKey)
            .where(IdempotencyKey.tenant_id == tenant.id)
        )
        assert idempotency == 0

    async def test_without_origin_apps_are_not_affected(self, tenant: TenantHandle) -> None:
        """Apps and servers send no Origin: a key with no origins still works for them."""
        key = await web_key(tenant.client, tenant.headers)
        response = await submit(tenant.client, key["secret"], None)
        assert response.status_code == 201, response.text
        assert_no_cors(response)

    async def test_a_patched_origin_list_holds_from_the_next_request(
        self, tenant: TenantHandle
    ) -> None:
        shop, blog = "https://shop.example.com", "https://blog.example.com"
        key = await web_key(tenant.client, tenant.headers, shop)
        assert (await submit(tenant.client, key["secret"], shop)).status_code == 201
        assert (await submit(tenant.client, key["secret"], blog)).status_code == 403

        changed = await tenant.patch(f"/v1/api-keys/{key['id']}", json={"allowed_origins": [blog]})
        assert changed.status_code == 200, changed.text
        assert_problem(await submit(tenant.client, key["secret"], shop), 403, "origin_not_allowed")
        allowed = await submit(tenant.client, key["secret"], blog)
        assert allowed.status_code == 201
        assert_cors(allowed, blog)

    async def test_secret_keys_never_get_cors_headers(self, tenant: TenantHandle) -> None:
        origin = "https://shop.example.com"
        await web_key(tenant.client, tenant.headers, origin)
        writer = await tenant.key("responses:write", "responses:read")
        response = await submit(tenant.client, writer, origin, json={**RATING, "channel": "crm"})
        assert response.status_code == 201, response.text
        assert_no_cors(response)
        for method, path in (
            ("GET", "/v1/responses"),
            ("GET", "/v1/api-keys"),
            ("POST", "/v1/responses/batch"),
            ("GET", "/v1/tenant"),
        ):
            answer = await tenant.request(
                method,
                path,
                headers={"Origin": origin},
                json={"items": [RATING]} if method == "POST" else None,
            )
            assert answer.status_code < 400, (path, answer.text)
            assert_no_cors(answer)

    async def test_another_tenants_key_listing_the_origin_does_not_help(
        self, tenant: TenantHandle, other_tenant: TenantHandle, session: AsyncSession
    ) -> None:
        origin = "https://shop.example.com"
        await web_key(other_tenant.client, other_tenant.headers, origin)
        mine = await web_key(tenant.client, tenant.headers, "https://mine.example.com")
        assert_problem(
            await submit(tenant.client, mine["secret"], origin), 403, "origin_not_allowed"
        )
        assert await stored(session, tenant) == 0

    @pytest.mark.parametrize(
        "origin",
        [
            "null",
            "https://" + "a" * 10_000 + ".example",
            "HTTPS://SHOP.EXAMPLE.COM",
            "https://shop.example.com/rate",
            "https://shop.example.com/",
            "https://shöp.example".encode(),
            "",
        ],
        ids=repr,
    )
    async def test_hostile_origins_are_refused_never_500(
        self, tenant: TenantHandle, origin: str | bytes
    ) -> None:
        key = await web_key(tenant.client, tenant.headers, "https://shop.example.com")
        response = await submit(tenant.client, key["secret"], origin)
        assert_problem(response, 403, "origin_not_allowed")
        assert_no_cors(response)
        # A secret key ignores Origin altogether.
        writer = await tenant.key("responses:write")
        answer = await submit(tenant.client, writer, origin, json={**RATING, "channel": "crm"})
        assert answer.status_code == 201, answer.text
        assert_no_cors(answer)


async def test_through_a_served_process(processes: Processes) -> None:
    """The same contract through uvicorn and a real socket, as a browser meets it."""
    admin = bearer(processes.tenant("Web shop"))
    base = f"http://127.0.0.1:{processes.serve()}"
    origin, other = unique_origin(), unique_origin()
    async with httpx.AsyncClient(base_url=base) as client:
        key = await web_key(client, admin, origin)

        preflight = await client.options("/v1/responses", headers=preflight_headers(origin))
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == origin
        assert preflight.headers["access-control-allow-headers"] == ALLOW_HEADERS
        refused = await client.options("/v1/responses", headers=preflight_headers(other))
        assert refused.status_code == 403
        assert_no_cors(refused)

        created = await submit(client, key["secret"], origin)
        assert created.status_code == 201, created.text
        assert_cors(created, origin)
        assert_problem(await submit(client, key["secret"], other), 403, "origin_not_allowed")

        patched = await client.patch(
            f"/v1/api-keys/{key['id']}", headers=admin, json={"allowed_origins": [other]}
        )
        assert patched.json()["allowed_origins"] == [other]
        assert (await submit(client, key["secret"], other)).status_code == 201
        assert (await submit(client, key["secret"], origin)).status_code == 403
        again = await client.options("/v1/responses", headers=preflight_headers(other))
        assert again.headers["access-control-allow-origin"] == other

        # A long Origin through the real HTTP parser: refused or answered, never a 5xx.
        long_origin = "https://" + "a" * 8_000 + ".example"
        for method in ("OPTIONS", "POST"):
            answer = await client.request(
                method,
                "/v1/responses",
                headers={**preflight_headers(long_origin), **bearer(key["secret"])},
                json=RATING if method == "POST" else None,
            )
            assert answer.status_code < 500, answer.text
            assert_no_cors(answer)

        listed = await client.get("/v1/responses", headers=admin)
        assert len(listed.json()["items"]) == 2
        secret_read = await client.get("/v1/responses", headers={**admin, "Origin": other})
        assert secret_read.status_code == 200
        assert_no_cors(secret_read)


async def test_a_page_can_read_a_429_and_its_retry_after(
    tenant: TenantHandle, client: httpx.AsyncClient
) -> None:
    """A page over the publishable_client limit must see why (and when to retry), so the 429
    carries the CORS headers and exposes Retry-After and the RateLimit fields."""
    origin = "https://shop.example"
    created = await tenant.post(
        "/v1/api-keys", json={"name": "web", "publishable": True, "allowed_origins": [origin]}
    )
    key = created.json()["secret"]
    headers = {"Authorization": f"Bearer {key}", "Origin": origin}
    body = {"kind": "nps", "score": 9, "channel": "web"}
    # The limiter is a sliding-window counter: it weighs the previous window's count by the part
    # of it still inside the window, so when the burst straddles a window boundary one or two
    # requests more may pass before the 429. The first 30 always pass; the refusal must follow.
    statuses: list[int] = []
    while len(statuses) < 35 and (not statuses or statuses[-1] != 429):
        answer = await client.post("/v1/responses", json=body, headers=headers)
        statuses.append(answer.status_code)
    assert statuses[:30] == [201] * 30
    assert statuses[-1] == 429, statuses
    assert set(statuses[30:-1]) <= {201}, statuses
    refused = answer
    assert refused.headers["access-control-allow-origin"] == origin
    exposed = refused.headers["access-control-expose-headers"]
    for name in ("Retry-After", "RateLimit", "RateLimit-Policy"):
        assert name in exposed
    assert int(refused.headers["retry-after"]) >= 1
