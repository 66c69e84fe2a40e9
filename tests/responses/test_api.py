from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import Customer, Response
from tests.fixtures.auth import TenantHandle, assert_problem

NPS: dict[str, Any] = {"kind": "nps", "score": 9, "channel": "app"}


async def count_responses(session: AsyncSession, tenant: TenantHandle) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Response).where(Response.tenant_id == tenant.id)
        )
        or 0
    )


class TestCreateResponse:
    @pytest.mark.parametrize(
        ("body", "scale"),
        [
            ({"kind": "nps", "score": 0}, (0, 10)),
            ({"kind": "csat", "score": 5}, (1, 5)),
            ({"kind": "ces", "score": 7, "scale_min": 1, "scale_max": 7}, (1, 7)),
            ({"kind": "rating", "score": 3, "scale_min": 1, "scale_max": 3}, (1, 3)),
        ],
    )
    async def test_each_kind_on_its_scale(
        self, tenant: TenantHandle, body: dict[str, Any], scale: tuple[int, int]
    ) -> None:
        response = await tenant.post("/v1/responses", json={**body, "channel": "web"})
        assert response.status_code == 201, response.text
        stored = response.json()
        assert (stored["scale_min"], stored["scale_max"]) == scale
        fetched = await tenant.get(f"/v1/responses/{stored['id']}")
        assert fetched.json() == stored

    async def test_stores_every_field(self, tenant: TenantHandle) -> None:
        occurred = "2025-03-01T10:00:00+08:00"
        body = {
            **NPS,
            "comment": "快递很快",
            "tags": ["Delivery", "delivery ", "speed"],
            "touchpoint": "delivery",
            "survey": "post-delivery",
            "customer": "crm-42",
            "agent_ref": "agent-7",
            "location_ref": "store-1",
            "language": "zh-CN",
            "attributes": {"order": "A-1", "items": 3},
            "occurred_at": occurred,
            "external_id": "fb-1",
        }
        response = await tenant.post("/v1/responses", json=body)
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["tags"] == ["delivery", "speed"]
        assert stored["customer"] == "crm-42"
        assert datetime.fromisoformat(stored["occurred_at"]) == datetime.fromisoformat(occurred)
        assert (await tenant.get("/v1/customers/crm-42")).status_code == 200

    async def test_occurred_at_defaults_to_now(self, tenant: TenantHandle) -> None:
        before = datetime.now(UTC)
        stored = (await tenant.post("/v1/responses", json=NPS)).json()
        occurred = datetime.fromisoformat(stored["occurred_at"])
        assert before - timedelta(seconds=1) <= occurred <= datetime.now(UTC)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"kind": "nps", "score": 11, "channel": "app"}, "body"),
            ({"kind": "csat", "score": 0, "channel": "app"}, "body"),
            ({"kind": "nps", "score": "9", "channel": "app"}, "score"),
            ({"kind": "nps", "score": 8.5, "channel": "app"}, "score"),
            ({"kind": "nps", "score": 9, "channel": "fax"}, "channel"),
            ({"kind": "smile", "score": 1, "channel": "app"}, "kind"),
            ({"kind": "rating", "score": 3, "channel": "app"}, "body"),
            (
                {"kind": "rating", "score": 3, "scale_min": 5, "scale_max": 1, "channel": "app"},
                "body",
            ),
            ({"kind": "nps", "score": 3, "scale_min": 1, "scale_max": 5, "channel": "app"}, "body"),
            ({**NPS, "comment": "x" * 5001}, "comment"),
            ({**NPS, "tags": [f"t{i}" for i in range(21)]}, "tags"),
            ({**NPS, "tags": [""]}, "tags"),
            ({**NPS, "occurred_at": "2025-03-01T10:00:00"}, "occurred_at"),
            ({**NPS, "language": "not a language"}, "language"),
            ({**NPS, "attributes": {"blob": "x" * 9000}}, "attributes"),
            ({**NPS, "customer": "has space"}, "customer"),
            ({**NPS, "unknown": True}, "unknown"),
            ({"score": 9, "channel": "app"}, "kind"),
        ],
    )
    async def test_bad_input_is_422_naming_the_field(
        self, tenant: TenantHandle, body: dict[str, Any], field: str
    ) -> None:
        response = await tenant.post("/v1/responses", json=body)
        problem = assert_problem(response, 422, "validation_error")
        assert any(field in [str(p) for p in e["loc"]] for e in problem["errors"]), problem

    async def test_future_occurred_at_is_refused(self, tenant: TenantHandle) -> None:
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        response = await tenant.post("/v1/responses", json={**NPS, "occurred_at": future})
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["code"] == "future_time"
        slight = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
        assert (
            await tenant.post("/v1/responses", json={**NPS, "occurred_at": slight})
        ).status_code == 201

    async def test_needs_responses_write(self, tenant: TenantHandle) -> None:
        key = await tenant.key("responses:read")
        assert_problem(await tenant.post("/v1/responses", json=NPS, key=key), 403, "missing_scope")

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"kind": "rating", "score": 3, "channel": "app"}, "scale_required"),
            ({"kind": "rating", "score": 3, "scale_min": 1, "channel": "app"}, "scale_required"),
            (
                {"kind": "rating", "score": 3, "scale_min": 5, "scale_max": 1, "channel": "app"},
                "scale_invalid",
            ),
            (
                {"kind": "rating", "score": 3, "scale_min": 2, "scale_max": 2, "channel": "app"},
                "scale_invalid",
            ),
            (
                {"kind": "rating", "score": 3, "scale_min": 0, "scale_max": 101, "channel": "app"},
                "scale_too_wide",
            ),
            ({**NPS, "scale_min": 1, "scale_max": 5}, "scale_fixed"),
            ({"kind": "csat", "score": 3, "scale_max": 10, "channel": "app"}, "scale_fixed"),
            ({**NPS, "score": 11}, "score_out_of_range"),
            (
                {"kind": "rating", "score": 0, "scale_min": 1, "scale_max": 3, "channel": "app"},
                "score_out_of_range",
            ),
        ],
    )
    async def test_scale_rules_have_their_own_codes(
        self, tenant: TenantHandle, body: dict[str, Any], code: str
    ) -> None:
        problem = assert_problem(
            await tenant.post("/v1/responses", json=body), 422, "validation_error"
        )
        assert [e["code"] for e in problem["errors"]] == [code], problem
        assert problem["errors"][0]["loc"] == ["body"]

    @pytest.mark.parametrize(
        ("body", "field", "code"),
        [
            ({**NPS, "score": 10**30}, "score", "less_than_equal"),
            ({**NPS, "score": -(10**30)}, "score", "greater_than_equal"),
            ({**NPS, "score": True}, "score", "int_type"),
            ({**NPS, "score": 9.0}, None, None),
            (
                {
                    "kind": "rating",
                    "score": 1,
                    "scale_min": -(2**63),
                    "scale_max": 5,
                    "channel": "app",
                },
                "scale_min",
                "greater_than_equal",
            ),
            (
                {"kind": "rating", "score": 1, "scale_min": 1, "scale_max": 1e20, "channel": "app"},
                "scale_max",
                "less_than_equal",
            ),
            ({**NPS, "comment": "nul \u0000 here"}, "comment", "nul_character"),
            ({**NPS, "tags": ["ok", "a\u0000"]}, "tags", "nul_character"),
            ({**NPS, "touchpoint": "\u0000"}, "touchpoint", "nul_character"),
            ({**NPS, "survey": "s\u0000"}, "survey", "nul_character"),
            ({**NPS, "agent_ref": "a\u0000"}, "agent_ref", "nul_character"),
            ({**NPS, "location_ref": "\u0000"}, "location_ref", "nul_character"),
            ({**NPS, "external_id": "e\u0000"}, "external_id", "nul_character"),
            ({**NPS, "comment": "half \ud800 a pair"}, "comment", "string_unicode"),
            (
                {**NPS, "invitation_token": "not/a/token"},
                "invitation_token",
                "string_pattern_mismatch",
            ),
            ({**NPS, "invitation_token": "t\u0000"}, "invitation_token", "string_pattern_mismatch"),
            (
                {**NPS, "occurred_at": "9999-12-31T23:59:59Z"},
                "occurred_at",
                "datetime_out_of_range",
            ),
            (
                {**NPS, "occurred_at": "0001-01-01T00:00:00+14:00"},
                "occurred_at",
                "datetime_out_of_range",
            ),
            ({**NPS, "occurred_at": 1700000000}, "occurred_at", "datetime_format"),
        ],
    )
    async def test_unstorable_or_huge_values_are_422_not_500(
        self, tenant: TenantHandle, body: dict[str, Any], field: str | None, code: str | None
    ) -> None:
        # json.dumps escapes NUL as \u0000 and a lone surrogate as \ud800, as a client would.
        response = await tenant.post(
            "/v1/responses", content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        if code is None:
            assert response.status_code == 201, response.text
            return
        problem = assert_problem(response, 422, "validation_error")
        assert any(field in e["loc"] and e["code"] == code for e in problem["errors"]), problem


class TestExternalId:
    async def test_same_content_returns_the_original_with_200(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        body = {**NPS, "external_id": "crm-fb-1", "customer": "c-1"}
        first = await tenant.post("/v1/responses", json=body)
        again = await tenant.post("/v1/responses", json=body)
        assert first.status_code == 201
        assert again.status_code == 200
        assert again.json() == first.json()
        assert await count_responses(session, tenant) == 1

    async def test_different_content_is_409(self, tenant: TenantHandle) -> None:
        await tenant.post("/v1/responses", json={**NPS, "external_id": "crm-fb-1"})
        response = await tenant.post(
            "/v1/responses", json={**NPS, "score": 2, "external_id": "crm-fb-1"}
        )
        assert_problem(response, 409, "external_id_conflict")

    async def test_external_ids_are_per_tenant(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        body = {**NPS, "external_id": "same"}
        assert (await tenant.post("/v1/responses", json=body)).status_code == 201
        assert (await other_tenant.post("/v1/responses", json=body)).status_code == 201


class TestIdempotencyKey:
    async def test_replays_the_first_result(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        headers = {"Idempotency-Key": "k-1"}
        first = await tenant.post("/v1/responses", json=NPS, headers=headers)
        again = await tenant.post("/v1/responses", json=NPS, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert await count_responses(session, tenant) == 1

    async def test_same_key_other_body_is_422(self, tenant: TenantHandle) -> None:
        headers = {"Idempotency-Key": "k-1"}
        await tenant.post("/v1/responses", json=NPS, headers=headers)
        response = await tenant.post("/v1/responses", json={**NPS, "score": 1}, headers=headers)
        assert_problem(response, 422, "idempotency_key_reused")

    async def test_same_key_other_endpoint_is_422(self, tenant: TenantHandle) -> None:
        headers = {"Idempotency-Key": "k-1"}
        await tenant.post("/v1/responses", json=NPS, headers=headers)
        response = await tenant.post("/v1/responses/batch", json={"items": [NPS]}, headers=headers)
        assert_problem(response, 422, "idempotency_key_reused")

    async def test_failed_requests_are_not_remembered(self, tenant: TenantHandle) -> None:
        headers = {"Idempotency-Key": "k-2"}
        bad = await tenant.post(
            "/v1/responses", json={**NPS, "external_id": "x", "score": 1}, headers=headers
        )
        assert bad.status_code == 201
        conflict = await tenant.post(
            "/v1/responses",
            json={**NPS, "external_id": "x"},
            headers={"Idempotency-Key": "k-3"},
        )
        assert conflict.status_code == 409
        # k-3 was not stored with the failure, so it is still free for a fixed request.
        ok = await tenant.post("/v1/responses", json=NPS, headers={"Idempotency-Key": "k-3"})
        assert ok.status_code == 201

    async def test_keys_are_per_tenant(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        headers = {"Idempotency-Key": "shared"}
        ours = await tenant.post("/v1/responses", json=NPS, headers=headers)
        theirs = await other_tenant.post("/v1/responses", json=NPS, headers=headers)
        assert theirs.status_code == 201
        assert theirs.json()["id"] != ours.json()["id"]

    async def test_keys_are_per_api_key(self, tenant: TenantHandle, session: AsyncSession) -> None:
        """A publishable key pulled out of an app cannot claim, block or read the values a
        backend's key uses: the same value under another API key is another request."""
        app_key = await tenant.key(publishable=True)
        headers = {"Idempotency-Key": "order-4711"}
        backend = await tenant.post("/v1/responses", json=NPS, headers=headers)
        # Another key, the same value, another body: neither a mismatch nor a replay.
        hostile = await tenant.post(
            "/v1/responses", json={**NPS, "score": 0}, headers=headers, key=app_key
        )
        assert hostile.status_code == 201
        assert "idempotent-replayed" not in hostile.headers
        assert hostile.json()["id"] != backend.json()["id"]
        assert hostile.json()["score"] == 0
        # The backend's retry still replays its own first result.
        retry = await tenant.post("/v1/responses", json=NPS, headers=headers)
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json() == backend.json()
        assert await count_responses(session, tenant) == 2

    async def test_overlong_key_is_422(self, tenant: TenantHandle) -> None:
        response = await tenant.post(
            "/v1/responses", json=NPS, headers={"Idempotency-Key": "k" * 256}
        )
        assert_problem(response, 422, "validation_error")


class TestPublishableKey:
    async def test_submits_a_one_tap_rating(self, tenant: TenantHandle) -> None:
        key = await tenant.key(publishable=True)
        response = await tenant.post(
            "/v1/responses",
            json={
                "kind": "csat",
                "score": 5,
                "channel": "app",
                "comment": "great",
                "tags": ["checkout"],
                "touchpoint": "checkout",
            },
            key=key,
        )
        assert response.status_code == 201, response.text

    @pytest.mark.parametrize(
        "extra",
        [
            {"agent_ref": "agent-1"},
            {"location_ref": "store-1"},
            {"customer": "someone-else"},
            {"external_id": "their-id"},
            {"occurred_at": "2020-01-01T00:00:00Z"},
            {"channel": "crm"},
        ],
    )
    async def test_cannot_attribute_backdate_or_use_other_channels(
        self, tenant: TenantHandle, extra: dict[str, Any]
    ) -> None:
        key = await tenant.key(publishable=True)
        response = await tenant.post("/v1/responses", json={**NPS, **extra}, key=key)
        assert_problem(response, 403, "publishable_key_forbidden")

    async def test_cannot_batch_read_or_change(self, tenant: TenantHandle) -> None:
        key = await tenant.key(publishable=True)
        created = (await tenant.post("/v1/responses", json=NPS, key=key)).json()
        url = f"/v1/responses/{created['id']}"
        for response in (
            await tenant.post("/v1/responses/batch", json={"items": [NPS]}, key=key),
            await tenant.get(url, key=key),
            await tenant.patch(url, json={"tags": []}, key=key),
        ):
            assert_problem(response, 403, "publishable_key_forbidden")


class TestBatch:
    async def test_mixed_items_get_their_own_results(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await tenant.post("/v1/responses", json={**NPS, "external_id": "old"})
        items = [
            {**NPS, "customer": "c-1"},
            {"kind": "nps", "score": 42, "channel": "app"},
            "not an object",
            {**NPS, "external_id": "old"},
            {**NPS, "score": 0, "external_id": "old"},
            {**NPS, "external_id": "new"},
            {**NPS, "external_id": "new"},
            {**NPS, "score": 1, "external_id": "new"},
            {**NPS, "occurred_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
            {
                "kind": "csat",
                "score": 4,
                "channel": "import",
                "occurred_at": "2019-06-01T00:00:00Z",
                "customer": "c-1",
            },
        ]
        response = await tenant.post("/v1/responses/batch", json={"items": items})
        assert response.status_code == 200, response.text
        body = response.json()
        statuses = [r["status"] for r in body["items"]]
        assert statuses == [201, 422, 422, 200, 409, 201, 200, 409, 422, 201]
        assert [r["index"] for r in body["items"]] == list(range(len(items)))
        assert body["created"] == 3
        assert body["duplicates"] == 2
        assert body["failed"] == 5
        assert body["items"][6]["id"] == body["items"][5]["id"]
        assert body["items"][1]["error"]["errors"][0]["loc"][:3] == ["body", "items", 1]
        assert body["items"][8]["error"]["errors"][0]["code"] == "future_time"
        assert await count_responses(session, tenant) == 4
        customers = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.tenant_id == tenant.id)
        )
        assert customers == 1

    async def test_a_thousand_items_in_one_call(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        items = [
            {
                "kind": "nps",
                "score": i % 11,
                "channel": "import",
                "customer": f"c-{i % 50}",
                "external_id": f"imp-{i}",
                "occurred_at": "2024-01-01T00:00:00Z",
            }
            for i in range(1000)
        ]
        response = await tenant.post("/v1/responses/batch", json={"items": items})
        assert response.json()["created"] == 1000
        again = await tenant.post("/v1/responses/batch", json={"items": items})
        assert again.json()["duplicates"] == 1000
        assert await count_responses(session, tenant) == 1000

    async def test_external_ids_of_another_tenant_do_not_count(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        items = [{**NPS, "external_id": "shared-1"}, {**NPS, "external_id": "shared-2"}]
        await other_tenant.post("/v1/responses/batch", json={"items": items})
        ours = await tenant.post("/v1/responses/batch", json={"items": items})
        assert [r["status"] for r in ours.json()["items"]] == [201, 201]

    async def test_size_limits(self, tenant: TenantHandle) -> None:
        assert_problem(
            await tenant.post("/v1/responses/batch", json={"items": [NPS] * 1001}),
            422,
            "validation_error",
        )
        assert_problem(
            await tenant.post("/v1/responses/batch", json={"items": []}), 422, "validation_error"
        )

    async def test_replays_with_idempotency_key(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        headers = {"Idempotency-Key": "batch-1"}
        first = await tenant.post(
            "/v1/responses/batch", json={"items": [NPS, NPS]}, headers=headers
        )
        again = await tenant.post(
            "/v1/responses/batch", json={"items": [NPS, NPS]}, headers=headers
        )
        assert again.json() == first.json()
        assert await count_responses(session, tenant) == 2

    async def test_needs_responses_write(self, tenant: TenantHandle) -> None:
        key = await tenant.key("responses:read")
        response = await tenant.post("/v1/responses/batch", json={"items": [NPS]}, key=key)
        assert_problem(response, 403, "missing_scope")


class TestListResponses:
    async def _seed(self, tenant: TenantHandle) -> None:
        items = [
            {
                "kind": "nps",
                "score": 2,
                "channel": "app",
                "touchpoint": "delivery",
                "tags": ["late"],
                "comment": "late again",
                "customer": "c-1",
                "occurred_at": "2025-01-01T00:00:00Z",
            },
            {
                "kind": "nps",
                "score": 10,
                "channel": "web",
                "touchpoint": "checkout",
                "survey": "s-1",
                "occurred_at": "2025-01-02T00:00:00Z",
            },
            {
                "kind": "csat",
                "score": 4,
                "channel": "email",
                "tags": ["late", "rude"],
                "occurred_at": "2025-01-03T00:00:00Z",
            },
        ]
        assert (await tenant.post("/v1/responses/batch", json={"items": items})).json()[
            "created"
        ] == 3

    @pytest.mark.parametrize(
        ("query", "scores"),
        [
            ("", [4, 10, 2]),
            ("kind=nps", [10, 2]),
            ("channel=web", [10]),
            ("touchpoint=delivery", [2]),
            ("survey=s-1", [10]),
            ("customer=c-1", [2]),
            ("tag=late", [4, 2]),
            ("tag=LATE", [4, 2]),
            ("score_min=3&score_max=9", [4]),
            ("from=2025-01-02T00:00:00Z&to=2025-01-03T00:00:00Z", [10]),
            ("has_comment=true", [2]),
            ("has_comment=false", [4, 10]),
        ],
    )
    async def test_filters(self, tenant: TenantHandle, query: str, scores: list[int]) -> None:
        await self._seed(tenant)
        response = await tenant.get(f"/v1/responses?{query}")
        assert response.status_code == 200, response.text
        assert [r["score"] for r in response.json()["items"]] == scores

    async def test_pages_newest_first(self, tenant: TenantHandle) -> None:
        await self._seed(tenant)
        first = (await tenant.get("/v1/responses?limit=2")).json()
        rest = (await tenant.get(f"/v1/responses?limit=2&cursor={first['next_cursor']}")).json()
        assert [r["score"] for r in first["items"] + rest["items"]] == [4, 10, 2]
        assert rest["next_cursor"] is None

    async def test_bad_filters_are_422(self, tenant: TenantHandle) -> None:
        for query in (
            "kind=smile",
            "from=yesterday",
            "from=2025-01-01T00:00:00",
            "limit=0",
            "limit=201",
            "cursor=%%%",
        ):
            response = await tenant.get(f"/v1/responses?{query}")
            assert response.status_code == 422, query
        for query in (
            "kind=smile",
            "from=yesterday",
            "tag=%00",
            "touchpoint=a%00b",
            "customer=%00",
            "survey=" + "s" * 101,
            "score_min=99999999999999999999",
            "score_max=-1001",
            "from=9999-12-31T23:59:59%2B00:00",
            "to=0001-01-01T00:00:00%2B14:00",
            "from=1700000000",
        ):
            response = await tenant.get(f"/v1/responses?{query}")
            assert response.status_code == 422, query
            export = await tenant.get(f"/v1/responses/export?{query}")
            assert export.status_code == 422, query

    async def test_never_shows_another_tenants_responses(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await self._seed(other_tenant)
        assert (await tenant.get("/v1/responses")).json()["items"] == []

    async def test_needs_responses_read(self, tenant: TenantHandle) -> None:
        key = await tenant.key("responses:write")
        assert_problem(await tenant.get("/v1/responses", key=key), 403, "missing_scope")


class TestGetUpdateDeleteResponse:
    async def test_patch_changes_only_tags_and_attributes(self, tenant: TenantHandle) -> None:
        created = (await tenant.post("/v1/responses", json={**NPS, "tags": ["a"]})).json()
        url = f"/v1/responses/{created['id']}"
        patched = await tenant.patch(url, json={"tags": ["B", "c"]})
        assert patched.status_code == 200
        assert patched.json()["tags"] == ["b", "c"]
        assert patched.json()["attributes"] == {}
        assert patched.json()["updated_at"] >= created["updated_at"]
        for body in ({"score": 0}, {"comment": "edited"}, {"tags": None}):
            assert_problem(await tenant.patch(url, json=body), 422, "validation_error")

    async def test_no_key_can_delete_a_response(self, tenant: TenantHandle) -> None:
        """Honest negative reviews must not be suppressible: there is no delete. Flags
        (with a reason) exclude; only the customer's own erasure anonymises."""
        created = (await tenant.post("/v1/responses", json={**NPS, "score": 0})).json()
        url = f"/v1/responses/{created['id']}"
        assert_problem(await tenant.delete(url), 405, "method_not_allowed")
        assert (await tenant.get(url)).json()["score"] == 0

    async def test_another_tenants_response_is_404_everywhere(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        theirs = (await other_tenant.post("/v1/responses", json=NPS)).json()
        url = f"/v1/responses/{theirs['id']}"
        assert_problem(await tenant.get(url), 404, "not_found")
        assert_problem(await tenant.patch(url, json={"tags": ["x"]}), 404, "not_found")
        assert (await other_tenant.get(url)).json()["tags"] == []

    async def test_scopes(self, tenant: TenantHandle) -> None:
        created = (await tenant.post("/v1/responses", json=NPS)).json()
        url = f"/v1/responses/{created['id']}"
        reader = await tenant.key("responses:read")
        writer = await tenant.key("responses:write")
        assert_problem(await tenant.get(url, key=writer), 403, "missing_scope")
        assert_problem(await tenant.patch(url, json={"tags": []}, key=reader), 403, "missing_scope")

    async def test_malformed_id_is_404(self, tenant: TenantHandle) -> None:
        # Only a UUID names a response; anything else is no such resource (and
        # `PATCH /v1/responses/batch` is a 405, not an attempt to parse "batch").
        assert_problem(await tenant.get("/v1/responses/123"), 404, "not_found")
        answer = await tenant.patch("/v1/responses/batch", json={})
        assert_problem(answer, 405, "method_not_allowed")
        assert answer.headers["allow"] == "POST"
