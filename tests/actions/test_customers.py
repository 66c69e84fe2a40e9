"""`action.completed` and `GET /v1/actions/{id}/customers`: exactly the customers who raised
the action's theme in its scope, one item each, less those opted out of every channel and
those erased; per-channel opt-outs are said, not hidden; the cursor walks the rest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from feedback_api.models import Event
from tests.actions.test_actions import LATER
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.insights.test_trends import dictionary, item, store

NOW = datetime.now(UTC).replace(microsecond=0)


def said(ref: str | None, comment: str, hours_ago: float, **extra: Any) -> dict[str, Any]:
    body = item(comment, NOW - timedelta(hours=hours_ago), score=4, **extra)
    return {**body, "customer": ref} if ref else body


async def theme_action(tenant: TenantHandle, **scope: Any) -> dict[str, Any]:
    created = await tenant.post(
        "/v1/actions",
        json={
            "title": "Brighter fitting rooms",
            "metric": "theme_share",
            "target": 1,
            "deadline": LATER,
            "scope": {"theme": "light", **scope},
            "public_summary": "You told us the fitting-room light was too dark; we changed it.",
        },
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def completed_events(session: Any, tenant: TenantHandle) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Event).where(Event.tenant_id == tenant.id, Event.type == "action.completed")
    )
    return [json.loads(e.data) if isinstance(e.data, str) else e.data for e in rows]


async def test_done_lists_exactly_who_raised_the_theme_in_the_scope(
    tenant: TenantHandle, other_tenant: TenantHandle, session: Any
) -> None:
    await dictionary(tenant, "light")
    await dictionary(other_tenant, "light")
    mentioners = [f"g{i:02d}" for i in range(30)]
    quiet = [f"q{i:02d}" for i in range(60)]
    for ref in ["ann", "bob", "cat", *mentioners, *quiet]:
        await tenant.put(f"/v1/customers/{ref}", json={"attributes": {"tier": "gold"}})
    await tenant.put("/v1/customers/dan", json={"attributes": {"tier": "silver"}})
    filler = [said(r, "the light is too dark", 50, touchpoint="store") for r in mentioners]
    filler += [said(r, "friendly staff", 50, touchpoint="store") for r in quiet]
    await store(
        tenant,
        [
            *filler,
            said("ann", "the light is too dark", 10, touchpoint="store"),
            said("ann", "still no light in the fitting room", 5, touchpoint="store"),
            said("bob", "light!", 8, touchpoint="store"),
            said("cat", "friendly staff", 8, touchpoint="store"),  # no mention
            said("dan", "the light is dim", 8, touchpoint="store"),  # outside the segment
            said("eve", "the light online?", 8, touchpoint="online"),  # outside the scope
        ],
    )
    await store(other_tenant, [said("zed", "the light", 8, touchpoint="store")])
    action = await theme_action(tenant, touchpoint="store", attributes={"tier": "gold"})
    assert await completed_events(session, tenant) == []
    await tenant.patch(f"/v1/actions/{action['id']}", json={"status": "in_progress"})
    done = await tenant.patch(f"/v1/actions/{action['id']}", json={"status": "done"})
    assert done.status_code == 200, done.text
    # a later mention is not of the problem that was fixed
    await store(tenant, [said("zoe", "the light is great now", 0, touchpoint="store")])

    [event] = await completed_events(session, tenant)
    assert event["action"]["id"] == action["id"]
    assert event["public_summary"].startswith("You told us")
    listed_in_event = {(c["ref"], c["mentions"]) for c in event["customers"]}
    assert listed_in_event == {("ann", 2), ("bob", 1)} | {(r, 1) for r in mentioners}
    assert event["next_cursor"] is None
    listed = await tenant.get(f"/v1/actions/{action['id']}/customers")
    assert listed.status_code == 200, listed.text
    assert [c["ref"] for c in listed.json()["items"]] == [c["ref"] for c in event["customers"]]
    # done once: a second PATCH to done sends no second list
    await tenant.patch(f"/v1/actions/{action['id']}", json={"status": "done"})
    assert len(await completed_events(session, tenant)) == 1
    # another tenant's key sees nothing of it
    assert_problem(
        await other_tenant.get(f"/v1/actions/{action['id']}/customers"), 404, "not_found"
    )


async def test_opted_out_and_erased_customers_are_not_listed(
    tenant: TenantHandle, session: Any
) -> None:
    await dictionary(tenant, "light")
    refs = ["keep", "mail-only", "out", "erased"]
    await store(
        tenant,
        [said(None, f"the light is dark {i}", 40 + i) for i in range(40)]
        + [said(None, f"fine {i}", 40 + i) for i in range(40)]
        + [said(ref, "the light is dark", 3) for ref in refs],
    )
    action = await theme_action(tenant)
    assert (
        await tenant.post("/v1/customers/mail-only/unsubscribe", json={"channel": "email"})
    ).status_code == 200
    assert (await tenant.post("/v1/customers/out/unsubscribe", json={})).status_code == 200
    assert (await tenant.delete("/v1/customers/erased")).status_code in (200, 202, 204)
    await tenant.patch(f"/v1/actions/{action['id']}", json={"status": "done"})
    [event] = await completed_events(session, tenant)
    assert {c["ref"]: c["blocked_channels"] for c in event["customers"]} == {
        "keep": [],
        "mail-only": ["email"],
    }


async def test_the_cursor_walks_every_customer_once_past_opt_outs(tenant: TenantHandle) -> None:
    await dictionary(tenant, "light")
    refs = [f"c{i:03d}" for i in range(45)]
    await store(
        tenant,
        [said(None, f"fine {i}", 40 + i) for i in range(60)]
        + [said(ref, "the light is dark", 3) for ref in refs],
    )
    for ref in refs[::3]:  # a third opted out, spread through the order
        await tenant.post(f"/v1/customers/{ref}/unsubscribe", json={})
    action = await theme_action(tenant)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await tenant.get(f"/v1/actions/{action['id']}/customers", params=params)).json()
        assert len(page["items"]) <= 7
        seen += [c["ref"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = set(refs) - set(refs[::3])
    assert sorted(seen) == sorted(expected)  # each once
    bad = await tenant.get(
        f"/v1/actions/{action['id']}/customers", params={"cursor": "bm90LWEtY3Vyc29y"}
    )
    assert_problem(bad, 422, "invalid_cursor")
