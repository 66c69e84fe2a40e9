"""The priority matrix: impact from the drivers, effort from linked actions (unknown until
one exists), the four quadrants, and the endpoint's edges."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.insights.priorities import default_min_impact, priorities, quadrant
from feedback_api.insights.schemas import Effort, Quadrant
from feedback_api.metrics.schemas import MetricKind
from feedback_api.metrics.selection import Selection
from feedback_api.metrics.service import MetricQuery
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.insights.test_drivers import planted_tenant as planted_tenant  # the fixture


async def test_costly_themes_come_first_with_their_impact_level(
    tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    body = (await tenant.get("/v1/insights/priorities")).json()
    assert body["min_impact"] == 2.0
    first = body["items"][0]
    assert (first["dimension"], first["key"]) == ("theme", "delivery")
    assert first["impact"]["value"] < -2
    assert first["impact"]["interval"]["high"] < 0
    assert first["impact_level"] == "high"
    by_key = {(p["dimension"], p["key"]): p for p in body["items"]}
    assert by_key[("theme", "app")]["impact_level"] == "low"  # no effect planted
    assert by_key[("theme", "parking")]["estimable"] is False
    assert by_key[("theme", "parking")]["impact_level"] is None
    assert ("touchpoint", "store") in by_key
    # no improvement action yet: effort unknown, nothing placed
    assert all(p["effort"] is None and p["quadrant"] is None for p in body["items"])
    assert body["quadrants"] == {q.value: 0 for q in Quadrant}
    assert body["unplaced"] == sum(p["impact_level"] is not None for p in body["items"])
    # a higher bar leaves delivery high only if its cost reaches it
    strict = (await tenant.get("/v1/insights/priorities", params={"min_impact": 50})).json()
    assert all(p["impact_level"] != "high" for p in strict["items"])


async def test_linked_efforts_place_items_in_quadrants(
    session: AsyncSession, tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    query = MetricQuery(Selection(tenant_id=tenant.id, kind="nps", scale_min=0, scale_max=10))
    efforts = {
        ("theme", "delivery"): Effort(level="low", source="action"),
        ("theme", "app"): Effort(level="high", source="action"),
    }
    report = await priorities(session, MetricKind.NPS, query, None, efforts)
    placed = {p.key: p.quadrant for p in report.items if p.quadrant is not None}
    assert placed == {"delivery": Quadrant.QUICK_WINS, "app": Quadrant.NOT_NOW}
    assert report.quadrants[Quadrant.QUICK_WINS] == 1


def test_quadrants() -> None:
    low, high = Effort(level="low", source="action"), Effort(level="high", source="action")
    assert quadrant("high", low) is Quadrant.QUICK_WINS
    assert quadrant("high", high) is Quadrant.MAJOR_PROJECTS
    assert quadrant("low", low) is Quadrant.FILL_INS
    assert quadrant("low", high) is Quadrant.NOT_NOW
    assert quadrant("high", None) is None
    assert quadrant(None, low) is None
    assert default_min_impact(MetricKind.NPS, 0, 10) == 2.0
    assert default_min_impact(MetricKind.CSAT, 1, 5) == 1.0
    assert default_min_impact(MetricKind.CES, 1, 7) == 0.06


async def test_other_tenants_bad_input_and_scope(
    tenant: TenantHandle, other_tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    theirs = (await other_tenant.get("/v1/insights/priorities")).json()
    assert theirs["items"] == []
    for value in ("-1", "NaN", "inf", "1e400", "201", "x"):
        answer = await tenant.get("/v1/insights/priorities", params={"min_impact": value})
        assert_problem(answer, 422, "validation_error")
    writer = await tenant.key("responses:write")
    assert_problem(await tenant.get("/v1/insights/priorities", key=writer), 403, "missing_scope")
