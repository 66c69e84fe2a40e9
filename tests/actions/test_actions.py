"""Improvement actions through the API: SMART at creation (baseline measured on the scope,
refusals that say why), the life cycle, events, isolation, and efforts in the priority
matrix."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from feedback_api.models import Event
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.insights.test_drivers import planted_tenant as planted_tenant  # the fixture
from tests.insights.test_trends import store

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = (NOW + timedelta(days=90)).date().isoformat()


def scored(n: int, scores: list[int], **extra: Any) -> list[dict[str, Any]]:
    rng = random.Random(n)
    return [
        {
            "kind": "nps",
            "score": rng.choice(scores),
            "channel": "app",
            "occurred_at": (NOW - timedelta(hours=i + 1)).isoformat(),
            **extra,
        }
        for i in range(n)
    ]


def action(**changes: Any) -> dict[str, Any]:
    return {
        "title": "Brighter fitting rooms",
        "metric": "nps",
        "target": 40,
        "deadline": LATER,
        **changes,
    }


async def test_an_action_gets_its_baseline_measured_on_its_scope(
    tenant: TenantHandle, session: Any
) -> None:
    await store(tenant, scored(400, [0, 6, 9, 10], touchpoint="store"))
    await store(tenant, scored(100, [10], touchpoint="online"))
    created = await tenant.post(
        "/v1/actions",
        json=action(scope={"touchpoint": "store"}, target=30, effort_days=4, owner="store ops"),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    baseline = body["baseline"]
    assert baseline["n"] == 400  # the scope's responses only
    assert -10 < baseline["value"] < 20
    assert baseline["needed_n"] <= 400
    assert body["status"] == "planned"
    assert body["scope"]["touchpoint"] == "store"
    events = (await session.scalars(select(Event).where(Event.tenant_id == tenant.id))).all()
    assert "action.created" in {e.type for e in events}
    assert (await tenant.get(f"/v1/actions/{body['id']}")).json() == body


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"target": -10}, "target_not_an_improvement"),
        ({"target": 101}, "target_out_of_range"),
        ({"deadline": "2020-01-01"}, "deadline_passed"),
        ({"target": 16}, "baseline_too_small"),
        ({"metric": "theme_share", "target": 1}, "theme_required"),
        ({"scope": {"theme": "nope"}}, "unknown_theme"),
    ],
)
async def test_an_action_that_is_not_smart_is_refused_with_the_reason(
    tenant: TenantHandle, changes: dict[str, Any], code: str
) -> None:
    await store(tenant, scored(300, [0, 6, 9, 10]))
    answer = await tenant.post("/v1/actions", json=action(**changes))
    problem = assert_problem(answer, 422, "validation_error")
    assert [e["code"] for e in problem["errors"]] == [code], problem
    if code == "baseline_too_small":
        assert "needs" in problem["errors"][0]["message"]


@pytest.mark.parametrize("missing", ["metric", "target", "deadline", "title"])
async def test_metric_target_and_deadline_are_required(tenant: TenantHandle, missing: str) -> None:
    body = action()
    del body[missing]
    assert_problem(await tenant.post("/v1/actions", json=body), 422, "validation_error")


async def test_a_tiny_baseline_says_how_many_responses_it_needs(tenant: TenantHandle) -> None:
    await store(tenant, scored(12, [0, 10]))
    problem = assert_problem(
        await tenant.post("/v1/actions", json=action(target=90)), 422, "validation_error"
    )
    assert problem["errors"][0]["code"] == "baseline_too_small"
    assert "holds 12 responses" in problem["errors"][0]["message"]


async def test_the_life_cycle_and_its_events(tenant: TenantHandle, session: Any) -> None:
    await store(tenant, scored(300, [0, 6, 9, 10]))
    made = (await tenant.post("/v1/actions", json=action())).json()
    url = f"/v1/actions/{made['id']}"
    started = await tenant.patch(url, json={"status": "in_progress", "starts_on": "2026-12-01"})
    assert started.status_code == 200, started.text
    assert started.json()["version"] == 2
    done = (await tenant.patch(url, json={"status": "done"})).json()
    assert done["status"] == "done"
    assert done["completed_at"] is not None
    again = await tenant.patch(url, json={"status": "in_progress"})
    assert (
        assert_problem(again, 422, "validation_error")["errors"][0]["code"] == "status_transition"
    )
    assert_problem(await tenant.patch(url, json={"target": None}), 422, "validation_error")
    assert_problem(await tenant.patch(url, json={"metric": "csat"}), 422, "validation_error")
    types = [
        e.type
        for e in (
            await session.scalars(
                select(Event).where(Event.tenant_id == tenant.id).order_by(Event.created_at)
            )
        ).all()
    ]
    assert types.count("action.updated") == 2
    listed = (await tenant.get("/v1/actions", params={"status": "done"})).json()
    assert [a["id"] for a in listed["items"]] == [made["id"]]


async def test_pages_other_tenants_and_scopes(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    await store(tenant, scored(300, [0, 6, 9, 10]))
    ids = [
        (await tenant.post("/v1/actions", json=action(title=f"a{i}"))).json()["id"]
        for i in range(3)
    ]
    first = (await tenant.get("/v1/actions", params={"limit": 2})).json()
    second = (
        await tenant.get("/v1/actions", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [a["id"] for a in first["items"] + second["items"]] == ids[::-1]
    assert_problem(await other_tenant.get(f"/v1/actions/{ids[0]}"), 404, "not_found")
    assert_problem(
        await other_tenant.patch(f"/v1/actions/{ids[0]}", json={"title": "x"}), 404, "not_found"
    )
    assert (await other_tenant.get("/v1/actions")).json()["items"] == []
    reader = await tenant.key("actions:read")
    assert_problem(
        await tenant.post("/v1/actions", json=action(), key=reader), 403, "missing_scope"
    )
    writer = await tenant.key("responses:write")
    assert_problem(await tenant.get("/v1/actions", key=writer), 403, "missing_scope")


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x\x00", "metric": "nps", "target": 40, "deadline": LATER},
        {"title": "x", "metric": "nps", "target": "NaN", "deadline": LATER},
        {"title": "x", "metric": "nps", "target": 40, "deadline": "9999-12-31"},
        {"title": "x", "metric": "nps", "target": 40, "deadline": "0001-01-01"},
        {"title": "x", "metric": "nps", "target": 40, "deadline": LATER, "effort_days": -1},
        {"title": "x", "metric": "nps", "target": 40, "deadline": LATER, "baseline_from": "1"},
        {"title": "x" * 201, "metric": "nps", "target": 40, "deadline": LATER},
        {"title": "x", "metric": "bogus", "target": 40, "deadline": LATER},
        {
            "title": "x",
            "metric": "nps",
            "target": 40,
            "deadline": LATER,
            "scope": {"channel": "fax"},
        },
        {"title": "x", "metric": "nps", "target": 40, "deadline": LATER, "extra": 1},
    ],
)
async def test_bad_input_gets_a_problem(tenant: TenantHandle, body: dict[str, Any]) -> None:
    assert_problem(await tenant.post("/v1/actions", json=body), 422, "validation_error")


async def test_an_actions_effort_places_its_theme_in_the_priority_matrix(
    tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    before = (await tenant.get("/v1/insights/priorities")).json()["items"][0]
    assert before["key"] == "delivery"
    assert before["quadrant"] is None
    made = await tenant.post(
        "/v1/actions",
        json=action(
            title="Faster couriers",
            scope={"theme": "delivery"},
            metric="nps",
            target=0,
            effort_days=3,
        ),
    )
    assert made.status_code == 201, made.text
    matrix = (await tenant.get("/v1/insights/priorities")).json()
    first = matrix["items"][0]
    assert first["effort"] == {"level": "low", "source": "action", "action_id": made.json()["id"]}
    assert first["quadrant"] == "quick_wins"
    assert matrix["quadrants"]["quick_wins"] == 1
    strict = (await tenant.get("/v1/insights/priorities", params={"low_effort_days": 2})).json()
    assert strict["items"][0]["quadrant"] == "major_projects"


async def test_a_huge_number_gets_a_problem(tenant: TenantHandle) -> None:
    raw = '{"title": "x", "metric": "nps", "target": 1e309, "deadline": "' + LATER + '"}'
    answer = await tenant.post(
        "/v1/actions", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_problem(answer, 422, "validation_error")
