"""Scheduling invitations: the delay, frequency, cooldown, quiet hours, blocks and
suppression, batches, listing, and eligibility."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from feedback_api.kit.time import utcnow
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.invitations import (
    JSON,
    LONE_SURROGATE,
    SURVEY,
    UNICODE,
    events,
    invite,
    parse,
    seconds_until,
    setup,
)

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
