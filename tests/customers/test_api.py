from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import AuditLog, IdempotencyKey, Response
from tests.fixtures.auth import TenantHandle, assert_problem

ALICE = {
    "name": "Alice Wang",
    "email": "alice@example.com",
    "phone": "+86 138 0013 8000",
    "locale": "zh-CN",
    "timezone": "Asia/Shanghai",
    "attributes": {"tier": "gold", "region": "east"},
}


class TestUpsertCustomer:
    async def test_creates_then_replaces(self, tenant: TenantHandle) -> None:
        created = await tenant.put("/v1/customers/crm-1", json=ALICE)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["external_ref"] == "crm-1"
        assert body["phone"] == "+8613800138000"

        replaced = await tenant.put("/v1/customers/crm-1", json={"name": "Alice W."})
        assert replaced.status_code == 200
        assert replaced.json()["id"] == body["id"]
        assert replaced.json()["email"] is None  # PUT replaces the whole record
        assert replaced.json()["attributes"] == {}

    async def test_bad_input_is_422(self, tenant: TenantHandle) -> None:
        for bad in (
            {"email": "not-an-email"},
            {"phone": "13800138000"},
            {"phone": "+1 2"},
            {"timezone": "Nowhere/City"},
            {"attributes": {"bad key": 1}},
            {"attributes": {f"k{i}": i for i in range(51)}},
            {"nickname": "x"},
            {"name": "x" * 201},
        ):
            response = await tenant.put("/v1/customers/crm-1", json=bad)
            assert_problem(response, 422, "validation_error")

    async def test_unstorable_text_is_422_not_500(self, tenant: TenantHandle) -> None:
        for body, code in (
            ('{"name": "Al\\u0000ice"}', "nul_character"),
            ('{"name": "\\ud800"}', "string_unicode"),  # refused by the JSON parser
            ('{"attributes": {"note": "a\\u0000b"}}', "nul_character"),
        ):
            response = await tenant.put(
                "/v1/customers/crm-1", content=body, headers={"Content-Type": "application/json"}
            )
            problem = assert_problem(response, 422, "validation_error")
            assert [e["code"] for e in problem["errors"]] == [code], problem

    async def test_needs_customers_write(self, tenant: TenantHandle) -> None:
        key = await tenant.key("customers:read")
        assert_problem(await tenant.put("/v1/customers/x", json={}, key=key), 403, "missing_scope")

    async def test_refs_that_feedback_could_not_name_are_refused(
        self, tenant: TenantHandle
    ) -> None:
        for ref in ("with%20space", "a%3Fb", "x" * 256, "nul%00"):
            response = await tenant.put(f"/v1/customers/{ref}", json={})
            assert_problem(response, 422, "validation_error")
            for method in (tenant.get, tenant.delete):
                assert_problem(await method(f"/v1/customers/{ref}"), 422, "validation_error")
            export = await tenant.get(f"/v1/customers/{ref}/export")
            assert_problem(export, 422, "validation_error")

    async def test_same_ref_in_two_tenants_is_two_customers(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await tenant.put("/v1/customers/shared", json={"name": "Ours"})
        theirs = await other_tenant.put("/v1/customers/shared", json={"name": "Theirs"})
        assert theirs.status_code == 201
        assert (await tenant.get("/v1/customers/shared")).json()["name"] == "Ours"


class TestGetAndListCustomers:
    async def test_get(self, tenant: TenantHandle) -> None:
        await tenant.put("/v1/customers/crm-1", json=ALICE)
        response = await tenant.get("/v1/customers/crm-1")
        assert response.status_code == 200
        assert response.json()["attributes"] == {"tier": "gold", "region": "east"}
        assert_problem(await tenant.get("/v1/customers/nobody"), 404, "not_found")

    async def test_another_tenants_customer_is_404(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await other_tenant.put("/v1/customers/theirs", json=ALICE)
        assert_problem(await tenant.get("/v1/customers/theirs"), 404, "not_found")
        assert (await tenant.get("/v1/customers")).json()["items"] == []

    async def test_filters_by_attribute_and_email(self, tenant: TenantHandle) -> None:
        await tenant.put("/v1/customers/a", json={"attributes": {"tier": "gold"}})
        await tenant.put("/v1/customers/b", json={"attributes": {"tier": "silver"}})
        await tenant.put("/v1/customers/c", json={"email": "c@example.com"})
        gold = (await tenant.get("/v1/customers?attr.tier=gold")).json()["items"]
        assert [c["external_ref"] for c in gold] == ["a"]
        by_mail = (await tenant.get("/v1/customers?email=c@example.com")).json()["items"]
        assert [c["external_ref"] for c in by_mail] == ["c"]
        assert_problem(await tenant.get("/v1/customers?attr.=x"), 422, "validation_error")

    async def test_attribute_filters_that_could_not_match_are_422_with_codes(
        self, tenant: TenantHandle
    ) -> None:
        many = "&".join(f"attr.k{i}=v" for i in range(51))
        for query, code in (
            ("attr.=x", "attribute_name"),
            ("attr.bad%20name=x", "attribute_name"),
            ("attr.a%00=x", "attribute_name"),
            ("attr.tier=go%00ld", "nul_character"),
            ("attr.tier=%ED%A0%80", None),  # invalid UTF-8 is decoded with U+FFFD: no match
            ("attr.tier=" + "x" * 1001, "string_too_long"),
            (many, "too_many_attributes"),
        ):
            response = await tenant.get(f"/v1/customers?{query}")
            if code is None:
                assert response.status_code == 200, response.text
                continue
            problem = assert_problem(response, 422, "validation_error")
            assert [e["code"] for e in problem["errors"]] == [code], problem

    async def test_unstorable_filters_are_422(self, tenant: TenantHandle) -> None:
        for query in ("email=a%00@example.com", "email=" + "x" * 321):
            assert_problem(await tenant.get(f"/v1/customers?{query}"), 422, "validation_error")

    async def test_pages(self, tenant: TenantHandle) -> None:
        for ref in "abcde":
            await tenant.put(f"/v1/customers/{ref}", json={})
        first = (await tenant.get("/v1/customers?limit=3")).json()
        rest = (await tenant.get(f"/v1/customers?limit=3&cursor={first['next_cursor']}")).json()
        refs = [c["external_ref"] for c in first["items"] + rest["items"]]
        assert sorted(refs) == list("abcde")
        assert rest["next_cursor"] is None

    async def test_needs_customers_read(self, tenant: TenantHandle) -> None:
        key = await tenant.key("customers:write")
        assert_problem(await tenant.get("/v1/customers", key=key), 403, "missing_scope")


class TestExportCustomer:
    async def test_holds_the_customer_and_all_their_responses(self, tenant: TenantHandle) -> None:
        await tenant.put("/v1/customers/crm-1", json=ALICE)
        kept = await tenant.post(
            "/v1/responses",
            json={
                "kind": "nps",
                "score": 3,
                "channel": "crm",
                "customer": "crm-1",
                "comment": "late",
            },
        )
        export = await tenant.get("/v1/customers/crm-1/export")
        assert export.status_code == 200
        body = export.json()
        assert body["customer"]["email"] == "alice@example.com"
        by_id = {r["id"]: r for r in body["responses"]}
        assert by_id[kept.json()["id"]]["comment"] == "late"
        # the NPS 3 opened a ticket: it and what was said in it are the customer's data too
        (ticket,) = body["tickets"]
        assert ticket["response_id"] == kept.json()["id"]
        assert ticket["description"] == "late"
        assert [e["type"] for e in ticket["timeline"]] == ["created"]

    async def test_another_tenant_cannot_export(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await other_tenant.put("/v1/customers/theirs", json=ALICE)
        assert_problem(await tenant.get("/v1/customers/theirs/export"), 404, "not_found")


class TestEraseCustomer:
    async def test_removes_personal_data_and_keeps_scores(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await tenant.put("/v1/customers/crm-1", json=ALICE)
        created = await tenant.post(
            "/v1/responses",
            json={
                "kind": "nps",
                "score": 2,
                "channel": "crm",
                "customer": "crm-1",
                "comment": "my phone is 138...",
                "external_id": "t-1",
                "attributes": {"order": "A1"},
            },
            headers={"Idempotency-Key": "erase-me"},
        )
        response_id = created.json()["id"]

        assert (await tenant.delete("/v1/customers/crm-1")).status_code == 204

        assert_problem(await tenant.get("/v1/customers/crm-1"), 404, "not_found")
        after = (await tenant.get(f"/v1/responses/{response_id}")).json()
        assert after["score"] == 2
        assert after["customer"] is None
        assert after["comment"] is None
        assert after["attributes"] == {}
        assert after["external_id"] is None
        stored = await session.get(Response, (tenant.id, created.json()["id"]))
        assert stored is not None
        assert stored.customer_id is None
        replay = await session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.tenant_id == tenant.id)
        )
        assert replay is None
        audit = (
            await session.scalars(
                select(AuditLog).where(
                    AuditLog.tenant_id == tenant.id, AuditLog.action == "customer.erased"
                )
            )
        ).one()
        assert audit.data == {
            "responses_anonymised": 1,
            "tickets_redacted": 1,
            "invitations_unlinked": 0,
        }
        assert "Alice" not in str(audit.data)
        assert "crm-1" not in audit.target_id

        # The ref is free again and starts with a clean record.
        again = await tenant.put("/v1/customers/crm-1", json={})
        assert again.status_code == 201

    async def test_another_tenant_cannot_erase(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await other_tenant.put("/v1/customers/theirs", json=ALICE)
        assert_problem(await tenant.delete("/v1/customers/theirs"), 404, "not_found")
        assert (await other_tenant.get("/v1/customers/theirs")).status_code == 200

    async def test_needs_customers_write(self, tenant: TenantHandle) -> None:
        await tenant.put("/v1/customers/crm-1", json=ALICE)
        key = await tenant.key("customers:read")
        assert_problem(await tenant.delete("/v1/customers/crm-1", key=key), 403, "missing_scope")
