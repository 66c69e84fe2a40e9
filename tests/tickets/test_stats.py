"""`GET /v1/tickets/stats` against a brute-force computation over random tickets."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.ids import new_id
from feedback_api.models import SlaPolicy, Ticket
from tests.fixtures.auth import TenantHandle, assert_problem

START = datetime(2026, 9, 1, tzinfo=UTC)
END = datetime(2026, 10, 1, tzinfo=UTC)
PARAMS = {"from": "2026-09-01", "to": "2026-10-01"}


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lo, hi = math.floor(position), math.ceil(position)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def random_ticket(rng: random.Random, tenant_id: Any, policy_id: Any, **fields: Any) -> Ticket:
    created = START + timedelta(seconds=rng.randrange(-5 * 86400, 35 * 86400))
    replied = rng.random() < 0.6
    resolved = rng.random() < 0.5
    fr_stopped = replied or resolved
    return Ticket(
        tenant_id=tenant_id,
        id=new_id(),
        status="resolved" if resolved else rng.choice(["open", "in_progress", "reopened"]),
        priority=rng.choice(["urgent", "high", "normal", "low"]),
        team=rng.choice(["care", "billing", None]),
        touchpoint=rng.choice(["delivery", "store"]),
        agent_ref=None,
        origin=rng.choice(["response", "response", "manual"]),
        sla_policy_id=policy_id,
        first_response_budget=timedelta(hours=4),
        first_response_consumed=timedelta(seconds=rng.randrange(60, 30000)),
        first_response_stopped_at=created + timedelta(hours=1) if fr_stopped else None,
        first_response_breached_at=created if rng.random() < 0.2 else None,
        resolution_budget=timedelta(hours=24),
        resolution_consumed=timedelta(seconds=rng.randrange(600, 300000)),
        resolution_breached_at=created if rng.random() < 0.2 else None,
        resolved_at=created + timedelta(days=1) if resolved else None,
        first_replied_at=created + timedelta(hours=1) if replied else None,
        repeat_count=rng.choice([0, 0, 0, 1, 2]),
        reopened_count=rng.choice([0, 0, 1]),
        follow_up_solved=rng.choice([None, True, False]) if resolved else None,
        created_at=created,
        updated_at=created,
        **fields,
    )


def expected(tickets: list[Ticket], key: str | None) -> dict[Any, dict[str, Any]]:
    groups: dict[Any, list[Ticket]] = defaultdict(list)
    for t in tickets:
        if START <= t.created_at < END:
            groups[getattr(t, key) if key else None].append(t)
    result = {}
    for group, members in groups.items():
        fr = [
            t.first_response_consumed.total_seconds()
            for t in members
            if t.first_response_stopped_at
        ]
        res = [t.resolution_consumed.total_seconds() for t in members if t.resolved_at]
        fr_decided = [
            t for t in members if t.first_response_stopped_at or t.first_response_breached_at
        ]
        res_decided = [t for t in members if t.resolved_at or t.resolution_breached_at]
        ever_resolved = [t for t in members if t.resolved_at or t.reopened_count > 0]
        from_responses = [t for t in members if t.origin == "response"]
        followed = [t for t in members if t.follow_up_solved is not None]
        result[group] = {
            "opened": len(members),
            "resolved": sum(1 for t in members if t.resolved_at),
            "first_response_median_seconds": percentile(fr, 0.5),
            "first_response_p90_seconds": percentile(fr, 0.9),
            "resolution_median_seconds": percentile(res, 0.5),
            "resolution_p90_seconds": percentile(res, 0.9),
            "first_response_within_sla_pct": pct(
                sum(
                    1
                    for t in fr_decided
                    if t.first_response_stopped_at and not t.first_response_breached_at
                ),
                len(fr_decided),
            ),
            "resolution_within_sla_pct": pct(
                sum(1 for t in res_decided if t.resolved_at and not t.resolution_breached_at),
                len(res_decided),
            ),
            "breached": sum(
                1 for t in members if t.first_response_breached_at or t.resolution_breached_at
            ),
            "repeat_complaint_pct": pct(
                sum(1 for t in members if t.repeat_count > 0), len(ever_resolved)
            ),
            "contacted_pct": pct(
                sum(1 for t in from_responses if t.first_replied_at), len(from_responses)
            ),
            "follow_up_solved_pct": pct(
                sum(1 for t in followed if t.follow_up_solved), len(followed)
            ),
        }
    return result


async def seed(
    session: AsyncSession, tenant: TenantHandle, count: int, seed_: int = 7
) -> list[Ticket]:
    policy_id = await session.scalar(
        select(SlaPolicy.id).where(SlaPolicy.tenant_id == tenant.id, SlaPolicy.is_default)
    )
    rng = random.Random(seed_)
    tickets = [random_ticket(rng, tenant.id, policy_id) for _ in range(count)]
    session.add_all(tickets)
    await session.flush()
    return tickets


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 0.051  # the API rounds seconds to 0.1


@pytest.mark.parametrize("by", [None, "team", "priority", "touchpoint"])
async def test_stats_match_brute_force(
    tenant: TenantHandle, session: AsyncSession, by: str | None
) -> None:
    tickets = await seed(session, tenant, 300)
    params = {**PARAMS, **({"by": by} if by else {})}
    response = await tenant.get("/v1/tickets/stats", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"]["from"].startswith("2026-09-01")
    want = expected(tickets, by)
    got = {g["key"]: g for g in body["groups"]}
    assert set(got) == set(want)
    for key, numbers in want.items():
        for name, value in numbers.items():
            assert close(got[key][name], value), (key, name, got[key][name], value)


async def test_agents_only_on_request_and_small_groups_suppressed(
    tenant: TenantHandle, session: AsyncSession
) -> None:
    policy_id = await session.scalar(
        select(SlaPolicy.id).where(SlaPolicy.tenant_id == tenant.id, SlaPolicy.is_default)
    )
    rng = random.Random(3)
    sizes = {"a1": 10, "a2": 5, "a3": 2, "a4": 1}  # the tenant's minimum n is 5
    tickets = [
        random_ticket(rng, tenant.id, policy_id) for agent, n in sizes.items() for _ in range(n)
    ]
    for t, agent in zip(tickets, [a for a, n in sizes.items() for _ in range(n)], strict=True):
        t.agent_ref = agent
        t.created_at = START + timedelta(days=1)
    session.add_all(tickets)
    await session.flush()

    overall = (await tenant.get("/v1/tickets/stats", params=PARAMS)).json()
    assert [g["key"] for g in overall["groups"]] == [None]  # no agents unless asked
    by_agent = (await tenant.get("/v1/tickets/stats", params={**PARAMS, "by": "agent_ref"})).json()
    assert by_agent["min_n"] == 5
    groups = {(g["key"], g["other"]): g for g in by_agent["groups"]}
    assert set(groups) == {("a1", False), ("a2", False), (None, True)}
    pool = groups[(None, True)]
    assert pool["suppressed"] is True
    assert pool["opened"] == 3
    assert pool["first_response_median_seconds"] is None
    assert pool["resolved"] is None
    want = expected([t for t in tickets if t.agent_ref == "a1"], "agent_ref")["a1"]
    assert groups[("a1", False)]["opened"] == want["opened"] == 10
    assert close(
        groups[("a1", False)]["resolution_median_seconds"], want["resolution_median_seconds"]
    )

    # with a lower minimum the pool of a3 + a4 is large enough to show, still unnamed
    await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 3})
    by_agent = (await tenant.get("/v1/tickets/stats", params={**PARAMS, "by": "agent_ref"})).json()
    groups = {(g["key"], g["other"]): g for g in by_agent["groups"]}
    assert groups[(None, True)]["suppressed"] is False
    assert groups[(None, True)]["opened"] == 3


async def test_stats_bad_input(tenant: TenantHandle) -> None:
    for params in (
        {"by": "customer"},
        {"from": "2026-10-01", "to": "2026-09-01"},
        {"from": "yesterday"},
        {"from": "0001-01-01"},
        {"to": "9999-12-31T23:59:59+00:00"},
        {"from": "1700000000"},
    ):
        assert_problem(
            await tenant.get("/v1/tickets/stats", params=params), 422, "validation_error"
        )


async def test_stats_through_the_api_flow(tenant: TenantHandle) -> None:
    """End to end: a reply and a resolution show up in the numbers."""
    for n in range(3):
        created = await tenant.post(
            "/v1/responses",
            json={"kind": "nps", "score": 2, "channel": "crm", "customer": f"c-{n}"},
        )
        assert created.status_code == 201
    items = (await tenant.get("/v1/tickets")).json()["items"]
    await tenant.post(f"/v1/tickets/{items[0]['id']}/replies", json={"body": "Sorry"})
    await tenant.patch(f"/v1/tickets/{items[0]['id']}", json={"status": "in_progress"})
    await tenant.patch(
        f"/v1/tickets/{items[0]['id']}",
        json={"status": "resolved", "root_cause": "x", "resolution_summary": "Fixed"},
    )
    (group,) = (await tenant.get("/v1/tickets/stats")).json()["groups"]
    assert group["opened"] == 3
    assert group["resolved"] == 1
    assert group["contacted_pct"] == pytest.approx(33.33)
    assert group["first_response_within_sla_pct"] == 100.0
    assert group["breached"] == 0
    assert group["follow_up_solved_pct"] is None
