"""Managing webhook endpoints through the API: the secret shown once, URLs refused, field
validation, update, rotation, deletion, and tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.auth import TenantHandle, assert_problem


class TestEndpoints:
    async def test_create_shows_the_secret_once(self, tenant: TenantHandle) -> None:
        created = await tenant.post(
            "/v1/webhook-endpoints",
            json={
                "url": "https://example.com/hooks",
                "event_types": ["response.*"],
                "description": "CRM",
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_")
        listed = (await tenant.get("/v1/webhook-endpoints")).json()["items"]
        assert listed[0]["id"] == body["id"]
        assert "secret" not in listed[0]
        one = await tenant.get(f"/v1/webhook-endpoints/{body['id']}")
        assert "secret" not in one.json()

    @pytest.mark.parametrize(
        "url",
        [
            "http://example.com/hooks",
            "https://127.0.0.1/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hooks",
            "https://10.1.2.3/hooks",
            "https://localhost/hooks",
            "https://user:pass@example.com/hooks",
            "ftp://example.com/x",
            "not a url",
        ],
    )
    async def test_refuses_urls_it_must_not_call(self, tenant: TenantHandle, url: str) -> None:
        response = await tenant.post("/v1/webhook-endpoints", json={"url": url})
        assert_problem(response, 422, "validation_error")

    async def test_bad_filters_are_422(self, tenant: TenantHandle) -> None:
        response = await tenant.post(
            "/v1/webhook-endpoints",
            json={"url": "https://example.com/h", "event_types": ["everything"]},
        )
        assert_problem(response, 422, "validation_error")

    @pytest.mark.parametrize(
        ("body", "loc", "code"),
        [
            ({"description": "CRM\u0000"}, ["body", "description"], "nul_character"),
            ({"description": "d" * 501}, ["body", "description"], "string_too_long"),
            (
                {"event_types": ["ticket.\u0000"]},
                ["body", "event_types", 0],
                "string_pattern_mismatch",
            ),
            ({"enabled": "true"}, ["body", "enabled"], "bool_type"),
            ({"url": "https://example.com/" + "a" * 2100}, ["body", "url"], "url_too_long"),
            # pydantic accepts the emoji domain (IDNA 2003), the delivery client does not
            ({"url": "https://xn--ls8h.la/hooks"}, ["body", "url"], "url_invalid"),
            ({"url": "https://example.com:99999/"}, ["body", "url"], "url_invalid"),
            ({"url": "https://"}, ["body", "url"], "url_invalid"),
            # `format: uri` admits any scheme: the contract's pattern says http(s)
            ({"url": "urn:example:hooks"}, ["body", "url"], "url_scheme"),
            ({"url": " https://example.com/"}, ["body", "url"], "url_scheme"),
        ],
    )
    async def test_hostile_fields_are_422(
        self, tenant: TenantHandle, body: dict[str, Any], loc: list[str], code: str
    ) -> None:
        sent = {"url": "https://example.com/h", **body}
        problem = assert_problem(
            await tenant.post("/v1/webhook-endpoints", json=sent), 422, "validation_error"
        )
        assert [(e["loc"], e["code"]) for e in problem["errors"]] == [(loc, code)]

    async def test_an_uncallable_url_is_refused_on_update_too(self, tenant: TenantHandle) -> None:
        created = (
            await tenant.post("/v1/webhook-endpoints", json={"url": "https://example.com/a"})
        ).json()
        url = f"/v1/webhook-endpoints/{created['id']}"
        problem = assert_problem(
            await tenant.patch(url, json={"url": "https://xn--ls8h.la/"}), 422, "validation_error"
        )
        assert [e["code"] for e in problem["errors"]] == ["url_invalid"]
        assert (await tenant.get(url)).json()["url"] == "https://example.com/a"

    async def test_update_rotate_delete(self, tenant: TenantHandle) -> None:
        created = (
            await tenant.post("/v1/webhook-endpoints", json={"url": "https://example.com/a"})
        ).json()
        url = f"/v1/webhook-endpoints/{created['id']}"
        patched = await tenant.patch(url, json={"url": "https://example.com/b", "enabled": False})
        assert patched.json()["url"] == "https://example.com/b"
        assert patched.json()["enabled"] is False
        assert_problem(
            await tenant.patch(url, json={"url": "http://x.com"}), 422, "validation_error"
        )
        rotated = (await tenant.post(f"{url}/rotate-secret")).json()
        assert rotated["secret"].startswith("whsec_")
        assert rotated["secret"] != created["secret"]
        assert (await tenant.delete(url)).status_code == 204
        assert_problem(await tenant.get(url), 404, "not_found")

    async def test_another_tenants_endpoint_is_404_everywhere(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        theirs = (
            await other_tenant.post("/v1/webhook-endpoints", json={"url": "https://e.com/h"})
        ).json()
        url = f"/v1/webhook-endpoints/{theirs['id']}"
        test = await other_tenant.post(f"{url}/test")
        for response in (
            await tenant.get(url),
            await tenant.patch(url, json={"enabled": False}),
            await tenant.delete(url),
            await tenant.post(f"{url}/rotate-secret"),
            await tenant.post(f"{url}/test"),
            await tenant.get(f"{url}/deliveries"),
            await tenant.post(f"/v1/webhook-deliveries/{test.json()['id']}/retry"),
        ):
            assert_problem(response, 404, "not_found")
        assert (await tenant.get("/v1/webhook-endpoints")).json()["items"] == []
        assert (await other_tenant.get(url)).json()["enabled"] is True
