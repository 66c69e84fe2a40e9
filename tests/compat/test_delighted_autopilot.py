"""Delighted's Autopilot through the app: the configuration from our survey and contact
rules, members added, listed page by page, removed, and each member's next round scheduled
by the worker's sweep under the contact rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from feedback_api.compat.delighted import autopilot
from feedback_api.config import Settings
from feedback_api.kit.time import utcnow
from tests.compat.test_delighted_transport import basic, call
from tests.fixtures.auth import TenantHandle

DAY = 86_400


async def members(tenant: TenantHandle, platform: str = "email", **params: Any) -> Any:
    answer = await call(tenant, "GET", f"/autopilot/{platform}/memberships", params=params)
    assert answer.status_code == 200, answer.text
    return answer


async def test_the_configuration_is_the_delighted_survey_and_the_contact_rules(
    tenant: TenantHandle,
) -> None:
    before = (await call(tenant, "GET", "/autopilot/email.json")).json()
    assert before == {
        "platform_id": "email",
        "active": False,  # no `delighted` survey yet
        "frequency": 30 * DAY,
        "created_at": None,
        "updated_at": None,
    }
    await call(tenant, "POST", "/people", json={"email": "a@example.com"})  # creates it
    assert (await tenant.patch("/v1/contact-rules", json={"frequency_days": 60})).status_code == 200
    sms = (await call(tenant, "GET", "/autopilot/sms")).json()
    assert (sms["platform_id"], sms["active"], sms["frequency"]) == ("sms", True, 60 * DAY)
    assert isinstance(sms["created_at"], int)
    await tenant.patch("/v1/surveys/delighted", json={"cooldown_days": 90, "active": False})
    paused = (await call(tenant, "GET", "/autopilot/sms")).json()
    assert (paused["active"], paused["frequency"]) == (False, 90 * DAY)
    assert (await call(tenant, "GET", "/autopilot/whatsapp")).status_code == 422


async def test_members_join_with_a_first_survey_and_leave_with_it_cancelled(
    tenant: TenantHandle,
) -> None:
    joined = await call(
        tenant,
        "POST",
        "/autopilot/email/memberships",
        json={
            "person_email": "ann@example.com",
            "person_name": "Ann",
            "properties": {"plan": "gold", "question_product_name": "the trench coat"},
        },
    )
    assert joined.status_code == 201, joined.text
    body = joined.json()
    assert (body["person"]["email"], body["person"]["name"]) == ("ann@example.com", "Ann")
    assert body["properties"] == {"plan": "gold", "question_product_name": "the trench coat"}
    (member,) = (await members(tenant)).json()
    request = member["next_survey_request"]
    assert isinstance(request["survey_scheduled_at"], int)
    assert request["properties"]["question_product_name"] == "the trench coat"
    (invitation,) = (await tenant.get("/v1/invitations")).json()["items"]
    assert (invitation["id"], invitation["survey"], invitation["channel"]) == (
        request["id"],
        "delighted",
        "email",
    )
    assert invitation["context"]["attributes"] == {"question_product_name": "the trench coat"}
    customer = (await tenant.get("/v1/customers/ann@example.com")).json()
    assert customer["attributes"] == {"plan": "gold"}

    again = await call(
        tenant,
        "POST",
        "/autopilot/email/memberships",
        json={"person_id": body["person"]["id"], "properties": {"plan": "platinum"}},
    )
    assert again.status_code == 201, again.text
    assert len((await tenant.get("/v1/invitations")).json()["items"]) == 1  # same schedule
    assert (await members(tenant)).json()[0]["next_survey_request"]["id"] == request["id"]
    assert (await members(tenant, "sms")).json() == []  # another platform

    # The Python SDK names the person in a JSON body, Node and Ruby in the query string.
    left = await call(
        tenant, "DELETE", "/autopilot/email/memberships", json={"person_id": body["person"]["id"]}
    )
    assert left.status_code == 202, left.text
    assert left.json()["person"]["id"] == body["person"]["id"]
    assert (await members(tenant)).json() == []
    (cancelled,) = (await tenant.get("/v1/invitations")).json()["items"]
    assert cancelled["status"] == "cancelled"
    assert (await tenant.get("/v1/customers/ann@example.com")).status_code == 200  # stays
    twice = await call(
        tenant,
        "DELETE",
        "/autopilot/email/memberships",
        params={"person_email": "ann@example.com"},
    )
    assert (twice.status_code, twice.json()["message"]) == (404, "Not Found")


async def test_a_member_needs_the_platforms_address_and_one_identifier(
    tenant: TenantHandle,
) -> None:
    sms_without_phone = await call(
        tenant, "POST", "/autopilot/sms/memberships", json={"person_email": "b@example.com"}
    )
    assert sms_without_phone.status_code == 422
    assert list(sms_without_phone.json()["errors"]) == ["person_phone_number"]
    two = await call(
        tenant,
        "POST",
        "/autopilot/email/memberships",
        json={"person_email": "b@example.com", "person_phone_number": "+4915112345678"},
    )
    assert two.status_code == 422
    unknown = await call(
        tenant, "POST", "/autopilot/email/memberships", json={"person_id": "nobody"}
    )
    assert unknown.status_code == 404
    assert (await call(tenant, "GET", "/people")).json() == []  # nothing half-made


async def test_memberships_page_with_an_absolute_link_and_filter_by_person(
    tenant: TenantHandle,
) -> None:
    for i in range(5):
        await call(
            tenant,
            "POST",
            "/autopilot/sms/memberships",
            json={"person_phone_number": f"+491511234567{i}"},
        )
    first = await members(tenant, "sms", per_page=2)
    seen = [m["person"]["phone_number"] for m in first.json()]
    link = first.headers["link"]
    while link:
        url = link.split(";")[0].strip("<>")
        assert url.startswith("http://")
        assert "," not in url
        page = await tenant.client.get(url, headers=basic(tenant.admin_key, colon=True))
        seen += [m["person"]["phone_number"] for m in page.json()]
        link = page.headers.get("link")
    assert seen == [f"+491511234567{i}" for i in range(5)]
    one = await members(tenant, "sms", person_phone_number="+4915112345673")
    assert [m["person"]["phone_number"] for m in one.json()] == ["+4915112345673"]
    assert (await members(tenant, "sms", person_email="nobody@example.com")).json() == []


async def _due_now(tenant: TenantHandle, first_round_days_ago: int) -> None:
    """Move the member's first round into the past, and their next round to now."""
    await tenant.session.execute(
        text(
            "UPDATE invitations SET due_at = due_at - make_interval(days => :d), "
            "triggered_at = triggered_at - make_interval(days => :d) WHERE tenant_id = :t"
        ),
        {"d": first_round_days_ago, "t": tenant.id},
    )
    await tenant.session.execute(
        text(
            "UPDATE autopilot_memberships SET next_at = clock_timestamp() - interval '1 second'"
            " WHERE tenant_id = :t"
        ),
        {"t": tenant.id},
    )


async def test_the_sweep_schedules_each_round_under_the_contact_rules(
    tenant: TenantHandle, other_tenant: TenantHandle, settings: Settings
) -> None:
    await call(
        tenant,
        "POST",
        "/autopilot/email/memberships",
        json={"person_email": "c@example.com", "properties": {"question_product_name": "X"}},
    )
    await _due_now(tenant, 40)
    assert await autopilot.schedule_due(tenant.session, settings) == 1
    items = (await tenant.get("/v1/invitations")).json()["items"]
    assert sorted(i["status"] for i in items) == ["scheduled", "scheduled"]
    (member,) = (await members(tenant)).json()
    second = next(i for i in items if i["id"] == member["next_survey_request"]["id"])
    assert second["context"]["attributes"] == {"question_product_name": "X"}
    assert await autopilot.schedule_due(tenant.session, settings) == 0  # next in 30 days
    (next_at,) = (
        await tenant.session.execute(
            text("SELECT next_at FROM autopilot_memberships WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
    ).one()
    assert next_at - utcnow() > timedelta(days=29)

    # A round the rules hold back (here: surveyed 10 days ago) is suppressed, not skipped
    # silently, and tried again a frequency later.
    await _due_now(tenant, 0)
    await tenant.session.execute(
        text("UPDATE invitations SET due_at = now() - interval '10 days' WHERE tenant_id = :t"),
        {"t": tenant.id},
    )
    assert await autopilot.schedule_due(tenant.session, settings) == 1
    statuses = [i["status"] for i in (await tenant.get("/v1/invitations")).json()["items"]]
    assert sorted(statuses) == ["scheduled", "scheduled", "suppressed"]
    assert (await members(tenant)).json()[0]["next_survey_request"] is None

    # An opted-out member's rounds are suppressed with the reason; other tenants see none.
    await call(tenant, "POST", "/unsubscribes", json={"person_email": "c@example.com"})
    await _due_now(tenant, 100)
    assert await autopilot.schedule_due(tenant.session, settings) == 1
    reasons = [
        i["suppression_reason"]
        for i in (await tenant.get("/v1/invitations")).json()["items"]
        if i["status"] == "suppressed"
    ]
    assert sorted(reasons) == ["frequency", "unsubscribed"]
    theirs = await call(
        other_tenant, "GET", "/autopilot/email/memberships", key=other_tenant.admin_key
    )
    assert theirs.json() == []


async def test_erasure_ends_the_membership(tenant: TenantHandle) -> None:
    joined = await call(
        tenant, "POST", "/autopilot/email/memberships", json={"person_email": "d@example.com"}
    )
    erased = await call(tenant, "DELETE", f"/people/{joined.json()['person']['id']}")
    assert erased.status_code == 202
    assert (await members(tenant)).json() == []


async def test_another_tenants_key_cannot_see_add_or_remove_a_member(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    joined = await call(
        tenant, "POST", "/autopilot/email/memberships", json={"person_email": "e@example.com"}
    )
    person_id = joined.json()["person"]["id"]
    theirs = other_tenant.admin_key
    by_id = {"person_id": person_id}
    assert (
        await call(other_tenant, "POST", "/autopilot/email/memberships", key=theirs, json=by_id)
    ).status_code == 404
    assert (
        await call(other_tenant, "DELETE", "/autopilot/email/memberships", key=theirs, json=by_id)
    ).status_code == 404
    removed_by_email = await call(
        other_tenant,
        "DELETE",
        "/autopilot/email/memberships",
        key=theirs,
        params={"person_email": "e@example.com"},
    )
    assert removed_by_email.status_code == 404
    listed = await call(
        other_tenant, "GET", "/autopilot/email/memberships", key=theirs, params=by_id
    )
    assert listed.status_code == 404  # no such person for them
    assert [m["person"]["id"] for m in (await members(tenant)).json()] == [person_id]
