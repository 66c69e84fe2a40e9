"""Autopilot as a hostile or unlucky client meets it: values that pass one check and not
the next, a poisoned member in the worker's sweep, and races on a live server (each test
was a bug found by attacking the first version)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from feedback_api.compat.delighted import autopilot
from feedback_api.config import Settings
from feedback_api.db import asyncpg_dsn
from tests.compat.test_delighted_transport import BASE, basic, call
from tests.fixtures.auth import TenantHandle
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture


def delighted_shaped(answer: Any) -> None:
    assert answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    if answer.status_code >= 400:
        body = answer.json()
        assert set(body) <= {"status", "message", "errors"}, body
        assert body["status"] == answer.status_code


# --- 1. a person named in the query string with a bad address: 500 -----------------------


@pytest.mark.parametrize(
    ("method", "platform", "params"),
    [
        ("GET", "email", {"person_email": "not-an-email"}),
        ("GET", "sms", {"person_phone_number": "+1"}),
        ("DELETE", "email", {"person_email": "not-an-email"}),
        ("DELETE", "sms", {"person_phone_number": "12345"}),
    ],
)
async def test_query_string_person_that_does_not_validate_is_a_422_not_a_500(
    tenant: TenantHandle, method: str, platform: str, params: dict[str, str]
) -> None:
    answer = await call(tenant, method, f"/autopilot/{platform}/memberships", params=params)
    delighted_shaped(answer)
    assert answer.status_code == 422


# --- 2. addresses and properties that pass the edge but not InvitationCreate: 500 ---------


@pytest.mark.parametrize("email", ["a#b@example.com", "a/b@example.com", "a?b@example.com"])
async def test_a_valid_email_with_hash_slash_or_question_mark_can_join(
    tenant: TenantHandle, email: str
) -> None:
    # RFC 5322 atext allows # / ?; the email is used as the customer's external_ref, which
    # InvitationCreate refuses, so the first survey's InvitationCreate(...) raises.
    answer = await call(
        tenant, "POST", "/autopilot/email/memberships", json={"person_email": email}
    )
    delighted_shaped(answer)
    assert answer.status_code == 201


@pytest.mark.parametrize("email", ["c#d@example.com", "c/d@example.com", "c?d%@example.com"])
async def test_a_person_with_such_an_address_is_created_and_surveyed(
    tenant: TenantHandle, email: str
) -> None:
    made = await call(tenant, "POST", "/people", json={"email": email})
    assert made.status_code == 200, made.text
    assert made.json()["email"] == email
    assert isinstance(made.json()["survey_scheduled_at"], int)
    assert (await call(tenant, "DELETE", f"/people/email:{quote(email, safe='')}")).json() == {
        "ok": True
    }


async def test_long_survey_property_is_a_delighted_422_not_a_500(tenant: TenantHandle) -> None:
    answer = await call(
        tenant,
        "POST",
        "/autopilot/email/memberships",
        json={"person_email": "a@example.com", "properties": {"question_product_name": "x" * 9000}},
    )
    delighted_shaped(answer)
    assert answer.status_code == 422


@pytest.mark.parametrize(
    "properties",
    [{"k": "\x00"}, {"k\x00": 1}, {"question_x": {"a": "\ud800"}}, {"locale": "x" * 500}],
)
async def test_unstorable_properties_get_a_delighted_shaped_422(
    tenant: TenantHandle, properties: dict[str, Any]
) -> None:
    # These reach the database (22P05/22P02/22001) and come back as problem+json.
    answer = await tenant.client.post(
        f"{BASE}/autopilot/email/memberships",
        content=json.dumps({"person_email": "a@example.com", "properties": properties}),
        headers={**basic(tenant.admin_key, colon=True), "Content-Type": "application/json"},
    )
    delighted_shaped(answer)
    assert answer.status_code == 422


async def test_properties_are_held_to_the_attribute_limits(tenant: TenantHandle) -> None:
    # 100 kB under one key lands in the customer's attributes (limit 8 kB elsewhere).
    answer = await call(
        tenant,
        "POST",
        "/autopilot/email/memberships",
        json={"person_email": "a@example.com", "properties": {"k": "x" * 100_000}},
    )
    assert answer.status_code == 422, answer.text[:200]


# --- 3. one poisoned membership stops every tenant's sweep, every tick ---------------------


async def _pause(tenant: TenantHandle, active: bool) -> None:
    r = await tenant.patch("/v1/surveys/delighted", json={"active": active})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "poison",
    [
        # a ref our invitations refuse (no longer reachable through the API)
        "UPDATE customers SET external_ref = 'a#b' WHERE tenant_id = :t"
        " AND email = 'p@example.com'",
        # survey properties over our limits (refused at the edge now)
        "UPDATE autopilot_memberships SET properties = jsonb_build_object('question_x', "
        "repeat('x', 9000)) WHERE tenant_id = :t",
    ],
)
async def test_a_poisoned_member_does_not_stop_other_tenants_rounds(
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    settings: Settings,
    poison: str,
) -> None:
    await call(tenant, "POST", "/people", json={"email": "seed@example.com"})  # the survey
    await _pause(tenant, False)
    joined = await call(
        tenant, "POST", "/autopilot/email/memberships", json={"person_email": "p@example.com"}
    )
    assert joined.status_code == 201, joined.text  # no first round while paused
    await tenant.session.execute(text(poison), {"t": tenant.id})
    await _pause(tenant, True)
    ok = await call(
        other_tenant,
        "POST",
        "/autopilot/email/memberships",
        key=other_tenant.admin_key,
        json={"person_email": "ok@example.com"},
    )
    assert ok.status_code == 201
    await tenant.session.execute(
        text(
            "UPDATE autopilot_memberships SET next_at = now() - make_interval(days => "
            "CASE WHEN tenant_id = :t THEN 2 ELSE 1 END)"
        ),
        {"t": tenant.id},
    )
    await tenant.session.execute(
        text("UPDATE invitations SET due_at = due_at - interval '60 days'")
    )
    failed = None
    try:
        async with tenant.session.begin_nested():  # the worker's ticker transaction
            await autopilot.schedule_due(tenant.session, settings)
    except Exception as exc:
        failed = exc
    theirs = (await other_tenant.get("/v1/invitations")).json()["items"]
    assert len(theirs) == 2, f"other tenant's round not scheduled; sweep raised {failed!r}"
    assert failed is None
    (next_at,) = (
        await tenant.session.execute(
            text(
                "SELECT next_at - clock_timestamp() FROM autopilot_memberships WHERE tenant_id = :t"
            ),
            {"t": tenant.id},
        )
    ).one()
    assert timedelta(hours=23) < next_at <= timedelta(days=1)  # set aside, not every tick


# --- 4. races, on a live server -------------------------------------------------------------


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def test_join_racing_a_delete_of_the_same_member_is_not_a_500(
    processes: Processes, database_url: str
) -> None:
    key = processes.tenant("race-join-delete")
    url = f"http://127.0.0.1:{processes.serve()}{BASE}/autopilot/email/memberships"
    async with (
        httpx.AsyncClient(headers=_auth(key), timeout=30) as a,
        httpx.AsyncClient(headers=_auth(key), timeout=30) as b,
    ):
        first = await a.post(url, json={"person_email": "r@example.com"})
        assert first.status_code == 201, first.text
        # Hold the membership's row lock so that the DELETE queues first, then the re-join
        # (an existing member: its INSERT … DO NOTHING passes, its SELECT … FOR UPDATE waits).
        holder = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            tx = holder.transaction()
            await tx.start()
            await holder.execute(
                "SELECT 1 FROM autopilot_memberships m JOIN customers c ON c.id = m.customer_id"
                " WHERE c.email = 'r@example.com' FOR UPDATE OF m"
            )
            leave = asyncio.create_task(
                b.request("DELETE", url, json={"person_email": "r@example.com"})
            )
            await asyncio.sleep(0.5)
            join = asyncio.create_task(a.post(url, json={"person_email": "r@example.com"}))
            await asyncio.sleep(0.5)
            await tx.commit()
            left, joined = await leave, await join
        finally:
            await holder.close()
    assert left.status_code == 202, left.text
    delighted_shaped(joined)
    assert joined.status_code == 201  # a new membership, with its first survey


async def test_first_members_of_a_new_tenant_in_parallel(processes: Processes) -> None:
    """Concurrent joins, some of the same new person, on a tenant without the survey yet."""
    key = processes.tenant("race-first-use")
    url = f"http://127.0.0.1:{processes.serve()}{BASE}/autopilot/email/memberships"
    async with (
        httpx.AsyncClient(headers=_auth(key), timeout=30) as a,
        httpx.AsyncClient(headers=_auth(key), timeout=30) as b,
    ):
        answers = await asyncio.gather(
            a.post(url, json={"person_email": "x@example.com"}),
            b.post(url, json={"person_email": "x@example.com"}),
            a.post(url, json={"person_email": "y@example.com"}),
            b.post(url, json={"person_email": "z@example.com"}),
        )
        for answer in answers:
            delighted_shaped(answer)
            assert answer.status_code == 201
        listed = (await a.get(url)).json()
    assert sorted(m["person"]["email"] for m in listed) == [
        "x@example.com",
        "y@example.com",
        "z@example.com",
    ]
