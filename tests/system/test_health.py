from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from feedback_api.app import create_app
from feedback_api.config import Settings
from feedback_api.db import create_engine, create_sessionmaker
from tests.fixtures.app import build_app
from tests.fixtures.auth import TenantHandle, assert_problem, bearer


class TestProbes:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_checks_the_database(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_prometheus_metrics_by_route_template(self, tenant: TenantHandle) -> None:
        await tenant.get("/v1/responses/00000000-0000-0000-0000-000000000000")
        response = await tenant.client.get("/metrics")
        assert response.status_code == 200
        assert (
            'feedback_http_request_duration_seconds_count{method="GET",'
            'route="/v1/responses/{response_id}",status="404"}'
        ) in response.text


class TestMetricsToken:
    async def test_metrics_need_the_token_when_one_is_set(
        self, settings: Settings, engine: AsyncEngine, session: AsyncSession, tenant: TenantHandle
    ) -> None:
        token = "prom-" + "x" * 30
        app = build_app(
            settings.model_copy(update={"metrics_token": SecretStr(token)}), engine, session
        )
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert_problem(await client.get("/metrics"), 401, "unauthenticated")
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert_problem(wrong, 401, "unauthenticated")
            # An API key is not the metrics token.
            as_key = await client.get("/metrics", headers=bearer(tenant.admin_key))
            assert_problem(as_key, 401, "unauthenticated")
            ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
            assert "feedback_http_request_duration_seconds" in ok.text
            # Probes stay open: load balancers carry no token.
            assert (await client.get("/healthz")).status_code == 200


class TestRequestId:
    async def test_echoes_a_supplied_request_id(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"

    async def test_generates_one_and_puts_it_in_problems(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/nowhere")
        body = assert_problem(response, 404, "not_found")
        assert body["request_id"] == response.headers["x-request-id"]

    async def test_replaces_an_unsafe_request_id(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        assert response.headers["x-request-id"] != "bad id\twith spaces"


class TestTransportErrors:
    async def test_unknown_route_is_a_problem(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/unknown"), 404, "not_found")

    async def test_wrong_method_is_a_problem(self, tenant: TenantHandle) -> None:
        assert_problem(await tenant.put("/v1/responses"), 405, "method_not_allowed")

    async def test_missing_key(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/responses")
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_unknown_key(self, client: httpx.AsyncClient) -> None:
        response = await client.get(
            "/v1/responses", headers={"Authorization": "Bearer fbk_sk_not-a-real-key"}
        )
        assert_problem(response, 401, "unauthenticated")

    async def test_non_json_body_is_415(self, tenant: TenantHandle) -> None:
        response = await tenant.post(
            "/v1/responses", content=b"kind=nps", headers={"Content-Type": "text/plain"}
        )
        assert_problem(response, 415, "unsupported_media_type")

    async def test_malformed_json_is_400(self, tenant: TenantHandle) -> None:
        response = await tenant.post(
            "/v1/responses", content=b'{"kind": ', headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 400, "invalid_json")

    async def test_body_over_the_limit_is_413(self, tenant: TenantHandle) -> None:
        huge = b'{"items": [' + b'{"a": "' + b"x" * (9 * 1024 * 1024) + b'"}]}'
        response = await tenant.post(
            "/v1/responses/batch", content=huge, headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")

    async def test_chunked_body_over_the_limit_is_413(self, tenant: TenantHandle) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * (1024 * 1024)

        response = await tenant.post(
            "/v1/responses/batch", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")


class TestDatabaseDown:
    async def test_requests_get_503_with_retry_after(self, settings: Settings) -> None:
        url = "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"
        app = create_app(settings.model_copy(update={"database_url": url}))
        app.state.engine = create_engine(url, settings)
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                ready = await client.get("/readyz")
                listed = await client.get(
                    "/v1/responses", headers={"Authorization": "Bearer fbk_sk_whatever"}
                )
        finally:
            await app.state.engine.dispose()
        assert_problem(ready, 503, "not_ready")
        assert_problem(listed, 503, "database_unavailable")
        assert listed.headers["retry-after"] == "5"
