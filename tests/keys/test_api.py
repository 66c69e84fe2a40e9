from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

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


SHOP = "https://shop.example.com"


async def _create(tenant: TenantHandle, key: str | None = None, **body: Any) -> dict[str, Any]:
    response = await tenant.post("/v1/api-keys", json={"name": "x", **body}, key=key)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


class TestAllowedOrigins:
    async def test_stored_in_the_form_browsers_send(self, tenant: TenantHandle) -> None:
        sent = [
            SHOP,
            "http://127.0.0.1:5173",
            "https://shop.example.com:443",  # the default port: what browsers send is SHOP
            "http://localhost:80",
            "http://[0:0::1]:8080",
            "https://xn--caf-dma.example",
            SHOP,
        ]
        created = await _create(tenant, publishable=True, allowed_origins=sent)
        expected = [
            SHOP,
            "http://127.0.0.1:5173",
            "http://localhost",
            "http://[::1]:8080",
            "https://xn--caf-dma.example",
        ]
        assert created["allowed_origins"] == expected
        listed = (await tenant.get("/v1/api-keys")).json()["items"]
        assert next(k for k in listed if k["id"] == created["id"])["allowed_origins"] == expected
        assert all(k["allowed_origins"] == [] for k in listed if k["kind"] == "secret")

    async def test_each_origin_rule_has_its_code(self, tenant: TenantHandle) -> None:
        for origin, code in (
            ("https://Shop.example.com", "string_pattern_mismatch"),
            ("https://shop.example.com/", "string_pattern_mismatch"),
            ("https://shop.example.com/rate?x=1#y", "string_pattern_mismatch"),
            ("null", "string_pattern_mismatch"),
            ("*", "string_pattern_mismatch"),
            ("ftp://shop.example.com", "string_pattern_mismatch"),
            ("https://shop.example.com:0", "string_pattern_mismatch"),
            ("https://shop.example.com:65536", "string_pattern_mismatch"),
            ("https://café.example", "string_pattern_mismatch"),
            ("http://[::1::2]", "origin_invalid"),
            ("https://" + "a" * 300, "string_too_long"),
            ("https://shop\u0000.example.com", "string_pattern_mismatch"),
        ):
            response = await tenant.post(
                "/v1/api-keys", json={"name": "x", "publishable": True, "allowed_origins": [origin]}
            )
            problem = assert_problem(response, 422, "validation_error")
            assert [e["code"] for e in problem["errors"]] == [code], (origin, problem)
            assert problem["errors"][0]["loc"] == ["body", "allowed_origins", 0]

    async def test_at_most_fifty(self, tenant: TenantHandle) -> None:
        origins = [f"https://s{i}.example.com" for i in range(51)]
        response = await tenant.post(
            "/v1/api-keys", json={"name": "x", "publishable": True, "allowed_origins": origins}
        )
        problem = assert_problem(response, 422, "validation_error")
        assert [e["code"] for e in problem["errors"]] == ["too_long"]
        created = await _create(tenant, publishable=True, allowed_origins=origins[:50])
        assert len(created["allowed_origins"]) == 50

    async def test_secret_keys_take_none(self, tenant: TenantHandle) -> None:
        response = await tenant.post(
            "/v1/api-keys",
            json={"name": "x", "scopes": ["responses:write"], "allowed_origins": [SHOP]},
        )
        problem = assert_problem(response, 422, "validation_error")
        assert [e["code"] for e in problem["errors"]] == ["origins_publishable_only"]
        empty = await _create(tenant, scopes=["responses:write"], allowed_origins=[])
        assert empty["allowed_origins"] == []


class TestUpdateKey:
    async def test_changes_name_and_origins_and_is_audited(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        created = await _create(tenant, publishable=True, allowed_origins=[SHOP])
        response = await tenant.patch(
            f"/v1/api-keys/{created['id']}",
            json={"name": "web shop", "allowed_origins": ["http://127.0.0.1:8080", SHOP]},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["name"], body["allowed_origins"]) == (
            "web shop",
            ["http://127.0.0.1:8080", SHOP],
        )
        assert "secret" not in body
        assert body["prefix"] == created["prefix"]
        listed = (await tenant.get("/v1/api-keys")).json()["items"]
        assert next(k for k in listed if k["id"] == created["id"]) == body

        # Only what is sent changes; an empty list allows no page.
        cleared = await tenant.patch(f"/v1/api-keys/{created['id']}", json={"allowed_origins": []})
        assert (cleared.json()["name"], cleared.json()["allowed_origins"]) == ("web shop", [])

        entries = (
            await session.scalars(
                select(AuditLog)
                .where(AuditLog.tenant_id == tenant.id, AuditLog.action == "api_key.updated")
                .order_by(AuditLog.created_at, AuditLog.id)
            )
        ).all()
        assert [e.data["changed"] for e in entries] == [
            ["allowed_origins", "name"],
            ["allowed_origins"],
        ]
        assert entries[0].target_id == created["id"]
        assert entries[0].data["allowed_origins"] == ["http://127.0.0.1:8080", SHOP]
        assert entries[0].actor_key_id is not None
        for entry in entries:  # no secret, no free text
            assert created["secret"] not in str(entry.data)
            assert "web shop" not in str(entry.data)

    async def test_rules_that_depend_on_the_kind(self, tenant: TenantHandle) -> None:
        secret = await _create(tenant, scopes=["responses:write"])
        publishable = await _create(tenant, publishable=True)
        cases: tuple[tuple[str, dict[str, Any], str], ...] = (
            (secret["id"], {"allowed_origins": [SHOP]}, "origins_publishable_only"),
            (publishable["id"], {"trusted": True}, "publishable_trusted"),
        )
        for key_id, body, code in cases:
            problem = assert_problem(
                await tenant.patch(f"/v1/api-keys/{key_id}", json=body), 422, "validation_error"
            )
            assert [e["code"] for e in problem["errors"]] == [code]
            assert problem["errors"][0]["loc"] == ["body", next(iter(body))]
        # Harmless either way: a secret key with no origins, a publishable key not trusted.
        harmless: tuple[tuple[str, dict[str, Any]], ...] = (
            (secret["id"], {"name": "crm"}),
            (publishable["id"], {"trusted": False}),
        )
        for key_id, body in harmless:
            response = await tenant.patch(f"/v1/api-keys/{key_id}", json=body)
            assert response.status_code == 200, response.text

    async def test_bad_input_is_422(self, tenant: TenantHandle) -> None:
        created = await _create(tenant, publishable=True)
        for body, code in (
            ({"name": None}, "null_not_allowed"),
            ({"allowed_origins": None}, "null_not_allowed"),
            ({"trusted": None}, "null_not_allowed"),
            ({"name": "  "}, "too_short_trimmed"),
            ({"allowed_origins": ["https://shop.example.com/"]}, "string_pattern_mismatch"),
            ({"trusted": "true"}, "bool_type"),
            ({"scopes": ["responses:read"]}, "extra_forbidden"),
            ({"publishable": False}, "extra_forbidden"),
        ):
            response = await tenant.patch(f"/v1/api-keys/{created['id']}", json=body)
            problem = assert_problem(response, 422, "validation_error")
            assert [e["code"] for e in problem["errors"]] == [code], (body, problem)

    async def test_empty_body_changes_nothing(self, tenant: TenantHandle) -> None:
        created = await _create(tenant, publishable=True, allowed_origins=[SHOP])
        response = await tenant.patch(f"/v1/api-keys/{created['id']}", json={})
        assert response.status_code == 200
        assert response.json()["allowed_origins"] == [SHOP]

    async def test_a_revoked_key_is_409(self, tenant: TenantHandle) -> None:
        created = await _create(tenant, publishable=True, allowed_origins=[SHOP])
        assert (await tenant.delete(f"/v1/api-keys/{created['id']}")).status_code == 204
        response = await tenant.patch(
            f"/v1/api-keys/{created['id']}", json={"allowed_origins": ["https://other.example"]}
        )
        assert_problem(response, 409, "api_key_revoked")
        listed = (await tenant.get("/v1/api-keys")).json()["items"]
        assert next(k for k in listed if k["id"] == created["id"])["allowed_origins"] == [SHOP]

    async def test_another_tenants_key_is_404(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        theirs = await _create(other_tenant, publishable=True, allowed_origins=[SHOP])
        for body in ({"allowed_origins": ["https://evil.example"]}, {"name": "mine"}, {}):
            response = await tenant.patch(f"/v1/api-keys/{theirs['id']}", json=body)
            assert_problem(response, 404, "not_found")
        listed = (await other_tenant.get("/v1/api-keys")).json()["items"]
        mine = next(k for k in listed if k["id"] == theirs["id"])
        assert (mine["name"], mine["allowed_origins"]) == ("x", [SHOP])

    async def test_unknown_and_bad_ids_are_404(self, tenant: TenantHandle) -> None:
        assert_problem(
            await tenant.patch(f"/v1/api-keys/{uuid4()}", json={"name": "x"}), 404, "not_found"
        )
        assert_problem(
            await tenant.patch("/v1/api-keys/not-a-uuid", json={"name": "x"}), 404, "not_found"
        )

    async def test_needs_keys_manage(self, tenant: TenantHandle) -> None:
        created = await _create(tenant, publishable=True)
        key = await tenant.key("responses:write")
        response = await tenant.patch(f"/v1/api-keys/{created['id']}", json={"name": "y"}, key=key)
        assert_problem(response, 403, "missing_scope")
        publishable = created["secret"]
        response = await tenant.patch(
            f"/v1/api-keys/{created['id']}", json={"allowed_origins": [SHOP]}, key=publishable
        )
        assert_problem(response, 403, "publishable_key_forbidden")


class TestTrust:
    """Only `keys:trust` vouches for a key: trusted keys' responses count as verified."""

    async def test_keys_manage_alone_cannot_create_a_trusted_key(
        self, tenant: TenantHandle
    ) -> None:
        manager = await tenant.key("keys:manage", "responses:write")
        response = await tenant.post(
            "/v1/api-keys",
            json={"name": "crm", "scopes": ["responses:write"], "trusted": True},
            key=manager,
        )
        assert_problem(response, 403, "trust_requires_scope")
        # Nor grant keys:trust itself, which it does not hold.
        response = await tenant.post(
            "/v1/api-keys", json={"name": "crm", "scopes": ["keys:trust"]}, key=manager
        )
        assert_problem(response, 403, "scope_escalation")
        untrusted = await _create(tenant, manager, scopes=["responses:write"])
        assert untrusted["trusted"] is False
        assert all(not k["trusted"] for k in (await tenant.get("/v1/api-keys")).json()["items"])

    async def test_keys_manage_alone_cannot_change_trust(self, tenant: TenantHandle) -> None:
        manager = await tenant.key("keys:manage", "responses:write")
        plain = await _create(tenant, scopes=["responses:write"])
        trusted = await _create(tenant, scopes=["responses:write"], trusted=True)
        for key_id, value in ((plain["id"], True), (trusted["id"], False), (plain["id"], False)):
            response = await tenant.patch(
                f"/v1/api-keys/{key_id}", json={"trusted": value}, key=manager
            )
            assert_problem(response, 403, "trust_requires_scope")
        items = {k["id"]: k for k in (await tenant.get("/v1/api-keys")).json()["items"]}
        assert (items[plain["id"]]["trusted"], items[trusted["id"]]["trusted"]) == (False, True)
        # Everything else about a trusted key it may still change.
        renamed = await tenant.patch(
            f"/v1/api-keys/{trusted['id']}", json={"name": "crm"}, key=manager
        )
        assert renamed.status_code == 200
        assert renamed.json()["trusted"] is True

    async def test_keys_trust_creates_and_changes_trust_at_once(self, tenant: TenantHandle) -> None:
        truster = await tenant.key("keys:manage", "keys:trust", "responses:write")
        created = await _create(tenant, truster, scopes=["responses:write"], trusted=True)
        assert created["trusted"] is True
        key = created["secret"]
        first = await tenant.post("/v1/responses", json={**NPS, "channel": "crm"}, key=key)
        assert first.json()["verified"] is True

        response = await tenant.patch(
            f"/v1/api-keys/{created['id']}", json={"trusted": False}, key=truster
        )
        assert response.status_code == 200, response.text
        assert response.json()["trusted"] is False
        second = await tenant.post("/v1/responses", json={**NPS, "channel": "crm"}, key=key)
        assert second.json()["verified"] is False

        again = await tenant.patch(
            f"/v1/api-keys/{created['id']}", json={"trusted": True}, key=truster
        )
        assert again.json()["trusted"] is True
        third = await tenant.post("/v1/responses", json={**NPS, "channel": "crm"}, key=key)
        assert third.json()["verified"] is True
        # It may pass keys:trust on, as any scope it holds.
        assert (await _create(tenant, truster, scopes=["keys:trust"]))["scopes"] == ["keys:trust"]

    async def test_admin_keys_hold_keys_trust(self, tenant: TenantHandle) -> None:
        created = await _create(tenant, scopes=["responses:write"], trusted=True)
        assert created["trusted"] is True
