"""SLA policies through the API: business hours, targets, escalation settings, the default."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.tickets import (
    at,
    only_ticket,
    respond,
    tickets,
)


class TestPolicies:
    async def test_business_hours_policy(self, tenant: TenantHandle) -> None:
        hours = {
            "timezone": "Asia/Shanghai",
            "weekly": {d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue")},
            "country": "CN",
            "closures": ["2026-12-24"],
        }
        created = await tenant.post(
            "/v1/sla-policies",
            json={
                "key": "cn-care",
                "name": "China care desk",
                "targets": {
                    p: {"first_response_minutes": 120, "resolution_minutes": 960}
                    for p in ("urgent", "high", "normal", "low")
                },
                "business_hours": hours,
                "escalation": {"raise_priority": False, "team": "supervisors"},
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["business_hours"]["weekly"]["mon"][1] == ["13:00", "18:00"]
        ticket = (
            await tenant.post("/v1/tickets", json={"subject": "x", "sla_policy": "cn-care"})
        ).json()
        due = at(ticket["first_response"]["due_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
        assert due.weekday() in (0, 1)
        assert 9 * 60 < due.hour * 60 + due.minute <= 18 * 60
        assert due.hour != 12  # lunch is closed

        cleared = await tenant.patch("/v1/sla-policies/cn-care", json={"business_hours": None})
        assert cleared.status_code == 200
        assert cleared.json()["business_hours"] is None

    @pytest.mark.parametrize(
        ("hours", "code"),
        [
            ({"weekly": {"monday": [["09:00", "18:00"]]}}, "string_too_long"),
            ({"weekly": {"sun2": [["09:00", "18:00"]]}}, "string_too_long"),
            ({"weekly": {"sno": [["09:00", "18:00"]]}}, "string_pattern_mismatch"),
            ({"weekly": {"mon": [["18:00", "09:00"]]}}, "empty_span"),
            ({"weekly": {"mon": [["24:00", "24:00"]]}}, "empty_span"),
            ({"weekly": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}}, "overlapping_spans"),
            ({"weekly": {"mon": [["9am", "6pm"]]}}, "string_pattern_mismatch"),
            ({"weekly": {"mon": [["09:00", "18:00\u0000"]]}}, "string_too_long"),
            ({"weekly": {"mon": [[f"{h:02}:00", f"{h:02}:30"] for h in range(7)]}}, "too_long"),
            ({"weekly": {}}, "no_open_hours"),
            ({"weekly": {"mon": []}}, "no_open_hours"),
            ({"weekly": {"mon": [["09:00", "18:00"]]}, "country": "XX"}, "unknown_country"),
            ({"weekly": {"mon": [["09:00", "18:00"]]}, "country": "de"}, "string_pattern_mismatch"),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "country": "DE", "subdivision": "ZZ"},
                "unknown_subdivision",
            ),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "subdivision": "BY"},
                "subdivision_needs_country",
            ),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "timezone": "Mars/Base"},
                "unknown_timezone",
            ),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "closures": ["9999-12-31"]},
                "datetime_out_of_range",
            ),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "closures": ["0001-01-01"]},
                "datetime_out_of_range",
            ),
        ],
    )
    async def test_bad_business_hours_are_422(
        self, tenant: TenantHandle, hours: dict[str, Any], code: str
    ) -> None:
        targets = {
            p: {"first_response_minutes": 60, "resolution_minutes": 60}
            for p in ("urgent", "high", "normal", "low")
        }
        response = await tenant.post(
            "/v1/sla-policies",
            json={"key": "k", "name": "k", "targets": targets, "business_hours": hours},
        )
        problem = assert_problem(response, 422, "validation_error")
        assert [e["code"] for e in problem["errors"]][:1] == [code], problem

    async def test_subdivisions_with_long_names_are_accepted(self, tenant: TenantHandle) -> None:
        targets = {
            p: {"first_response_minutes": 60, "resolution_minutes": 600}
            for p in ("urgent", "high", "normal", "low")
        }
        hours = {
            "weekly": {"mon": [["09:00", "18:00"]]},
            "country": "BR",
            "subdivision": "São Paulo Capital",
        }
        response = await tenant.post(
            "/v1/sla-policies",
            json={"key": "sp", "name": "SP", "targets": targets, "business_hours": hours},
        )
        assert response.status_code == 201, response.text
        assert response.json()["business_hours"]["subdivision"] == "São Paulo Capital"

    @pytest.mark.parametrize(
        ("body", "loc", "code"),
        [
            ({"key": "a\u0000"}, ["body", "key"], "string_pattern_mismatch"),
            ({"name": "a\u0000b"}, ["body", "name"], "nul_character"),
            ({"warn_at_percent": 10**30}, ["body", "warn_at_percent"], "less_than_equal"),
            ({"warn_at_percent": "80"}, ["body", "warn_at_percent"], "int_type"),
            ({"warn_at_percent": True}, ["body", "warn_at_percent"], "int_type"),
            ({"is_default": "yes"}, ["body", "is_default"], "bool_type"),
            (
                {"escalation": {"raise_priority": 1}},
                ["body", "escalation", "raise_priority"],
                "bool_type",
            ),
            ({"escalation": {"team": "\u0000"}}, ["body", "escalation", "team"], "nul_character"),
        ],
    )
    async def test_hostile_policy_fields_are_422(
        self, tenant: TenantHandle, body: dict[str, Any], loc: list[str], code: str
    ) -> None:
        targets = {
            p: {"first_response_minutes": 60, "resolution_minutes": 60}
            for p in ("urgent", "high", "normal", "low")
        }
        sent = {"key": "k", "name": "k", "targets": targets, **body}
        problem = assert_problem(
            await tenant.post("/v1/sla-policies", json=sent), 422, "validation_error"
        )
        assert {"loc": loc, "code": code} in [
            {"loc": e["loc"], "code": e["code"]} for e in problem["errors"]
        ], problem

    async def test_huge_targets_are_422(self, tenant: TenantHandle) -> None:
        targets = {
            p: {"first_response_minutes": 10**40, "resolution_minutes": 2.5}
            for p in ("urgent", "high", "normal", "low")
        }
        problem = assert_problem(
            await tenant.post(
                "/v1/sla-policies", json={"key": "k", "name": "k", "targets": targets}
            ),
            422,
            "validation_error",
        )
        codes = {(tuple(e["loc"][-1:]), e["code"]) for e in problem["errors"]}
        assert (("first_response_minutes",), "less_than_equal") in codes
        assert (("resolution_minutes",), "int_from_float") in codes or (
            ("resolution_minutes",),
            "int_type",
        ) in codes

    async def test_a_partial_escalation_is_replaced_as_a_whole(self, tenant: TenantHandle) -> None:
        url = "/v1/sla-policies/standard"
        changed = await tenant.patch(url, json={"escalation": {"raise_priority": False}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["escalation"] == {"raise_priority": False, "team": None}
        changed = await tenant.patch(url, json={"escalation": {"team": "leads"}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["escalation"] == {"raise_priority": True, "team": "leads"}
        changed = await tenant.patch(url, json={"escalation": {}})
        assert changed.json()["escalation"] == {"raise_priority": True, "team": None}
        hours = await tenant.patch(
            url, json={"business_hours": {"weekly": {"mon": [["09:00", "18:00"]]}}}
        )
        assert hours.status_code == 200, hours.text
        assert hours.json()["business_hours"]["closures"] == []

    async def test_policy_keys_in_the_path_are_checked(self, tenant: TenantHandle) -> None:
        for key in ("Standard", "x" * 64, "a%00b", "-a"):
            assert_problem(await tenant.get(f"/v1/sla-policies/{key}"), 422, "validation_error")
        assert_problem(await tenant.get("/v1/sla-policies/nope"), 404, "not_found")

    async def test_hours_that_cannot_meet_the_targets_are_422(self, tenant: TenantHandle) -> None:
        """Otherwise every new ticket on the policy, and the response opening it, would fail."""
        targets = {
            p: {"first_response_minutes": 60, "resolution_minutes": 525_600}
            for p in ("urgent", "high", "normal", "low")
        }
        one_minute_a_week = {"weekly": {"mon": [["09:00", "09:01"]]}}
        problem = assert_problem(
            await tenant.post(
                "/v1/sla-policies",
                json={
                    "key": "tiny",
                    "name": "Tiny",
                    "targets": targets,
                    "business_hours": one_minute_a_week,
                },
            ),
            422,
            "validation_error",
        )
        assert problem["errors"][0]["code"] == "targets_unreachable"
        patched = await tenant.patch(
            "/v1/sla-policies/standard", json={"business_hours": one_minute_a_week}
        )
        assert_problem(patched, 422, "validation_error")
        await respond(tenant, 2)  # the standard policy is unchanged and still works
        assert len(await tickets(tenant)) == 1

    async def test_default_and_deletion(self, tenant: TenantHandle) -> None:
        targets = {
            p: {"first_response_minutes": 30, "resolution_minutes": 60}
            for p in ("urgent", "high", "normal", "low")
        }
        body = {"key": "fast", "name": "Fast", "targets": targets}
        assert (await tenant.post("/v1/sla-policies", json=body)).status_code == 201
        assert_problem(await tenant.post("/v1/sla-policies", json=body), 409, "policy_key_taken")
        assert_problem(await tenant.delete("/v1/sla-policies/standard"), 409, "policy_in_use")
        moved = await tenant.patch("/v1/sla-policies/fast", json={"is_default": True})
        assert moved.json()["is_default"] is True
        assert (await tenant.get("/v1/sla-policies/standard")).json()["is_default"] is False
        await respond(tenant, 5)
        assert (await only_ticket(tenant))["first_response"]["target_seconds"] == 1800
        assert_problem(await tenant.delete("/v1/sla-policies/fast"), 409, "policy_in_use")
        assert (await tenant.delete("/v1/sla-policies/standard")).status_code == 204
        assert_problem(await tenant.get("/v1/sla-policies/standard"), 404, "not_found")
        problem = assert_problem(
            await tenant.patch("/v1/sla-policies/fast", json={"is_default": False}),
            422,
            "validation_error",
        )
        assert [(e["loc"], e["code"]) for e in problem["errors"]] == [
            (["body", "is_default"], "default_only_true")
        ]
