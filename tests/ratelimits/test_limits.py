"""Rate limits as clients meet them: per publishable key and address, per secret key, per
tenant, on one-tap links, on failed authentication; the operator's overrides; counters
shared by two API processes through Redis; and what happens when Redis is gone."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from feedback_api.config import Settings
from feedback_api.ratelimits.limiter import CHECK_DEADLINE_SECONDS
from feedback_api.ratelimits.policies import DEFAULTS, Limit, Policy
from tests.fixtures.app import ADMIN_TOKEN, build_app
from tests.fixtures.auth import TenantHandle, assert_problem, bearer
from tests.fixtures.processes import Processes
from tests.fixtures.processes import own_processes as own_processes  # the fixture

NPS = {"kind": "nps", "score": 9, "channel": "app"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TOKEN = "A" * 43  # well-formed, unknown: a link page answers 404 until the limit is spent


def _parse_item(field: str) -> dict[str, str]:
    name, *params = field.split(";")
    return {"name": name.strip().strip('"'), **dict(p.split("=", 1) for p in params)}


async def in_one_window(window_seconds: int = 60, need: float = 20) -> None:
    """Wait, when needed, so that the burst that follows lies inside one window. The limiter
    is a sliding-window counter whose windows are aligned to the clock: across a boundary it
    weighs the previous window's count down, so a request or two more may pass and the exact
    counts these tests assert would not hold."""
    left = window_seconds - time.time() % window_seconds
    if left < need:
        await asyncio.sleep(left + 0.05)


def assert_limited(response: httpx.Response, policy: str) -> int:
    """A 429 as the contract states it: problem+json, an integer Retry-After, and the
    RateLimit fields naming the exhausted policy. Returns Retry-After."""
    assert_problem(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 86_400
    limit = _parse_item(response.headers["RateLimit"])
    assert limit == {"name": policy, "r": "0", "t": str(retry_after)}
    assert f'"{policy}";q=' in response.headers["RateLimit-Policy"]
    return retry_after


@asynccontextmanager
async def client_at(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling from `ip` (what uvicorn puts in the scope, proxy headers applied)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def make_app(
    settings: Settings, engine: AsyncEngine, session: AsyncSession
) -> Callable[..., FastAPI]:
    def make(**changes: object) -> FastAPI:
        return build_app(settings.model_copy(update=changes), engine, session)

    return make


async def test_publishable_key_from_one_address_is_held_to_the_default(
    tenant: TenantHandle, app: FastAPI
) -> None:
    await in_one_window()
    key = await tenant.key(publishable=True)
    quota = DEFAULTS[Policy.PUBLISHABLE_CLIENT].quota
    async with client_at(app, "203.0.113.7") as phone, client_at(app, "198.51.100.9") as other:
        for i in range(quota):
            response = await phone.post("/v1/responses", json=NPS, headers=bearer(key))
            assert response.status_code == 201, response.text
            item = _parse_item(response.headers["RateLimit"])
            assert item["name"] == "publishable_client"
            assert int(item["r"]) == quota - i - 1
        refused = await phone.post("/v1/responses", json=NPS, headers=bearer(key))
        assert_limited(refused, "publishable_client")
        policy = refused.headers["RateLimit-Policy"]
        assert f'"publishable_client";q={quota};w=60' in policy
        assert '"publishable_key";q=' in policy
        assert '"tenant"' not in policy  # an app's key does not draw on the servers' budget
        # Another phone with the same app key is another client.
        assert (await other.post("/v1/responses", json=NPS, headers=bearer(key))).status_code == 201

    # Refused requests stored nothing: exactly `quota` + 1 responses exist.
    listed = await tenant.get("/v1/responses", params={"limit": 100})
    assert len(listed.json()["items"]) == quota + 1


async def test_secret_key_over_its_limit_does_not_slow_another_tenant(
    tenant: TenantHandle, other_tenant: TenantHandle, make_app: Callable[..., FastAPI]
) -> None:
    app = make_app(rate_limits={Policy.SECRET_KEY: Limit(quota=3, window_seconds=60)})
    async with client_at(app, "192.0.2.1") as client:
        for _ in range(3):
            ok = await client.post("/v1/responses", json=NPS, headers=bearer(tenant.admin_key))
            assert ok.status_code == 201
            assert _parse_item(ok.headers["RateLimit"])["name"] == "secret_key"
        refused = await client.post("/v1/responses", json=NPS, headers=bearer(tenant.admin_key))
        assert_limited(refused, "secret_key")
        # Reads count too, and are refused the same way.
        assert_limited(
            await client.get("/v1/responses", headers=bearer(tenant.admin_key)), "secret_key"
        )
        # The other tenant, same address, is not touched.
        for _ in range(3):
            other = await client.post(
                "/v1/responses", json=NPS, headers=bearer(other_tenant.admin_key)
            )
            assert other.status_code == 201
        # Nor is the tenant's second key: the limit is per key.
        second = await tenant.key("responses:write")
        assert (
            await client.post("/v1/responses", json=NPS, headers=bearer(second))
        ).status_code == 201


async def test_tenant_limit_spans_its_keys(
    tenant: TenantHandle, make_app: Callable[..., FastAPI]
) -> None:
    app = make_app(rate_limits={Policy.TENANT: Limit(quota=4, window_seconds=60)})
    keys = [tenant.admin_key, await tenant.key("responses:write")]
    async with client_at(app, "192.0.2.2") as client:
        for i in range(4):
            ok = await client.post("/v1/responses", json=NPS, headers=bearer(keys[i % 2]))
            assert ok.status_code == 201
        assert_limited(
            await client.post("/v1/responses", json=NPS, headers=bearer(keys[0])), "tenant"
        )
        assert_limited(
            await client.post("/v1/responses", json=NPS, headers=bearer(keys[1])), "tenant"
        )


async def test_operator_override_per_tenant(
    tenant: TenantHandle, other_tenant: TenantHandle, client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A shop's kiosk posts every rating from one address: the operator raises its limit."""
    await in_one_window()
    url = f"/v1/tenants/{tenant.id}/rate-limits"
    body = {"publishable_client": {"quota": 40, "window_seconds": 60}}
    set_ = await client.put(url, json=body, headers=ADMIN)
    assert set_.status_code == 200, set_.text
    assert set_.json()["rate_limits"] == body
    assert (await tenant.get("/v1/tenant")).json()["rate_limits"] == body

    kiosk, elsewhere = await tenant.key(publishable=True), await other_tenant.key(publishable=True)
    async with client_at(app, "203.0.113.50") as shop:
        for _ in range(40):
            assert (
                await shop.post("/v1/responses", json=NPS, headers=bearer(kiosk))
            ).status_code == 201
        refused = await shop.post("/v1/responses", json=NPS, headers=bearer(kiosk))
        assert_limited(refused, "publishable_client")
        assert '"publishable_client";q=40;w=60' in refused.headers["RateLimit-Policy"]
        # The other tenant keeps the default.
        default = DEFAULTS[Policy.PUBLISHABLE_CLIENT].quota
        for _ in range(default):
            assert (
                await shop.post("/v1/responses", json=NPS, headers=bearer(elsewhere))
            ).status_code == 201
        assert_limited(
            await shop.post("/v1/responses", json=NPS, headers=bearer(elsewhere)),
            "publishable_client",
        )

    # Back to the default: an empty body.
    reset = await client.put(url, json={}, headers=ADMIN)
    assert reset.json()["rate_limits"] == {}


@pytest.mark.parametrize(
    "body",
    [
        {"publishable_client": {"quota": 0, "window_seconds": 60}},
        {"publishable_client": {"quota": 10, "window_seconds": 0}},
        {"publishable_client": {"quota": 10, "window_seconds": 86_401}},
        {"publishable_client": {"quota": 1.5, "window_seconds": 60}},
        {"publishable_client": {"quota": "10", "window_seconds": 60}},
        {"publishable_client": {"quota": 10}},
        {"link": {"quota": 10, "window_seconds": 60}},
        {"auth_failures": {"quota": 10, "window_seconds": 60}},
    ],
)
async def test_override_is_validated(
    tenant: TenantHandle, client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.put(f"/v1/tenants/{tenant.id}/rate-limits", json=body, headers=ADMIN)
    assert_problem(response, 422, "validation_error")


async def test_override_needs_the_platform_admin(
    tenant: TenantHandle, client: httpx.AsyncClient
) -> None:
    url = f"/v1/tenants/{tenant.id}/rate-limits"
    body = {"tenant": {"quota": 1_000_000, "window_seconds": 1}}
    # A tenant's own admin key cannot raise its own quota.
    assert_problem(await tenant.put(url, json=body), 401, "unauthenticated")
    missing = await client.put(f"/v1/tenants/{uuid.uuid4()}/rate-limits", json=body, headers=ADMIN)
    assert_problem(missing, 404, "not_found")


async def test_failed_authentication_is_limited_per_address(
    tenant: TenantHandle, other_tenant: TenantHandle, app: FastAPI, client: httpx.AsyncClient
) -> None:
    await in_one_window()
    quota = DEFAULTS[Policy.AUTH_FAILURES].quota
    async with client_at(app, "198.51.100.66") as guesser, client_at(app, "192.0.2.80") as crm:
        for i in range(quota):
            key = bearer(f"fbk_sk_guess{i:040d}") if i % 2 else {}
            assert_problem(await guesser.get("/v1/responses", headers=key), 401, "unauthenticated")
        assert_limited(
            await guesser.get("/v1/responses", headers=bearer("fbk_sk_guess")), "auth_failures"
        )
        assert_limited(
            await guesser.get("/v1/tenants", headers=ADMIN | bearer("guess")), "auth_failures"
        )
        # A valid key from the same address (the same office NAT, another tenant) is not
        # locked out by someone else's failures.
        for handle in (tenant, other_tenant):
            answer = await guesser.get("/v1/responses", headers=bearer(handle.admin_key))
            assert answer.status_code == 200
        # Another address is not affected at all.
        assert_problem(
            await crm.get("/v1/responses", headers=bearer("fbk_sk_x")), 401, "unauthenticated"
        )


async def test_guesses_at_the_admin_and_metrics_tokens_count_as_failures(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(
        metrics_token=SecretStr("m" * 40),
        rate_limits={Policy.AUTH_FAILURES: Limit(quota=4, window_seconds=60)},
    )
    async with client_at(app, "198.51.100.67") as guesser:
        for i in range(2):
            answer = await guesser.get("/v1/tenants", headers=bearer(f"guess-{i}"))
            assert_problem(answer, 401, "unauthenticated")
            answer = await guesser.get("/metrics", headers=bearer(f"guess-{i}"))
            assert_problem(answer, 401, "unauthenticated")
        assert_limited(await guesser.get("/v1/tenants", headers=bearer("guess")), "auth_failures")
        assert_limited(await guesser.get("/metrics", headers=bearer("guess")), "auth_failures")
        # The right token still works from there.
        assert (await guesser.get("/v1/tenants", headers=ADMIN)).status_code == 200


async def test_ipv6_clients_are_counted_per_64(tenant: TenantHandle, app: FastAPI) -> None:
    """An IPv6 client can take a new address of its /64 for every request."""
    await in_one_window()
    key = await tenant.key(publishable=True)
    quota = DEFAULTS[Policy.PUBLISHABLE_CLIENT].quota
    for i in range(quota):
        async with client_at(app, f"2001:db8:0:1::{i + 1:x}") as rotating:
            answer = await rotating.post("/v1/responses", json=NPS, headers=bearer(key))
            assert answer.status_code == 201
    async with client_at(app, "2001:db8:0:1:ffff::1") as rotating:
        assert_limited(
            await rotating.post("/v1/responses", json=NPS, headers=bearer(key)),
            "publishable_client",
        )
    async with client_at(app, "2001:db8:0:2::1") as neighbour:
        assert (
            await neighbour.post("/v1/responses", json=NPS, headers=bearer(key))
        ).status_code == 201


async def test_an_app_key_cannot_spend_the_tenants_server_budget(
    tenant: TenantHandle, make_app: Callable[..., FastAPI]
) -> None:
    """A publishable key pulled out of an app, used from many addresses, does not draw on
    the budget the tenant's servers share (it has `publishable_key` of its own)."""
    app = make_app(rate_limits={Policy.TENANT: Limit(quota=3, window_seconds=60)})
    key = await tenant.key(publishable=True)
    for i in range(10):
        async with client_at(app, f"203.0.113.{i + 1}") as phone:
            answer = await phone.post("/v1/responses", json=NPS, headers=bearer(key))
            assert answer.status_code == 201
    async with client_at(app, "192.0.2.5") as backend:
        for _ in range(3):
            answer = await backend.post("/v1/responses", json=NPS, headers=bearer(tenant.admin_key))
            assert answer.status_code == 201
        assert_limited(
            await backend.post("/v1/responses", json=NPS, headers=bearer(tenant.admin_key)),
            "tenant",
        )


async def test_pages_from_unlisted_origins_count_as_failures(
    tenant: TenantHandle, make_app: Callable[..., FastAPI]
) -> None:
    app = make_app(rate_limits={Policy.AUTH_FAILURES: Limit(quota=3, window_seconds=60)})
    key = await tenant.key(publishable=True)
    hostile = {**bearer(key), "Origin": "https://evil.example"}
    async with client_at(app, "198.51.100.68") as page:
        for _ in range(3):
            answer = await page.post("/v1/responses", json=NPS, headers=hostile)
            assert_problem(answer, 403, "origin_not_allowed")
        assert_limited(await page.post("/v1/responses", json=NPS, headers=hostile), "auth_failures")
        # The app itself (no Origin) goes on.
        assert (await page.post("/v1/responses", json=NPS, headers=bearer(key))).status_code == 201


async def test_one_tap_link_is_limited_per_link_and_per_address(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(
        rate_limits={
            Policy.LINK: Limit(quota=3, window_seconds=60),
            Policy.LINK_CLIENT: Limit(quota=5, window_seconds=60),
        }
    )
    async with client_at(app, "203.0.113.90") as phone, client_at(app, "192.0.2.91") as other:
        for _ in range(3):
            assert (await phone.get(f"/r/{TOKEN}")).status_code == 404
        page = await phone.get(f"/r/{TOKEN}")
        # A person gets a page, in their language when known, with Retry-After.
        assert page.status_code == 429
        assert page.headers["content-type"].startswith("text/html")
        assert "Please wait a minute" in page.text
        assert int(page.headers["Retry-After"]) >= 1
        # A JSON client gets the problem.
        as_json = await other.get(f"/r/{TOKEN}", headers={"Accept": "application/json"})
        assert_limited(as_json, "link")
        # The address limit spans links: two more links from the phone, then refused.
        for n in range(2):
            assert (await phone.get(f"/r/{'B' * 42}{n}")).status_code == 404
        assert_limited(await phone.post(f"/r/{'C' * 43}", json={"score": 9}), "link_client")


async def test_rate_limits_can_be_turned_off(
    tenant: TenantHandle, make_app: Callable[..., FastAPI]
) -> None:
    app = make_app(
        rate_limits_enabled=False,
        rate_limits={Policy.SECRET_KEY: Limit(quota=1, window_seconds=60)},
    )
    async with client_at(app, "192.0.2.3") as client:
        for _ in range(3):
            response = await client.post(
                "/v1/responses", json=NPS, headers=bearer(tenant.admin_key)
            )
            assert response.status_code == 201
            assert "RateLimit" not in response.headers


async def test_redis_gone_lets_requests_through(
    tenant: TenantHandle, make_app: Callable[..., FastAPI]
) -> None:
    """Taking feedback matters more than counting it: with Redis unreachable the limiter
    counts in the process's memory instead, and quickly."""
    app = make_app(
        redis_url="redis://127.0.0.1:1/0",
        rate_limits={Policy.SECRET_KEY: Limit(quota=2, window_seconds=60)},
    )
    async with client_at(app, "192.0.2.4") as client:
        statuses = []
        for _ in range(3):
            answer = await client.post("/v1/responses", json=NPS, headers=bearer(tenant.admin_key))
            statuses.append(answer.status_code)
    assert statuses == [201, 201, 429]


async def test_a_stalled_redis_does_not_hold_requests(
    tenant: TenantHandle, make_app: Callable[..., FastAPI]
) -> None:
    """A Redis that accepts connections and never answers (hung, or a network black hole):
    one request waits out the check's deadline, then the limiter counts in memory for a
    while, so the next requests neither wait nor hold their database connection."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(-1)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = make_app(
        redis_url=f"redis://127.0.0.1:{port}/0",
        rate_limits={Policy.SECRET_KEY: Limit(quota=5, window_seconds=60)},
    )
    try:
        async with client_at(app, "192.0.2.6") as client:
            took, statuses = [], []
            for _ in range(6):
                started = time.perf_counter()
                answer = await client.post(
                    "/v1/responses", json=NPS, headers=bearer(tenant.admin_key)
                )
                took.append(time.perf_counter() - started)
                statuses.append(answer.status_code)
    finally:
        for writer in held:
            writer.close()
        server.close()
    assert statuses == [201] * 5 + [429]  # counted in memory meanwhile
    assert took[0] < CHECK_DEADLINE_SECONDS + 2  # the deadline, plus the request itself
    assert max(took[1:]) < took[0]  # the breaker is open: no waiting on Redis


def _redis_url() -> str:
    """The Redis the tests may use (CI starts one and requires it)."""
    url = os.environ.get("FEEDBACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    where = urlsplit(url)
    try:
        with socket.create_connection((where.hostname, where.port or 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            answered = s.recv(64).startswith(b"+PONG")
    except OSError:
        answered = False
    if not answered:
        if os.environ.get("FEEDBACK_REQUIRE_REDIS") == "1":
            raise AssertionError(f"Redis at {url} does not answer")
        pytest.skip(f"Redis at {url} does not answer (start redis-server to run this test)")
    return url


def test_two_api_processes_share_counters_in_redis(own_processes: Processes) -> None:
    processes = own_processes
    processes.env.update(
        FEEDBACK_REDIS_URL=_redis_url(),
        FEEDBACK_REDIS_KEY_PREFIX=f"test-{uuid.uuid4().hex}",
        FEEDBACK_RATE_LIMITS='{"publishable_client": {"quota": 6, "window_seconds": 60}}',
    )
    admin = processes.tenant("Shared counters")
    ports = [processes.serve(name="api-1"), processes.serve(name="api-2")]
    created = httpx.post(
        f"http://127.0.0.1:{ports[0]}/v1/api-keys",
        json={"name": "app", "publishable": True},
        headers=bearer(admin),
    )
    key = created.json()["secret"]
    statuses = []
    for i in range(10):
        response = httpx.post(
            f"http://127.0.0.1:{ports[i % 2]}/v1/responses", json=NPS, headers=bearer(key)
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert_limited(response, "publishable_client")
    # Six in all, whichever process took them; each alone would have taken six.
    assert statuses == [201] * 6 + [429] * 4


async def test_cors_preflights_are_limited_per_address(make_app: Callable[..., FastAPI]) -> None:
    """A preflight carries no key but costs a lookup of the origin: a flood of them from one
    address is refused before the database."""
    app = make_app(rate_limits={Policy.PREFLIGHT_CLIENT: Limit(quota=3, window_seconds=60)})
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    async with client_at(app, "198.51.100.20") as flood, client_at(app, "192.0.2.21") as page:
        for _ in range(3):
            # No key lists the origin: refused, but counted.
            answer = await flood.options("/v1/responses", headers=preflight)
            assert_problem(answer, 403, "origin_not_allowed")
        assert_limited(await flood.options("/v1/responses", headers=preflight), "preflight_client")
        assert_problem(
            await page.options("/v1/responses", headers=preflight), 403, "origin_not_allowed"
        )
