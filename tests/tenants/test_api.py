from __future__ import annotations

import httpx

from tests.fixtures.app import ADMIN_TOKEN
from tests.fixtures.auth import TenantHandle, assert_problem, bearer

ADMIN = bearer(ADMIN_TOKEN)


class TestCreateTenant:
    async def test_returns_tenant_and_a_working_key_once(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/tenants",
            json={"name": "Shanghai Store", "timezone": "Asia/Shanghai", "locale": "zh-CN"},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["tenant"]["slug"] == "shanghai-store"
        assert body["tenant"]["timezone"] == "Asia/Shanghai"
        secret = body["api_key"]["secret"]
        assert secret.startswith("fbk_sk_")
        assert set(body["api_key"]["scopes"]) >= {"responses:write", "keys:manage"}

        me = await client.get("/v1/tenant", headers=bearer(secret))
        assert me.status_code == 200
        assert me.json()["id"] == body["tenant"]["id"]
        keys = await client.get("/v1/api-keys", headers=bearer(secret))
        assert "secret" not in keys.json()["items"][0]

    async def test_derived_slug_gets_a_suffix_when_taken(self, client: httpx.AsyncClient) -> None:
        first = await client.post("/v1/tenants", json={"name": "Twin"}, headers=ADMIN)
        second = await client.post("/v1/tenants", json={"name": "Twin"}, headers=ADMIN)
        assert first.json()["tenant"]["slug"] == "twin"
        assert second.json()["tenant"]["slug"].startswith("twin-")

    async def test_explicit_slug_taken_is_409(self, client: httpx.AsyncClient) -> None:
        await client.post("/v1/tenants", json={"name": "A", "slug": "same"}, headers=ADMIN)
        response = await client.post(
            "/v1/tenants", json={"name": "B", "slug": "same"}, headers=ADMIN
        )
        assert_problem(response, 409, "slug_taken")

    async def test_bad_input_is_422_with_field_errors(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/tenants",
            json={"name": "", "timezone": "Mars/Olympus", "slug": "Bad Slug", "extra": 1},
            headers=ADMIN,
        )
        body = assert_problem(response, 422, "validation_error")
        fields = {tuple(e["loc"]) for e in body["errors"]}
        assert {("body", "name"), ("body", "timezone"), ("body", "slug"), ("body", "extra")} <= (
            fields
        )

    async def test_unstorable_name_is_422_not_500(self, client: httpx.AsyncClient) -> None:
        for raw, code in (
            ('{"name": "A\\u0000"}', "nul_character"),
            # The JSON parser itself refuses a lone surrogate escape.
            ('{"name": "\\ud800"}', "string_unicode"),
        ):
            response = await client.post(
                "/v1/tenants", content=raw, headers={**ADMIN, "Content-Type": "application/json"}
            )
            body = assert_problem(response, 422, "validation_error")
            assert [e["code"] for e in body["errors"]] == [code], body

    async def test_needs_the_admin_token(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        assert_problem(await client.post("/v1/tenants", json={"name": "x"}), 401, "unauthenticated")
        wrong = await client.post("/v1/tenants", json={"name": "x"}, headers=bearer("nope"))
        assert_problem(wrong, 401, "unauthenticated")
        # A tenant's own admin key is not a platform admin token.
        assert_problem(
            await client.post("/v1/tenants", json={"name": "x"}, headers=tenant.headers),
            401,
            "unauthenticated",
        )


class TestListTenants:
    async def test_pages_with_a_cursor(self, client: httpx.AsyncClient) -> None:
        for n in range(3):
            await client.post("/v1/tenants", json={"name": f"Paged {n}"}, headers=ADMIN)
        first = (await client.get("/v1/tenants?limit=2", headers=ADMIN)).json()
        assert len(first["items"]) == 2
        second = (
            await client.get(f"/v1/tenants?limit=2&cursor={first['next_cursor']}", headers=ADMIN)
        ).json()
        seen = [t["id"] for t in first["items"] + second["items"]]
        assert len(seen) == len(set(seen))

    async def test_bad_cursor_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/tenants?cursor=garbage", headers=ADMIN)
        assert_problem(response, 422, "invalid_cursor")

    async def test_needs_the_admin_token(self, tenant: TenantHandle) -> None:
        assert_problem(await tenant.get("/v1/tenants"), 401, "unauthenticated")


class TestOwnTenant:
    async def test_update_settings(self, tenant: TenantHandle) -> None:
        response = await tenant.patch("/v1/tenant", json={"timezone": "Asia/Shanghai"})
        assert response.status_code == 200, response.text
        assert response.json()["timezone"] == "Asia/Shanghai"
        assert response.json()["name"] == "Acme"

    async def test_null_and_invalid_values_are_422(self, tenant: TenantHandle) -> None:
        assert_problem(
            await tenant.patch("/v1/tenant", json={"name": None}), 422, "validation_error"
        )
        assert_problem(
            await tenant.patch("/v1/tenant", json={"timezone": "UTC+8"}), 422, "validation_error"
        )

    async def test_unstorable_and_huge_values_are_422_not_500(self, tenant: TenantHandle) -> None:
        for body, code in (
            ({"name": "Ac\u0000me"}, "nul_character"),
            ({"metrics_low_sample_n": 10**20}, "less_than_equal"),
            ({"metrics_min_cell_n": -(2**63)}, "greater_than_equal"),
            ({"ticket_reopen_days": 366}, "less_than_equal"),
            ({"ticket_reopen_days": True}, "int_type"),
            ({"metrics_min_cell_n": "5"}, "int_type"),
            ({"metrics_min_cell_n": 5.5}, "int_type"),
        ):
            response = await tenant.patch("/v1/tenant", json=body)
            problem = assert_problem(response, 422, "validation_error")
            assert code in [e["code"] for e in problem["errors"]], problem
        ok = await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 7.0})
        assert ok.status_code == 200, ok.text
        assert ok.json()["metrics_min_cell_n"] == 7

    async def test_needs_tenant_manage_scope(self, tenant: TenantHandle) -> None:
        key = await tenant.key("responses:read")
        response = await tenant.patch("/v1/tenant", json={"name": "x"}, key=key)
        assert_problem(response, 403, "missing_scope")
        assert (await tenant.get("/v1/tenant", key=key)).status_code == 200

    async def test_slug_of_another_tenant_is_409(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        theirs = (await other_tenant.get("/v1/tenant")).json()["slug"]
        assert_problem(await tenant.patch("/v1/tenant", json={"slug": theirs}), 409, "slug_taken")

    async def test_each_key_sees_only_its_tenant(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await tenant.patch("/v1/tenant", json={"name": "Renamed"})
        assert (await other_tenant.get("/v1/tenant")).json()["name"] == "Globex"

    async def test_publishable_key_is_refused(self, tenant: TenantHandle) -> None:
        key = await tenant.key(publishable=True)
        assert_problem(await tenant.get("/v1/tenant", key=key), 403, "publishable_key_forbidden")
