"""Public replies and the customer's consent to publish: one reply per response, edited in
place with its version, audited without its text, sent as `response.replied`; consent off
unless given, on submission or with the one-tap page's checkbox (shown only by tenants that
publish reviews); erasure takes consent and reply away."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update

from feedback_api.config import Settings
from feedback_api.models import AuditLog, Event, Tenant
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.invitations import FORM, path_of, responses, sent_invitation

ITEM = {"kind": "nps", "score": 2, "channel": "crm", "comment": "Cold food", "customer": "c-9"}


async def posted(tenant: TenantHandle, **extra: Any) -> dict[str, Any]:
    created = await tenant.post("/v1/responses", json={**ITEM, **extra})
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_consent_is_off_unless_given(tenant: TenantHandle) -> None:
    assert (await posted(tenant))["publish_consent"] is False
    given = await posted(tenant, publish_consent=True)
    assert given["publish_consent"] is True
    assert (await tenant.get(f"/v1/responses/{given['id']}")).json()["publish_consent"] is True
    batch = await tenant.post(
        "/v1/responses/batch", json={"items": [ITEM, {**ITEM, "publish_consent": True}]}
    )
    ids = [i["id"] for i in batch.json()["items"]]
    stored = [(await tenant.get(f"/v1/responses/{i}")).json()["publish_consent"] for i in ids]
    assert stored == [False, True]
    bad = await tenant.post("/v1/responses", json={**ITEM, "publish_consent": "maybe"})
    assert_problem(bad, 422, "validation_error")


async def test_a_reply_is_written_edited_audited_and_sent(
    tenant: TenantHandle, session: Any
) -> None:
    response = await posted(tenant)
    url = f"/v1/responses/{response['id']}/reply"
    assert_problem(await tenant.get(url), 404, "not_found")
    first = await tenant.post(url, json={"body": "Sorry: we changed the kitchen's warmers."})
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["response_id"]) == (1, response["id"])
    edited = await tenant.post(url, json={"body": "Sorry! The warmers are new."})
    assert edited.status_code == 200
    assert edited.json()["version"] == 2
    assert edited.json()["created_at"] == first.json()["created_at"]
    assert (await tenant.get(url)).json()["body"] == "Sorry! The warmers are new."

    audit = (
        await session.scalars(
            select(AuditLog).where(
                AuditLog.tenant_id == tenant.id, AuditLog.action == "response.replied"
            )
        )
    ).all()
    assert sorted(a.data["version"] for a in audit) == [1, 2]
    assert all("warmers" not in json.dumps(a.data) for a in audit)  # never the text
    assert {a.actor_key_id for a in audit} != {None}
    sent = (
        await session.scalars(
            select(Event).where(Event.tenant_id == tenant.id, Event.type == "response.replied")
        )
    ).all()
    assert len(sent) == 2


async def test_replies_are_the_tenants_own(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    response = await posted(tenant)
    url = f"/v1/responses/{response['id']}/reply"
    assert_problem(await other_tenant.post(url, json={"body": "hi"}), 404, "not_found")
    assert (await tenant.post(url, json={"body": "ours"})).status_code == 201
    assert_problem(await other_tenant.get(url), 404, "not_found")
    assert (await tenant.get(url)).json()["body"] == "ours"


async def test_bad_replies_get_a_problem(tenant: TenantHandle) -> None:
    response = await posted(tenant)
    url = f"/v1/responses/{response['id']}/reply"
    for body in ({}, {"body": ""}, {"body": "a\x00b"}, {"body": "x" * 5001}, {"body": 3}):
        assert_problem(await tenant.post(url, json=body), 422, "validation_error")


async def test_erasure_withdraws_consent_and_deletes_the_reply(tenant: TenantHandle) -> None:
    response = await posted(tenant, publish_consent=True)
    url = f"/v1/responses/{response['id']}/reply"
    assert (await tenant.post(url, json={"body": "Dear Ann, sorry."})).status_code == 201
    assert (await tenant.delete("/v1/customers/c-9")).status_code == 204
    after = (await tenant.get(f"/v1/responses/{response['id']}")).json()
    assert (after["publish_consent"], after["comment"], after["customer"]) == (False, None, None)
    assert_problem(await tenant.get(url), 404, "not_found")


async def test_the_one_tap_page_asks_only_tenants_that_publish(
    tenant: TenantHandle, settings: Settings, session: Any
) -> None:
    due = await sent_invitation(tenant, settings)
    url = path_of(due["message"]["landing_url"])
    assert 'name="publish"' not in (await tenant.client.get(url)).text
    await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(public_feeds=True))
    page = await tenant.client.get(url)
    assert 'name="publish" value="yes"' in page.text
    assert "checked" not in page.text.split('name="publish"')[1].split(">")[0]  # off
    question = await tenant.client.get(url, headers={"Accept": "application/json"})
    assert question.json()["asks_publish_consent"] is True

    await tenant.client.post(url, content="score=3&comment=Late", headers=FORM)
    [stored] = await responses(tenant)
    assert stored["publish_consent"] is False  # not ticked: not given
    await tenant.client.post(url, content="score=3&comment=Late&publish=yes", headers=FORM)
    [stored] = await responses(tenant)
    assert stored["publish_consent"] is True
    await tenant.client.post(url, content="score=4", headers=FORM)  # last answer wins
    [stored] = await responses(tenant)
    assert stored["publish_consent"] is False


async def test_consent_is_a_json_true_and_nothing_coerced(tenant: TenantHandle) -> None:
    for value in ("yes", "on", "y", "t", "1", 1, "TRUE"):
        answer = await tenant.post("/v1/responses", json={**ITEM, "publish_consent": value})
        assert_problem(answer, 422, "validation_error")
    batch = await tenant.post(
        "/v1/responses/batch", json={"items": [{**ITEM, "publish_consent": "on"}]}
    )
    assert batch.status_code in (200, 422), batch.text
    assert "201" not in str([i.get("status") for i in batch.json().get("items", [])])
