"""Invitations through the API: surveys, contact rules, and what another tenant cannot see."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from feedback_api.config import Settings
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.time import utcnow
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.invitations import (
    JSON,
    LONE_SURROGATE,
    SURVEY,
    UNICODE,
    invite,
    setup,
)

# --- surveys ------------------------------------------------------------------------------


async def test_survey_lifecycle(tenant: TenantHandle) -> None:
    response = await tenant.post("/v1/surveys", json=SURVEY)
    assert response.status_code == 201, response.text
    survey = response.json()
    assert (survey["scale_min"], survey["scale_max"]) == (0, 10)
    assert survey["expires_after_hours"] == 168
    assert survey["reminder_after_hours"] is None  # reminders are off by default
    assert survey["default_channel"] == "email"

    assert_problem(await tenant.post("/v1/surveys", json=SURVEY), 409, "survey_key_taken")
    response = await tenant.patch(
        "/v1/surveys/delivery-nps", json={"reminder_after_hours": 48, "follow_up": None}
    )
    assert response.status_code == 200
    assert response.json()["reminder_after_hours"] == 48
    assert response.json()["follow_up"] is None
    listed = (await tenant.get("/v1/surveys")).json()["items"]
    assert [s["key"] for s in listed] == ["delivery-nps"]
    assert_problem(await tenant.get("/v1/surveys/nope"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {**SURVEY, "kind": "rating"},  # no scale
        {**SURVEY, "kind": "csat", "scale_min": 0, "scale_max": 10},
        {**SURVEY, "question": {}},
        {**SURVEY, "question": {"not a tag!": "x"}},
        {**SURVEY, "delay_minutes": -1},
        {**SURVEY, "key": "Has Spaces"},
        {**SURVEY, "surprise": 1},
    ],
)
async def test_invalid_surveys(tenant: TenantHandle, body: dict[str, Any]) -> None:
    assert_problem(await tenant.post("/v1/surveys", json=body), 422, "validation_error")


@pytest.mark.parametrize(
    ("body", "loc", "code"),
    [
        ({**SURVEY, "kind": "rating"}, [], "scale_required"),
        ({**SURVEY, "kind": "rating", "scale_min": 5, "scale_max": 3}, [], "scale_range"),
        ({**SURVEY, "kind": "csat", "scale_min": 0, "scale_max": 10}, [], "scale_fixed"),
        ({**SURVEY, "kind": "rating", "scale_min": 0, "scale_max": 11}, ["scale_max"], None),
        ({**SURVEY, "kind": "rating", "scale_min": True, "scale_max": 5}, ["scale_min"], None),
        ({**SURVEY, "delay_minutes": 10**30}, ["delay_minutes"], "less_than_equal"),
        ({**SURVEY, "delay_minutes": "5"}, ["delay_minutes"], "int_type"),
        ({**SURVEY, "active": "yes"}, ["active"], "bool_type"),
        ({**SURVEY, "touchpoint": "a\x00b"}, ["touchpoint"], "nul_character"),
        ({**SURVEY, "question": {"en": "why\x00"}}, ["question", "en"], "nul_character"),
        ({**SURVEY, "question": {"en": "\ud800"}}, ["question", "en"], UNICODE),
    ],
)
async def test_survey_refusals_have_codes(
    tenant: TenantHandle, body: dict[str, Any], loc: list[str], code: str | None
) -> None:
    # Sent as ASCII JSON: a lone surrogate travels as its escape, as a client would send it.
    response = await tenant.post("/v1/surveys", content=json.dumps(body), headers=JSON)
    problem = assert_problem(response, 422, "validation_error")
    first = problem["errors"][0]
    assert first["loc"][: len(loc) + 1] == ["body", *loc]
    if code == UNICODE:
        assert first["code"] in LONE_SURROGATE
    elif code is not None:
        assert first["code"] == code


async def test_survey_keys_in_paths_and_queries_are_checked(tenant: TenantHandle) -> None:
    await setup(tenant)
    assert (await tenant.get("/v1/surveys/delivery-nps")).status_code == 200
    for bad in ("Has%20Spaces", "a%00b", "x" * 64):
        problem = assert_problem(await tenant.get(f"/v1/surveys/{bad}"), 422, "validation_error")
        assert problem["errors"][0]["loc"] == ["path", "key"]
    for params in ({"survey": "a\x00b"}, {"customer": "a\x00b"}, {"trigger_ref": "a\x00b"}):
        problem = assert_problem(
            await tenant.get("/v1/invitations", params=params), 422, "validation_error"
        )
        assert problem["errors"][0]["loc"] == ["query", next(iter(params))]
    response = await tenant.get("/v1/customers/c-1/eligibility", params={"survey": "x" * 64})
    assert_problem(response, 422, "validation_error")


async def test_survey_kind_cannot_change(tenant: TenantHandle) -> None:
    await setup(tenant)
    response = await tenant.patch("/v1/surveys/delivery-nps", json={"kind": "csat"})
    assert_problem(response, 422, "validation_error")


# --- contact rules ------------------------------------------------------------------------


async def test_contact_rules_defaults_and_changes(tenant: TenantHandle) -> None:
    rules = (await tenant.get("/v1/contact-rules")).json()
    assert rules["frequency_days"] == 30
    assert rules["quiet_hours"] == {"start": "21:00:00", "end": "09:00:00"}
    assert rules["max_reminders"] == 1
    response = await tenant.patch(
        "/v1/contact-rules",
        json={"frequency_days": 14, "quiet_hours": {"start": "22:00", "end": "08:00"}},
    )
    assert response.json()["frequency_days"] == 14
    assert response.json()["quiet_hours"] == {"start": "22:00:00", "end": "08:00:00"}
    response = await tenant.patch(
        "/v1/contact-rules", json={"quiet_hours": {"start": "22:00", "end": "22:00"}}
    )
    assert_problem(response, 422, "validation_error")
    response = await tenant.patch("/v1/contact-rules", json={"frequency_days": None})
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours_empty"),
        ({"quiet_hours": {"start": "22:00+08:00", "end": "08:00"}}, "local_time"),
        ({"quiet_hours": {"start": 79200, "end": "08:00"}}, "local_time"),
        ({"quiet_hours": {"start": "22:00\x00", "end": "08:00"}}, "local_time"),
        ({"frequency_days": 2**31}, "less_than_equal"),
        ({"max_reminders": 1.5}, "int_type"),
    ],
)
async def test_contact_rule_refusals_have_codes(
    tenant: TenantHandle, body: dict[str, Any], code: str
) -> None:
    problem = assert_problem(
        await tenant.patch("/v1/contact-rules", json=body), 422, "validation_error"
    )
    assert problem["errors"][0]["code"] == code


# --- tenant isolation ---------------------------------------------------------------------


async def test_another_tenants_invitations_surveys_and_customers(
    tenant: TenantHandle, other_tenant: TenantHandle, settings: Settings
) -> None:
    await setup(tenant, delay_minutes=0)
    invitation = await invite(tenant)
    await invitation_service.process_due(
        tenant.session, utcnow() + timedelta(minutes=1), settings=settings
    )
    await setup(other_tenant, delay_minutes=0)  # same survey key in the other tenant is fine
    await tenant.post("/v1/surveys", json={**SURVEY, "key": "only-mine"})
    for url in (f"/v1/invitations/{invitation['id']}", "/v1/surveys/only-mine"):
        assert_problem(await other_tenant.get(url), 404, "not_found")
    response = await other_tenant.patch("/v1/surveys/only-mine", json={"active": False})
    assert_problem(response, 404, "not_found")
    await other_tenant.patch("/v1/contact-rules", json={"frequency_days": 7})
    assert (await tenant.get("/v1/contact-rules")).json()["frequency_days"] == 30
    assert_problem(
        await other_tenant.delete(f"/v1/invitations/{invitation['id']}"), 404, "not_found"
    )
    response = await other_tenant.post(
        f"/v1/invitations/{invitation['id']}/delivery", json={"status": "bounced"}
    )
    assert_problem(response, 404, "not_found")
    assert (await other_tenant.get("/v1/invitations")).json()["items"] == []
    stats = (await other_tenant.get("/v1/invitations/stats")).json()
    assert stats["total"]["created"] == 0
    # Same ref in the other tenant: its own customer, not bound by this tenant's contacts
    # or opt-outs.
    await tenant.post("/v1/customers/c-1/unsubscribe")
    assert (await other_tenant.get("/v1/customers/c-1/eligibility")).json()["eligible"] is True
    assert (await invite(other_tenant))["status"] == "scheduled"
    # The other tenant's key cannot answer this tenant's invitation with the token.
    mine = (await tenant.get(f"/v1/invitations/{invitation['id']}")).json()
    assert mine["status"] == "sent"
    assert mine["delivery"] is None
    rotated = (await other_tenant.post("/v1/signing-keys/rotate", json={"grace_hours": 0})).json()
    assert [k["kid"] for k in rotated] == [1, 2]
    assert (await tenant.get("/v1/signing-keys")).json()[0]["current"] is True
