"""Answering invitations: one-tap links, verified responses, last answer wins, scanners,
tampered, expired and rotated tokens, and the mobile flow with a publishable key."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from feedback_api.config import Settings
from feedback_api.invitations import tokens
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.time import utcnow
from feedback_api.models import SigningKey
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.invitations import (
    FORM,
    events,
    invite,
    parse,
    path_of,
    responses,
    sent_invitation,
    setup,
)


async def test_scanners_fetching_every_link_record_nothing(
    tenant: TenantHandle, settings: Settings
) -> None:
    due = await sent_invitation(tenant, settings)
    for link in due["message"]["links"]:
        page = await tenant.client.get(path_of(link["url"]))
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["referrer-policy"] == "no-referrer"
    page = await tenant.client.get(path_of(due["message"]["links"][9]["url"]))
    assert re.findall(r'value="(\d+)"\s*checked', page.text) == ["9"]
    assert "How likely are you to recommend us?" in page.text
    assert await responses(tenant) == []
    got = (await tenant.get(f"/v1/invitations/{due['id']}")).json()
    assert got["status"] == "sent"


async def test_answer_by_form_then_change_it(tenant: TenantHandle, settings: Settings) -> None:
    due = await sent_invitation(tenant, settings)
    url = path_of(due["message"]["landing_url"])
    page = await tenant.client.post(url, content="score=9&comment=Fast+delivery", headers=FORM)
    assert page.status_code == 200, page.text
    assert "Thank you!" in page.text  # the survey's own thank-you text
    (stored,) = await responses(tenant)
    assert (stored["score"], stored["comment"], stored["verified"]) == (9, "Fast delivery", True)
    assert stored["invitation_id"] == due["id"]
    assert stored["customer"] == "c-1"
    assert (stored["touchpoint"], stored["location_ref"]) == ("delivery", "store-9")
    assert (stored["channel"], stored["survey"]) == ("email", "delivery-nps")
    got = (await tenant.get(f"/v1/invitations/{due['id']}")).json()
    assert got["status"] == "responded"
    assert got["response_id"] == stored["id"]

    # A second answer (JSON this time) replaces the first: still one response.
    result = await tenant.client.post(url, json={"score": 3, "comment": "Actually, late"})
    assert result.status_code == 200, result.text
    assert result.json()["updated"] is True
    (changed,) = await responses(tenant)
    assert (changed["id"], changed["score"], changed["comment"]) == (
        stored["id"],
        3,
        "Actually, late",
    )
    assert len(await events(tenant, "invitation.responded")) == 1
    assert len(await events(tenant, "response.created")) == 1
    (updated,) = await events(tenant, "response.updated")
    assert updated["score"] == 3
    # The metrics count the customer once, with their last answer.
    nps = (await tenant.get("/v1/metrics/nps")).json()
    assert (nps["n"], nps["value"]) == (1, -100)
    # Changing to a detractor's score opened a ticket for the team.
    tickets = (await tenant.get("/v1/tickets")).json()["items"]
    assert [t["customer"] for t in tickets] == ["c-1"]


async def test_page_shows_the_current_answer_and_json_for_custom_pages(
    tenant: TenantHandle,
    settings: Settings,
) -> None:
    due = await sent_invitation(tenant, settings)
    url = path_of(due["message"]["landing_url"])
    await tenant.client.post(url, json={"score": 7})
    question = await tenant.client.get(url, headers={"Accept": "application/json"})
    assert question.status_code == 200
    body = question.json()
    assert (body["answer"], body["scale_min"], body["scale_max"], body["kind"]) == (7, 0, 10, "nps")


async def test_bad_answers(tenant: TenantHandle, settings: Settings) -> None:
    due = await sent_invitation(tenant, settings)
    url = path_of(due["message"]["landing_url"])
    assert_problem(await tenant.client.post(url, json={"score": 11}), 422, "validation_error")
    assert_problem(await tenant.client.post(url, json={"score": "9"}), 422, "validation_error")
    assert_problem(await tenant.client.post(url, json={}), 422, "validation_error")
    page = await tenant.client.post(url, content="comment=no+score", headers=FORM)
    assert page.status_code == 422
    assert "Please choose a score." in page.text
    bad_type = await tenant.client.post(
        url, content="score=9", headers={"Content-Type": "text/plain"}
    )
    assert_problem(bad_type, 415, "unsupported_media_type")
    assert await responses(tenant) == []


async def test_answer_refusals_have_codes(tenant: TenantHandle, settings: Settings) -> None:
    due = await sent_invitation(tenant, settings)
    url = path_of(due["message"]["landing_url"])
    for body, loc, code in (
        ({"score": 11}, ["body", "score"], "score_off_scale"),
        ({"score": 10**30}, ["body", "score"], "less_than_equal"),
        ({"score": True}, ["body", "score"], "int_type"),
        ({"score": 9, "comment": "a\x00b"}, ["body", "comment"], "nul_character"),
        ({"score": 9, "comment": "x" * 5001}, ["body", "comment"], "string_too_long"),
        ({"score": 9, "tags": ["a\x00b"]}, ["body", "tags", 0], "nul_character"),
        ({"score": 9, "tags": ["x"] * 21}, ["body", "tags"], "too_long"),
    ):
        problem = assert_problem(await tenant.client.post(url, json=body), 422, "validation_error")
        assert (problem["errors"][0]["loc"], problem["errors"][0]["code"]) == (loc, code), body
    assert await responses(tenant) == []
    stored = await tenant.client.post(url, json={"score": 9.0, "tags": ["Late", "late "]})
    assert stored.status_code == 201, stored.text
    assert [r["tags"] for r in await responses(tenant)] == [["late"]]


async def test_answers_python_cannot_read_as_a_number_are_a_page_not_500(
    tenant: TenantHandle,
    settings: Settings,
) -> None:
    due = await sent_invitation(tenant, settings)
    url = path_of(due["message"]["landing_url"])
    # "²".isdigit() is true but int("²") fails; "١" is an Arabic-Indic digit.
    for score in ("%C2%B2", "%D9%A1", "9%00", "99999999999999999999", "--1", "+9", "9.0", ""):
        page = await tenant.client.post(url, content=f"score={score}", headers=FORM)
        assert page.status_code == 422, score
        assert page.headers["content-type"].startswith("text/html")
        assert "Please choose a score." in page.text
    for body in (
        '{"score": 1e400}',
        '{"score": 99999999999999999999999}',
        '{"score": 9, "comment": "a\\u0000"}',
    ):
        response = await tenant.client.post(
            url, content=body, headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 422, "validation_error")
    assert await responses(tenant) == []


async def test_a_malformed_link_is_a_page_not_500(tenant: TenantHandle, settings: Settings) -> None:
    due = await sent_invitation(tenant, settings)
    url = path_of(due["message"]["landing_url"])
    for query in ("score=%C2%B2", "score=99999999999999999999", "score=1001"):
        page = await tenant.client.get(f"{url}?{query}")
        assert page.status_code == 422, query
        assert page.headers["content-type"].startswith("text/html")
        assert "This link is not valid." in page.text
        as_json = await tenant.client.get(f"{url}?{query}", headers={"Accept": "application/json"})
        assert_problem(as_json, 422, "validation_error")
    for bad in ("a%00b", "not!base64", "x" * 201):
        for path in (f"/r/{bad}", f"/r/{bad}/unsubscribe"):
            page = await tenant.client.get(path)
            assert page.status_code == 404, path
            assert "This link is not valid." in page.text
            assert (await tenant.client.post(path, headers=FORM)).status_code == 404
        problem = assert_problem(
            await tenant.client.post(f"/r/{bad}", json={"score": 9}), 422, "validation_error"
        )
        assert problem["errors"][0]["loc"] == ["path", "token"]
    assert await responses(tenant) == []


async def test_tampered_and_garbage_tokens(tenant: TenantHandle, settings: Settings) -> None:
    due = await sent_invitation(tenant, settings)
    token = due["links"]["token"]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, "nonsense", "x" * 74):
        page = await tenant.client.get(f"/r/{bad}")
        assert page.status_code == 404
        assert "This link is not valid." in page.text
        assert_problem(
            await tenant.client.post(f"/r/{bad}", json={"score": 9}), 404, "link_invalid"
        )
    assert await responses(tenant) == []


async def test_expired_links(tenant: TenantHandle, settings: Settings) -> None:
    due = await sent_invitation(tenant, settings)
    # A genuine token whose own expiry has passed.
    key = (
        await tenant.session.scalars(select(SigningKey).where(SigningKey.tenant_id == tenant.id))
    ).one()
    claims = tokens.peek(due["links"]["token"])
    stale = tokens.sign(
        tokens.Claims(
            claims.tenant_id, claims.invitation_id, key.kid, utcnow() - timedelta(seconds=1)
        ),
        key.secret,
    )
    assert_problem(await tenant.client.post(f"/r/{stale}", json={"score": 9}), 410, "link_expired")
    # The invitation's expiry, as the worker records it.
    await invitation_service.process_due(
        tenant.session, parse(due["expires_at"]), settings=settings
    )
    page = await tenant.client.get(path_of(due["message"]["landing_url"]))
    assert page.status_code == 410
    assert "This survey has closed." in page.text
    assert await responses(tenant) == []


async def test_withdrawn_invitation(tenant: TenantHandle) -> None:
    await setup(tenant)
    invitation = await invite(tenant)
    token = invitation["links"]["token"]
    await tenant.delete(f"/v1/invitations/{invitation['id']}")
    assert_problem(
        await tenant.client.post(f"/r/{token}", json={"score": 9}), 410, "invitation_closed"
    )


async def test_key_rotation_with_and_without_grace(
    tenant: TenantHandle, settings: Settings
) -> None:
    due = await sent_invitation(tenant, settings)
    old = due["links"]["token"]
    keys = (await tenant.post("/v1/signing-keys/rotate", json={"grace_hours": 24})).json()
    assert [(k["kid"], k["current"]) for k in keys] == [(1, False), (2, True)]
    assert "secret" not in keys[0]
    assert (await tenant.client.post(f"/r/{old}", json={"score": 8})).status_code == 201
    new = (await tenant.get(f"/v1/invitations/{due['id']}")).json()["links"]["token"]
    assert tokens.peek(new).kid == 2
    # After a leak: no grace, every older link stops at once; new links work.
    await tenant.post("/v1/signing-keys/rotate", json={"grace_hours": 0})
    assert_problem(await tenant.client.post(f"/r/{old}", json={"score": 9}), 404, "link_invalid")
    assert_problem(await tenant.client.post(f"/r/{new}", json={"score": 9}), 404, "link_invalid")
    newest = (await tenant.get(f"/v1/invitations/{due['id']}")).json()["links"]["token"]
    assert (await tenant.client.post(f"/r/{newest}", json={"score": 9})).status_code == 200


async def test_unsubscribe_link(tenant: TenantHandle, settings: Settings) -> None:
    due = await sent_invitation(tenant, settings)
    url = path_of(due["message"]["unsubscribe_url"])
    page = await tenant.client.get(url)
    assert page.status_code == 200
    assert "Unsubscribe" in page.text
    assert (await tenant.get("/v1/customers/c-1/eligibility")).json()["reason"] != "unsubscribed"
    done = await tenant.client.post(url)
    assert done.status_code == 200
    answer = (await tenant.get("/v1/customers/c-1/eligibility")).json()
    assert answer["reason"] == "unsubscribed"
    (event,) = await events(tenant, "customer.unsubscribed")
    assert event["external_ref"] == "c-1"


async def test_localised_page(tenant: TenantHandle, settings: Settings) -> None:
    await tenant.put("/v1/customers/c-zh", json={"locale": "zh-CN"})
    due = await sent_invitation(tenant, settings, "c-zh")
    page = await tenant.client.get(path_of(due["message"]["landing_url"]))
    assert '<html lang="zh">' in page.text
    assert "您向朋友推荐我们的可能性有多大？" in page.text
    assert "提交" in page.text


# --- the mobile flow: publishable key + invitation_token ------------------------------------


async def test_publishable_key_with_token_is_verified_without_is_not(tenant: TenantHandle) -> None:
    await setup(tenant, delay_minutes=0)
    invitation = await invite(tenant, channel="app")
    token = invitation["links"]["token"]
    app_key = await tenant.key(publishable=True)
    rating = {"kind": "nps", "score": 10, "channel": "app"}
    verified = await tenant.post(
        "/v1/responses", key=app_key, json={**rating, "invitation_token": token}
    )
    assert verified.status_code == 201, verified.text
    body = verified.json()
    assert (body["verified"], body["customer"], body["invitation_id"]) == (
        True,
        "c-1",
        invitation["id"],
    )
    # Answered before the worker got to it: it counts as sent and responded.
    got = (await tenant.get(f"/v1/invitations/{invitation['id']}")).json()
    assert got["status"] == "responded"
    assert got["sent_at"] is not None
    again = await tenant.post(
        "/v1/responses", key=app_key, json={**rating, "score": 6, "invitation_token": token}
    )
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    unverified = await tenant.post("/v1/responses", key=app_key, json=rating)
    assert unverified.status_code == 201
    assert unverified.json()["verified"] is False


async def test_publishable_key_limits_with_a_token(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    await setup(tenant, delay_minutes=0)
    token = (await invite(tenant, channel="app"))["links"]["token"]
    app_key = await tenant.key(publishable=True)
    rating = {"kind": "nps", "score": 10, "channel": "app", "invitation_token": token}
    # The token does not widen what a publishable key may set.
    response = await tenant.post("/v1/responses", key=app_key, json={**rating, "customer": "c-2"})
    assert_problem(response, 403, "publishable_key_forbidden")
    response = await tenant.post("/v1/responses", key=app_key, json={**rating, "channel": "email"})
    assert_problem(response, 403, "publishable_key_forbidden")
    response = await tenant.post("/v1/responses", key=app_key, json={**rating, "survey": "x"})
    assert_problem(response, 422, "validation_error")
    response = await tenant.post(
        "/v1/responses", key=app_key, json={**rating, "kind": "csat", "score": 5}
    )
    assert_problem(response, 422, "validation_error")
    # Another tenant's key cannot use this tenant's token.
    other_key = await other_tenant.key(publishable=True)
    assert_problem(
        await other_tenant.post("/v1/responses", key=other_key, json=rating), 404, "link_invalid"
    )
    # Not in batches.
    batch = await tenant.post("/v1/responses/batch", json={"items": [rating]})
    assert batch.json()["items"][0]["status"] == 422
    assert await responses(tenant) == []


async def test_erasure_closes_the_links_already_sent(
    tenant: TenantHandle, settings: Settings
) -> None:
    due = await sent_invitation(tenant, settings)
    assert (await tenant.delete("/v1/customers/c-1")).status_code == 204
    url = path_of(due["message"]["landing_url"])
    assert_problem(await tenant.client.post(url, json={"score": 9}), 410, "invitation_closed")
    (scrubbed,) = await events(tenant, "invitation.due")
    assert (scrubbed["customer"], scrubbed["recipient"], scrubbed["context"]) == (None, None, {})
