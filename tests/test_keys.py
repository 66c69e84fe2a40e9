from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import ApiKey, AuditLog
from tests.fixtures.auth import TenantHandle, assert_problem

NPS = {"kind": "nps", "score": 9, "channel": "app"}


class TestCreateKey:
    async def test_secret_key_with_scopes(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        response = await tenant.post(
            "/v1/api-keys", json={"name": "bi", "scopes": ["responses:read"]}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["kind"] == "secret"
        assert body["secret"].startswith("fbk_sk_")
        assert body["prefix"] == body["secret"][:12]
        stored = await session.scalar(select(ApiKey).where(ApiKey.id == body["id"]))
        assert stored is not None
        assert body["secret"] not in (stored.key_hash, stored.prefix)

        key = body["secret"]
        assert (await tenant.get("/v1/responses", key=key)).status_code == 200
        assert_problem(await tenant.post("/v1/responses", json=NPS, key=key), 403, "missing_scope")

    async def test_publishable_key_only_submits(self, tenant: TenantHandle) -> None:
        response = await tenant.post("/v1/api-keys", json={"name": "ios", "publishable": True})
        assert response.status_code == 201
        key = response.json()["secret"]
        assert key.startswith("fbk_pk_")
        assert response.json()["scopes"] == []
        assert (await tenant.post("/v1/responses", json=NPS, key=key)).status_code == 201
        for path in ("/v1/responses", "/v1/customers", "/v1/api-keys", "/v1/tenant"):
            assert_problem(await tenant.get(path, key=key), 403, "publishable_key_forbidden")

    async def test_cannot_grant_scopes_it_does_not_hold(self, tenant: TenantHandle) -> None:
        manager = await tenant.key("keys:manage", "responses:read")
        response = await tenant.post(
            "/v1/api-keys", json={"name": "x", "scopes": ["responses:write"]}, key=manager
        )
        assert_problem(response, 403, "scope_escalation")
        ok = await tenant.post(
            "/v1/api-keys", json={"name": "x", "scopes": ["responses:read"]}, key=manager
        )
        assert ok.status_code == 201

    async def test_bad_input_is_422(self, tenant: TenantHandle) -> None:
        for body in (
            {"name": "x"},
            {"name": "x", "scopes": []},
            {"name": "x", "scopes": ["everything"]},
            {"name": "x", "scopes": ["responses:read"], "publishable": True},
            {"name": "", "publishable": True},
        ):
            assert_problem(await tenant.post("/v1/api-keys", json=body), 422, "validation_error")

    async def test_each_key_rule_has_its_code(self, tenant: TenantHandle) -> None:
        for body, code in (
            ({"name": "x"}, "scopes_required"),
            ({"name": "x", "scopes": []}, "scopes_required"),
            ({"name": "x", "publishable": True, "trusted": True}, "publishable_trusted"),
            (
                {"name": "x", "scopes": ["responses:read"], "publishable": True},
                "publishable_scopes",
            ),
            ({"name": "x", "publishable": "true"}, "bool_type"),
            ({"name": "x", "publishable": 1}, "bool_type"),
            ({"name": "x\u0000", "publishable": True}, "nul_character"),
            ({"name": "x" * 201, "publishable": True}, "string_too_long"),
        ):
            response = await tenant.post("/v1/api-keys", json=body)
            problem = assert_problem(response, 422, "validation_error")
            assert [e["code"] for e in problem["errors"]] == [code], problem

    async def test_needs_keys_manage(self, tenant: TenantHandle) -> None:
        key = await tenant.key("responses:write")
        response = await tenant.post(
            "/v1/api-keys", json={"name": "x", "publishable": True}, key=key
        )
        assert_problem(response, 403, "missing_scope")


class TestListKeys:
    async def test_lists_only_own_keys_without_secrets(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await other_tenant.key("responses:read")
        items = (await tenant.get("/v1/api-keys")).json()["items"]
        assert len(items) == 1
        assert all("secret" not in k for k in items)

    async def test_records_last_use(self, tenant: TenantHandle) -> None:
        key = await tenant.key("responses:read")
        await tenant.get("/v1/responses", key=key)
        items = (await tenant.get("/v1/api-keys")).json()["items"]
        used = [k for k in items if k["prefix"] == key[:12]]
        assert used[0]["last_used_at"] is not None
        assert datetime.fromisoformat(used[0]["last_used_at"]).tzinfo is not None

    async def test_pages(self, tenant: TenantHandle) -> None:
        for _ in range(3):
            await tenant.key("responses:read")
        first = (await tenant.get("/v1/api-keys?limit=3")).json()
        assert len(first["items"]) == 3
        assert first["next_cursor"]
        rest = (await tenant.get(f"/v1/api-keys?limit=3&cursor={first['next_cursor']}")).json()
        assert len(rest["items"]) == 1
        assert rest["next_cursor"] is None


class TestRevokeKey:
    async def test_takes_effect_at_once_and_is_audited(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        created = (
            await tenant.post("/v1/api-keys", json={"name": "x", "scopes": ["responses:read"]})
        ).json()
        assert (await tenant.get("/v1/responses", key=created["secret"])).status_code == 200
        assert (await tenant.delete(f"/v1/api-keys/{created['id']}")).status_code == 204
        assert_problem(
            await tenant.get("/v1/responses", key=created["secret"]), 401, "unauthenticated"
        )
        again = await tenant.delete(f"/v1/api-keys/{created['id']}")
        assert again.status_code == 204
        actions = (
            await session.scalars(select(AuditLog.action).where(AuditLog.tenant_id == tenant.id))
        ).all()
        assert "api_key.revoked" in actions

    async def test_another_tenants_key_is_404(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        theirs = (await other_tenant.get("/v1/api-keys")).json()["items"][0]["id"]
        assert_problem(await tenant.delete(f"/v1/api-keys/{theirs}"), 404, "not_found")
        assert (await other_tenant.get("/v1/tenant")).status_code == 200

    async def test_bad_id_is_404(self, tenant: TenantHandle) -> None:
        assert_problem(await tenant.delete("/v1/api-keys/not-a-uuid"), 404, "not_found")
