"""Invitations through the API: surveys, contact rules, scheduling and suppression,
eligibility, opt-outs, and the worker's due, reminder and expiry steps."""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from feedback_api.config import Settings
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.time import utcnow
from feedback_api.models import Event
from feedback_api.worker import Worker
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.live import Live

JSON = {"Content-Type": "application/json"}
# A lone surrogate is refused by Pydantic's own string check (`string_unicode`) before the
# kit's (`invalid_unicode`) sees it; either is a 422 naming the field.
UNICODE = "lone surrogate"
LONE_SURROGATE = {"string_unicode", "invalid_unicode"}
SURVEY = {
    "key": "delivery-nps",
    "kind": "nps",
    "question": {
        "en": "How likely are you to recommend us?",
        "zh-CN": "您向朋友推荐我们的可能性有多大？",
    },
    "follow_up": {"en": "What is the main reason?", "zh": "主要原因是什么？"},
    "thank_you": {"en": "Thank you!"},
    "delay_minutes": 120,
}


async def setup(tenant: TenantHandle, quiet: dict[str, str] | None = None, **survey: Any) -> None:
    """A survey, and contact rules without quiet hours unless asked (tests must not depend
    on the time of day they run at)."""
    response = await tenant.post("/v1/surveys", json={**SURVEY, **survey})
    assert response.status_code == 201, response.text
    response = await tenant.patch("/v1/contact-rules", json={"quiet_hours": quiet})
    assert response.status_code == 200, response.text


async def invite(tenant: TenantHandle, customer: str = "c-1", **extra: Any) -> dict[str, Any]:
    body = {"customer": customer, "survey": "delivery-nps", **extra}
    response = await tenant.post("/v1/invitations", json=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def events(tenant: TenantHandle, type_: str) -> list[dict[str, Any]]:
    rows = (
        await tenant.session.scalars(
            select(Event)
            .where(Event.tenant_id == tenant.id, Event.type == type_)
            .order_by(Event.xid)
        )
    ).all()
    return [row.data for row in rows]


def seconds_until(moment: datetime) -> int:
    return math.ceil((moment - utcnow()).total_seconds())


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


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


# --- scheduling ---------------------------------------------------------------------------


async def test_schedule_after_the_delay_and_emit(tenant: TenantHandle) -> None:
    await setup(tenant)
    before = utcnow()
    invitation = await invite(
        tenant,
        trigger_ref="order-1",
        context={"touchpoint": "delivery", "agent_ref": "a-7", "attributes": {"sku": "x"}},
    )
    assert invitation["status"] == "scheduled"
    assert invitation["customer"] == "c-1"
    assert invitation["channel"] == "email"
    due = parse(invitation["due_at"])
    assert before + timedelta(minutes=120) <= due <= utcnow() + timedelta(minutes=120)
    assert parse(invitation["expires_at"]) == due + timedelta(hours=168)
    assert invitation["links"]["landing_url"].endswith("/r/" + invitation["links"]["token"])
    (scheduled,) = await events(tenant, "invitation.scheduled")
    assert scheduled["id"] == invitation["id"]
    assert scheduled["context"]["agent_ref"] == "a-7"


async def test_same_trigger_is_the_same_invitation(tenant: TenantHandle) -> None:
    await setup(tenant)
    first = await invite(tenant, trigger_ref="order-1")
    response = await tenant.post(
        "/v1/invitations",
        json={"customer": "c-1", "survey": "delivery-nps", "trigger_ref": "order-1"},
    )
    assert response.status_code == 200
    assert response.json()["id"] == first["id"]
    # Another trigger for the same customer is a new invitation (and meets the frequency rule).
    second = await invite(tenant, trigger_ref="order-2")
    assert second["id"] != first["id"]
    assert (second["status"], second["suppression_reason"]) == ("suppressed", "frequency")
    assert len(await events(tenant, "invitation.scheduled")) == 1
    assert len(await events(tenant, "invitation.suppressed")) == 1


async def test_frequency_boundary(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0)
    first = await invite(tenant)
    assert first["status"] == "scheduled"
    # Due 30 days less a second after the first: too soon. 30 days after: allowed.
    month = 30 * 24 * 3600
    just_inside = await invite(tenant, trigger_ref="t2", delay_seconds=month - 1)
    assert just_inside["suppression_reason"] == "frequency"
    just_outside = await invite(tenant, trigger_ref="t3", delay_seconds=month)
    assert just_outside["status"] == "scheduled"
    # Another customer is not affected.
    assert (await invite(tenant, "c-2"))["status"] == "scheduled"


async def test_cooldown_per_survey(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0, cooldown_days=90)
    other = {**SURVEY, "key": "support-csat", "kind": "csat", "delay_minutes": 0}
    assert (await tenant.post("/v1/surveys", json=other)).status_code == 201
    await invite(tenant)
    # 40 days later another survey passes the 30-day frequency rule …
    csat = await invite(tenant, survey="support-csat", delay_seconds=40 * 24 * 3600)
    assert csat["status"] == "scheduled"
    # … but the same survey is in its 90-day cooldown.
    again = await invite(tenant, trigger_ref="t2", delay_seconds=80 * 24 * 3600)
    assert again["suppression_reason"] == "cooldown"


async def test_quiet_hours_in_the_customers_time_zone(tenant: TenantHandle) -> None:
    await setup(tenant, quiet={"start": "21:00", "end": "09:00"}, delay_minutes=0)
    shanghai = ZoneInfo("Asia/Shanghai")
    await tenant.put("/v1/customers/c-sh", json={"timezone": "Asia/Shanghai"})
    # Due at 23:00 tomorrow in Shanghai: moved to 09:00 the day after, Shanghai time.
    tomorrow = (utcnow().astimezone(shanghai) + timedelta(days=1)).date()
    late = datetime.combine(tomorrow, datetime.min.time(), tzinfo=shanghai) + timedelta(hours=23)
    invitation = await invite(tenant, "c-sh", delay_seconds=seconds_until(late))
    due = parse(invitation["due_at"]).astimezone(shanghai)
    assert (due.date(), due.hour, due.minute) == (tomorrow + timedelta(days=1), 9, 0)
    assert invitation["timezone"] == "Asia/Shanghai"
    # The same UTC moment is 10:00 in Berlin (winter), 11:00 in summer: not quiet there.
    await tenant.put("/v1/customers/c-be", json={"timezone": "Europe/Berlin"})
    berlin = await invite(tenant, "c-be", delay_seconds=seconds_until(late))
    assert parse(berlin["due_at"]) - late < timedelta(minutes=1)


async def test_quiet_hours_do_not_hold_in_app_prompts(tenant: TenantHandle) -> None:
    await setup(tenant, quiet={"start": "00:00", "end": "23:59"}, delay_minutes=0)
    invitation = await invite(tenant, channel="app")
    assert parse(invitation["due_at"]) - utcnow() < timedelta(minutes=1)


async def test_quiet_hours_limit(tenant: TenantHandle) -> None:
    # Quiet almost all day: a due time now would move up to ~24 h, beyond 2 h allowed.
    now_local = utcnow()
    start = (now_local - timedelta(hours=1)).strftime("%H:%M")
    end = (now_local - timedelta(hours=2)).strftime("%H:%M")
    await setup(tenant, quiet={"start": start, "end": end}, delay_minutes=0, send_within_hours=2)
    invitation = await invite(tenant)
    assert (invitation["status"], invitation["suppression_reason"]) == (
        "suppressed",
        "quiet_hours_limit",
    )
    assert invitation["due_at"] is None
    assert invitation["links"] is None


async def test_unsubscribe_and_bounce_suppress(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0)
    response = await tenant.post("/v1/customers/c-1/unsubscribe", json={})
    assert response.status_code == 200
    assert response.json()["channel"] == "*"
    assert (await invite(tenant))["suppression_reason"] == "unsubscribed"
    (event,) = await events(tenant, "customer.unsubscribed")
    assert event["external_ref"] == "c-1"

    assert (
        await tenant.post("/v1/customers/c-2/unsubscribe", json={"channel": "sms"})
    ).status_code == 200
    assert (await invite(tenant, "c-2", channel="sms"))["suppression_reason"] == "channel_opted_out"
    assert (await invite(tenant, "c-2", channel="email", trigger_ref="t"))["status"] == "scheduled"

    # Lifting the opt-out lets the customer be asked again.
    assert (await tenant.delete("/v1/customers/c-1/unsubscribe")).status_code == 204
    assert (await invite(tenant, trigger_ref="t2"))["status"] == "scheduled"


async def test_unsubscribe_cancels_what_is_scheduled(tenant: TenantHandle) -> None:
    await setup(tenant)
    invitation = await invite(tenant)
    await tenant.post("/v1/customers/c-1/unsubscribe")
    got = (await tenant.get(f"/v1/invitations/{invitation['id']}")).json()
    assert got["status"] == "cancelled"
    assert got["links"] is None


async def test_erased_customers_are_never_asked_or_recreated(tenant: TenantHandle) -> None:
    await setup(tenant)
    first = await invite(tenant)
    assert (await tenant.delete("/v1/customers/c-1")).status_code == 204
    got = (await tenant.get(f"/v1/invitations/{first['id']}")).json()
    assert (got["status"], got["customer"], got["context"]) == ("cancelled", None, {})
    again = await invite(tenant, trigger_ref="after-erasure", context={"attributes": {"x": 1}})
    assert again["context"] == {}
    assert (again["status"], again["suppression_reason"], again["customer"]) == (
        "suppressed",
        "erased",
        None,
    )
    assert_problem(await tenant.get("/v1/customers/c-1"), 404, "not_found")


async def test_inactive_survey_suppresses(tenant: TenantHandle) -> None:
    await setup(tenant)
    await tenant.patch("/v1/surveys/delivery-nps", json={"active": False})
    assert (await invite(tenant))["suppression_reason"] == "survey_inactive"


async def test_unknown_survey_and_bad_bodies(tenant: TenantHandle) -> None:
    await setup(tenant)
    response = await tenant.post("/v1/invitations", json={"customer": "c-1", "survey": "nope"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["code"] == "unknown_survey"
    for bad in (
        {"survey": "delivery-nps"},
        {"customer": "c 1", "survey": "delivery-nps"},
        {"customer": "c-1", "survey": "delivery-nps", "channel": "fax"},
        {"customer": "c-1", "survey": "delivery-nps", "triggered_at": "yesterday"},
        {"customer": "c-1", "survey": "delivery-nps", "context": {"mood": "x"}},
        {"customer": "c-1", "survey": "delivery-nps", "triggered_at": "2099-01-01T00:00:00Z"},
    ):
        assert_problem(await tenant.post("/v1/invitations", json=bad), 422, "validation_error")


@pytest.mark.parametrize(
    ("extra", "loc", "code"),
    [
        ({"triggered_at": "1899-12-31T23:59:59Z"}, ["triggered_at"], "datetime_out_of_range"),
        ({"triggered_at": "1700000000"}, ["triggered_at"], "datetime_format"),
        ({"triggered_at": 1700000000}, ["triggered_at"], "datetime_format"),
        ({"triggered_at": "2026-07-01T09:00:00"}, ["triggered_at"], "timezone_aware"),
        ({"delay_seconds": 10**20}, ["delay_seconds"], "less_than_equal"),
        ({"delay_seconds": 60.0}, None, None),
        ({"trigger_ref": "a\x00b"}, ["trigger_ref"], "nul_character"),
        ({"trigger_ref": "x" * 256}, ["trigger_ref"], "string_too_long"),
        ({"context": {"touchpoint": "a\x00b"}}, ["context", "touchpoint"], "nul_character"),
        ({"context": {"agent_ref": "\ud800"}}, ["context", "agent_ref"], UNICODE),
    ],
)
async def test_invitation_refusals_have_codes(
    tenant: TenantHandle, extra: dict[str, Any], loc: list[str] | None, code: str | None
) -> None:
    await setup(tenant)
    body = {"customer": "c-1", "survey": "delivery-nps", **extra}
    response = await tenant.post("/v1/invitations", content=json.dumps(body), headers=JSON)
    if code is None:
        assert response.status_code == 201, response.text
        return
    problem = assert_problem(response, 422, "validation_error")
    first = problem["errors"][0]
    assert first["loc"] == ["body", *(loc or [])]
    assert first["code"] in (LONE_SURROGATE if code == UNICODE else {code})


async def test_stats_and_rotation_refuse_out_of_range_input(tenant: TenantHandle) -> None:
    for params in ({"from": "1899-12-31"}, {"to": "3000-01-01T00:00:00Z"}):
        problem = assert_problem(
            await tenant.get("/v1/invitations/stats", params=params), 422, "validation_error"
        )
        assert problem["errors"][0]["code"] == "datetime_out_of_range"
    widest = await tenant.get(
        "/v1/invitations/stats", params={"from": "1900-01-01", "to": "2999-12-31"}
    )
    assert widest.status_code == 200, widest.text
    problem = assert_problem(
        await tenant.post("/v1/signing-keys/rotate", json={"grace_hours": 10**30}),
        422,
        "validation_error",
    )
    assert problem["errors"][0]["code"] == "less_than_equal"


async def test_cancel_only_what_is_scheduled(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0)
    invitation = await invite(tenant)
    assert (await tenant.delete(f"/v1/invitations/{invitation['id']}")).status_code == 204
    assert_problem(
        await tenant.delete(f"/v1/invitations/{invitation['id']}"), 409, "invitation_not_pending"
    )
    # A cancelled invitation does not count as contact.
    assert (await invite(tenant, trigger_ref="t2"))["status"] == "scheduled"


async def test_batch(tenant: TenantHandle) -> None:
    await setup(tenant)
    items = [
        {"customer": "c-2", "survey": "delivery-nps", "trigger_ref": "o-1"},
        {"customer": "c-1", "survey": "delivery-nps", "trigger_ref": "o-2"},
        {"customer": "c-1", "survey": "delivery-nps", "trigger_ref": "o-3"},
        {"customer": "c-3", "survey": "nope"},
        {"customer": "c-3"},
        {"customer": "c-2", "survey": "delivery-nps", "trigger_ref": "o-1"},
    ]
    response = await tenant.post("/v1/invitations/batch", json={"items": items})
    assert response.status_code == 200, response.text
    result = response.json()
    assert [i["status"] for i in result["items"]] == [201, 201, 201, 422, 422, 200]
    # Within one customer, the first in the list wins.
    assert result["items"][1]["invitation_status"] == "scheduled"
    assert result["items"][2]["suppression_reason"] == "frequency"
    assert result["items"][5]["id"] == result["items"][0]["id"]
    assert (result["scheduled"], result["suppressed"], result["duplicates"], result["failed"]) == (
        2,
        1,
        1,
        2,
    )


async def test_list_filters_and_cursor(tenant: TenantHandle) -> None:
    await setup(tenant)
    for n in range(5):
        await invite(tenant, f"c-{n}", trigger_ref=f"o-{n}")
    await tenant.post("/v1/customers/c-9/unsubscribe")
    await invite(tenant, "c-9")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await tenant.get("/v1/invitations", params=params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    suppressed = (await tenant.get("/v1/invitations", params={"status": "suppressed"})).json()
    assert [i["customer"] for i in suppressed["items"]] == ["c-9"]
    by_ref = (await tenant.get("/v1/invitations", params={"trigger_ref": "o-3"})).json()
    assert [i["customer"] for i in by_ref["items"]] == ["c-3"]


# --- eligibility --------------------------------------------------------------------------


async def test_eligibility(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0, cooldown_days=90)
    url = "/v1/customers/c-1/eligibility"
    assert (await tenant.get(url)).json() == {
        "eligible": True,
        "reason": None,
        "next_eligible_at": None,
    }
    invitation = await invite(tenant)
    answer = (await tenant.get(url, params={"survey": "delivery-nps", "channel": "app"})).json()
    assert (answer["eligible"], answer["reason"]) == (False, "cooldown")
    assert parse(answer["next_eligible_at"]) == parse(invitation["due_at"]) + timedelta(days=90)
    answer = (await tenant.get(url, params={"channel": "app"})).json()
    assert answer["reason"] == "frequency"
    assert parse(answer["next_eligible_at"]) == parse(invitation["due_at"]) + timedelta(days=30)
    await tenant.post("/v1/customers/c-1/unsubscribe", json={"channel": "app"})
    answer = (await tenant.get(url, params={"channel": "app"})).json()
    assert answer == {"eligible": False, "reason": "channel_opted_out", "next_eligible_at": None}
    # Asking about an unknown customer creates nothing.
    assert (await tenant.get("/v1/customers/nobody/eligibility")).json()["eligible"] is True
    assert_problem(await tenant.get("/v1/customers/nobody"), 404, "not_found")


async def test_eligibility_in_quiet_hours(tenant: TenantHandle) -> None:
    now = utcnow()
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    await setup(tenant, quiet={"start": start, "end": end})
    answer = (await tenant.get("/v1/customers/c-1/eligibility", params={"channel": "sms"})).json()
    assert answer["reason"] == "quiet_hours"
    assert timedelta(hours=1) < parse(answer["next_eligible_at"]) - now <= timedelta(hours=2)
    answer = (await tenant.get("/v1/customers/c-1/eligibility", params={"channel": "app"})).json()
    assert answer["eligible"] is True


# --- the worker ---------------------------------------------------------------------------


async def test_due_reminder_expiry(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0, reminder_after_hours=48, expires_after_hours=120)
    await tenant.put(
        "/v1/customers/c-1", json={"email": "ann@example.com", "locale": "zh-CN", "name": "Ann"}
    )
    invitation = await invite(tenant)
    due = parse(invitation["due_at"])
    session = tenant.session

    await invitation_service.process_due(session, due - timedelta(seconds=1))
    assert await events(tenant, "invitation.due") == []

    await invitation_service.process_due(session, due)
    (sent,) = await events(tenant, "invitation.due")
    assert sent["status"] == "sent"
    message = sent["message"]
    assert message["question"] == "您向朋友推荐我们的可能性有多大？"
    assert message["follow_up"] == "主要原因是什么？"  # zh-CN falls back to zh
    assert [link["score"] for link in message["links"]] == list(range(11))
    assert message["links"][9]["url"] == message["landing_url"] + "?score=9"
    assert message["unsubscribe_url"] == message["landing_url"] + "/unsubscribe"
    assert sent["recipient"]["email"] == "ann@example.com"
    # Processing again at the same moment does nothing more.
    await invitation_service.process_due(session, due + timedelta(minutes=1))
    assert len(await events(tenant, "invitation.due")) == 1

    await invitation_service.process_due(session, due + timedelta(hours=48))
    (reminder,) = await events(tenant, "invitation.reminder_due")
    assert reminder["message"]["reminder"] == 1
    # max_reminders (1) reached: the next step is the expiry.
    await invitation_service.process_due(session, due + timedelta(hours=119))
    assert len(await events(tenant, "invitation.reminder_due")) == 1
    await invitation_service.process_due(session, due + timedelta(hours=120))
    (expired,) = await events(tenant, "invitation.expired")
    assert expired["status"] == "expired"
    assert expired["links"] is None


async def test_a_block_after_scheduling_suppresses_at_due_time(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0)
    await tenant.patch("/v1/contact-rules", json={"frequency_days": 0})
    first = await invite(tenant)
    later = await invite(tenant, trigger_ref="t2", delay_seconds=3600)
    await invitation_service.process_due(tenant.session, parse(first["due_at"]))
    # The first message bounces: the address is dead, so the second is not sent.
    await tenant.post(f"/v1/invitations/{first['id']}/delivery", json={"status": "bounced"})
    await invitation_service.process_due(tenant.session, parse(later["due_at"]))
    got = (await tenant.get(f"/v1/invitations/{later['id']}")).json()
    assert (got["status"], got["suppression_reason"]) == ("suppressed", "bounced")
    (suppressed,) = await events(tenant, "invitation.suppressed")
    assert suppressed["id"] == later["id"]


async def test_bounce_blocks_the_channel_and_stops_reminders(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0, reminder_after_hours=24)
    invitation = await invite(tenant)
    url = f"/v1/invitations/{invitation['id']}/delivery"
    assert_problem(await tenant.post(url, json={"status": "delivered"}), 409, "invitation_not_sent")
    due = parse(invitation["due_at"])
    await invitation_service.process_due(tenant.session, due)
    response = await tenant.post(url, json={"status": "bounced"})
    assert response.status_code == 200
    assert response.json()["delivery"] == "bounced"
    await invitation_service.process_due(tenant.session, due + timedelta(hours=25))
    assert await events(tenant, "invitation.reminder_due") == []
    later = await invite(tenant, trigger_ref="t2", delay_seconds=31 * 24 * 3600)
    assert later["suppression_reason"] == "bounced"
    assert_problem(await tenant.post(url, json={"status": "lost"}), 422, "validation_error")


async def test_reminders_respect_quiet_hours(tenant: TenantHandle) -> None:
    await setup(
        tenant, quiet={"start": "21:00", "end": "09:00"}, delay_minutes=0, reminder_after_hours=13
    )
    await tenant.put("/v1/customers/c-ny", json={"timezone": "America/New_York"})
    new_york = ZoneInfo("America/New_York")
    tomorrow = (utcnow().astimezone(new_york) + timedelta(days=1)).date()
    ten_pm = datetime.combine(tomorrow, datetime.min.time(), tzinfo=new_york) + timedelta(hours=22)
    invitation = await invite(tenant, "c-ny", delay_seconds=seconds_until(ten_pm))
    due = parse(invitation["due_at"])
    assert due.astimezone(new_york).replace(tzinfo=None) == datetime.combine(
        tomorrow + timedelta(days=1), datetime.min.time()
    ) + timedelta(hours=9)
    await invitation_service.process_due(tenant.session, due)
    # 13 hours after 09:00 is 22:00, quiet: the reminder waits for 09:00 the next morning.
    await invitation_service.process_due(tenant.session, due + timedelta(hours=13))
    assert await events(tenant, "invitation.reminder_due") == []
    await invitation_service.process_due(tenant.session, due + timedelta(hours=24))
    (reminder,) = await events(tenant, "invitation.reminder_due")
    assert reminder["reminders_sent"] == 1


async def test_the_worker_sends_due_invitations(live: Live, settings: Settings) -> None:
    headers = live.headers
    await live.client.post("/v1/surveys", json={**SURVEY, "delay_minutes": 0}, headers=headers)
    await live.client.patch("/v1/contact-rules", json={"quiet_hours": None}, headers=headers)
    created = await live.client.post(
        "/v1/invitations", json={"customer": "c-1", "survey": "delivery-nps"}, headers=headers
    )
    assert created.status_code == 201
    # One tick of a real worker with its real tickers, no call into the service.
    await Worker(live.sessionmaker, settings, periodic=()).tick(force=True)
    got = await live.client.get(f"/v1/invitations/{created.json()['id']}", headers=headers)
    assert got.json()["status"] == "sent"
    assert got.json()["sent_at"] is not None


# --- exactly once with several workers ----------------------------------------------------


async def test_two_workers_send_each_invitation_exactly_once(live: Live) -> None:
    async def call(method: str, url: str, body: Any = None) -> dict[str, Any]:
        response = await live.client.request(method, url, json=body, headers=live.headers)
        assert response.status_code < 300, response.text
        result: dict[str, Any] = response.json()
        return result

    await call("POST", "/v1/surveys", {**SURVEY, "delay_minutes": 0})
    await call("PATCH", "/v1/contact-rules", {"quiet_hours": None})
    items = [{"customer": f"c-{n}", "survey": "delivery-nps"} for n in range(40)]
    batch = await call("POST", "/v1/invitations/batch", {"items": items})
    assert batch["scheduled"] == 40
    now = utcnow() + timedelta(minutes=1)

    async def worker() -> None:
        async with live.sessionmaker() as session:
            while await invitation_service.process_due(session, now, limit=3) > 0:
                await session.commit()

    await asyncio.gather(worker(), worker(), worker())
    async with live.sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT data->>'id', count(*) FROM events WHERE tenant_id = :t "
                    "AND type = 'invitation.due' GROUP BY 1"
                ),
                {"t": live.tenant_id},
            )
        ).all()
    assert len(rows) == 40
    assert {count for _, count in rows} == {1}


# --- the funnel ---------------------------------------------------------------------------


async def test_funnel_against_brute_force(tenant: TenantHandle) -> None:
    rng = random.Random(7)
    await setup(tenant, delay_minutes=0)
    other = {**SURVEY, "key": "support-csat", "kind": "csat", "delay_minutes": 0}
    assert (await tenant.post("/v1/surveys", json=other)).status_code == 201
    for n in range(6):
        await tenant.post(f"/v1/customers/u-{n}/unsubscribe", json={})
    items = [
        {
            "customer": f"{'u' if rng.random() < 0.1 else 'c'}-{rng.randrange(40)}",
            "survey": rng.choice(["delivery-nps", "support-csat"]),
            "channel": rng.choice(["email", "sms", "app"]),
            "trigger_ref": f"o-{n}",
        }
        for n in range(80)
    ]
    await tenant.post("/v1/invitations/batch", json={"items": items})
    await invitation_service.process_due(tenant.session, utcnow() + timedelta(minutes=1))
    invitations = (await tenant.get("/v1/invitations", params={"limit": 200})).json()["items"]
    for inv in invitations:
        if inv["status"] != "sent":
            continue
        roll = rng.random()
        if roll < 0.3:
            await tenant.post(f"/v1/invitations/{inv['id']}/delivery", json={"status": "delivered"})
        elif roll < 0.4:
            await tenant.post(f"/v1/invitations/{inv['id']}/delivery", json={"status": "bounced"})
        if rng.random() < 0.5:
            survey_max = 10 if inv["survey"] == "delivery-nps" else 5
            await tenant.client.post(
                f"/r/{inv['links']['token']}", json={"score": rng.randint(1, survey_max)}
            )
    invitations = (await tenant.get("/v1/invitations", params={"limit": 200})).json()["items"]

    def expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
        sent = [r for r in rows if r["sent_at"]]
        responded = [r for r in rows if r["responded_at"]]
        reasons: dict[str, int] = {}
        for r in rows:
            if r["status"] == "suppressed":
                reasons[r["suppression_reason"]] = reasons.get(r["suppression_reason"], 0) + 1
        minutes = [
            (parse(r["responded_at"]) - parse(r["sent_at"])).total_seconds() / 60 for r in responded
        ]
        return {
            "created": len(rows),
            "scheduled": sum(r["status"] != "suppressed" for r in rows),
            "suppressed": sum(r["status"] == "suppressed" for r in rows),
            "suppressed_by_reason": reasons,
            "sent": len(sent),
            "delivered": sum(r["delivery"] == "delivered" for r in rows),
            "bounced": sum(r["delivery"] == "bounced" for r in rows),
            "responded": len(responded),
            "response_rate": len(responded) / len(sent) if sent else None,
            "median_minutes_to_respond": round(statistics.median(minutes), 2) if minutes else None,
        }

    def shown(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k != "group"}

    stats = (await tenant.get("/v1/invitations/stats")).json()
    assert stats["groups"] == []
    want = expected(invitations)
    assert want["suppressed"] > 0
    assert want["responded"] > 0
    assert want["bounced"] > 0
    got = shown(stats["total"])
    assert got.pop("median_minutes_to_respond") == pytest.approx(
        want.pop("median_minutes_to_respond"), abs=0.01
    )
    assert got == want
    for by, field in (("survey", "survey"), ("channel", "channel")):
        grouped = (await tenant.get("/v1/invitations/stats", params={"by": by})).json()
        keys = {r[field] for r in invitations}
        assert {g["group"] for g in grouped["groups"]} == keys
        for group in grouped["groups"]:
            rows = [r for r in invitations if r[field] == group["group"]]
            want = expected(rows)
            got = shown(group)
            assert got.pop("median_minutes_to_respond") == pytest.approx(
                want.pop("median_minutes_to_respond"), abs=0.01
            )
            assert got == want, group["group"]


# --- tenant isolation ---------------------------------------------------------------------


async def test_another_tenants_invitations_surveys_and_customers(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    await setup(tenant, delay_minutes=0)
    invitation = await invite(tenant)
    await invitation_service.process_due(tenant.session, utcnow() + timedelta(minutes=1))
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
