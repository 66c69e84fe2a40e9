"""`GET /v1/insights/themes` against counts made by hand."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from feedback_api.metrics.measures import Histogram, measure
from tests.fixtures.auth import TenantHandle, assert_problem

AT = "2026-11-10T10:00:00Z"
PERIOD = {"from": "2026-11-01", "to": "2026-12-01"}
LIGHT = {"names": {"en": "Fitting-room light"}, "keywords": ["试衣间", "fitting room"]}


async def seed(tenant: TenantHandle, items: list[dict[str, Any]]) -> list[str]:
    body = {
        "items": [{"kind": "nps", "channel": "app", "occurred_at": AT, **item} for item in items]
    }
    response = await tenant.post("/v1/responses/batch", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == 0, response.text
    return [r["id"] for r in response.json()["items"]]


async def report(tenant: TenantHandle, key: str | None = None, **params: Any) -> dict[str, Any]:
    response = await tenant.get("/v1/insights/themes", params={**PERIOD, **params}, key=key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def item(body: dict[str, Any], key: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [i for i in body["items"] if i["key"] == key]
    assert found, body
    return found[0]


def nps(scores: list[int]) -> float | None:
    return measure("nps", Histogram.of(0, 10, scores)).value


async def test_a_theme_against_the_rest(tenant: TenantHandle) -> None:
    assert (await tenant.request("PUT", "/v1/themes/light", json=LIGHT)).status_code == 201
    light = [2, 3, 4, 1, 0, 6, 9, 5] * 3  # 24 mentions, mostly detractors
    rest = [9, 10, 8, 9, 10, 7, 3] * 6  # 42 other comments, mostly promoters
    ids = await seed(
        tenant,
        [{"score": s, "comment": "试衣间太暗"} for s in light]
        + [{"score": s, "comment": "all good"} for s in rest]
        + [{"score": 0}] * 5,  # no text: not in the base
    )
    body = await report(tenant)
    assert body["base"] == 66
    stat = item(body, "light")
    assert stat["name"] == "Fitting-room light"
    assert stat["source"] == "dictionary"
    assert stat["mentions"] == 24
    assert stat["share"]["value"] == pytest.approx(100 * 24 / 66)
    assert (
        stat["share"]["interval"]["low"]
        < stat["share"]["value"]
        < stat["share"]["interval"]["high"]
    )
    assert stat["negative"]["count"] == sum(1 for s in light if s <= 6)
    assert stat["with_theme"]["value"] == pytest.approx(nps(light))
    assert stat["without_theme"]["value"] == pytest.approx(nps(rest))
    difference = stat["difference"]
    assert difference["delta"] == pytest.approx(nps(light) - nps(rest))  # type: ignore[operator]
    assert difference["interval"]["high"] < 0
    assert difference["significant"] is True
    assert len(stat["examples"]) == 5
    assert set(stat["examples"]) <= set(ids[:24])


async def test_tags_are_themes_and_filters_apply(tenant: TenantHandle) -> None:
    await seed(
        tenant,
        [{"score": 3, "tags": ["late"], "channel": "web"}] * 6
        + [{"score": 9, "tags": ["late"], "channel": "app"}] * 6
        + [{"score": 9, "comment": "fine", "channel": "web"}] * 6,
    )
    body = await report(tenant)
    assert item(body, "tag:late")["mentions"] == 12
    assert item(body, "tag:late")["source"] == "tag"
    web = await report(tenant, channel="web")
    assert web["base"] == 12
    assert item(web, "tag:late")["mentions"] == 6
    assert item(web, "tag:late")["with_theme"]["value"] == -100


async def test_small_cells_are_withheld(tenant: TenantHandle) -> None:
    await tenant.request("PUT", "/v1/themes/light", json=LIGHT)
    await seed(
        tenant, [{"score": 0, "comment": "试衣间"}] * 2 + [{"score": 9, "comment": "ok"}] * 20
    )
    reader = await tenant.key("insights:read")  # (admin keys hold metrics:small_cells)
    stat = item(await report(tenant, key=reader), "light")
    assert stat["mentions"] == 2
    assert stat["with_theme"]["suppressed"] is True
    assert stat["with_theme"]["value"] is None
    assert stat["negative"] is None
    assert stat["difference"] is None
    assert stat["examples"] == []
    small = await tenant.key("insights:read", "metrics:small_cells")
    response = await tenant.get("/v1/insights/themes", params=PERIOD, key=small)
    assert item(response.json(), "light")["with_theme"]["value"] == -100


async def test_excluded_responses_count_only_with_integrity_all(tenant: TenantHandle) -> None:
    await tenant.request("PUT", "/v1/themes/light", json=LIGHT)
    ids = await seed(tenant, [{"score": 0, "comment": "试衣间"}] * 6)
    await tenant.session.execute(
        text("UPDATE responses SET excluded = true WHERE tenant_id = :t AND id = :id"),
        {"t": tenant.id, "id": ids[0]},
    )
    assert item(await report(tenant), "light")["mentions"] == 5
    assert item(await report(tenant), "light")["with_theme"]["excluded"] == 1
    assert item(await report(tenant, integrity="all"), "light")["mentions"] == 6


async def test_another_tenants_themes_and_comments_are_not_reported(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    await tenant.request("PUT", "/v1/themes/light", json=LIGHT)
    await seed(tenant, [{"score": 0, "comment": "试衣间", "tags": ["late"]}] * 6)
    theirs = await report(other_tenant)
    assert theirs["items"] == []
    assert theirs["base"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "happiness"},
        {"kind": "rating"},  # needs its scale
        {"from": "2026-12-01", "to": "2026-11-01"},
        {"confidence": "NaN"},
        {"attr.tier": "gold\u0000"},
        {"from": "0001-01-01"},
    ],
)
async def test_bad_input_is_a_422(tenant: TenantHandle, params: dict[str, str]) -> None:
    response = await tenant.get("/v1/insights/themes", params={**PERIOD, **params})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_metrics_key_is_not_enough(tenant: TenantHandle) -> None:
    key = await tenant.key("metrics:read")
    assert_problem(await tenant.get("/v1/insights/themes", key=key), 403, "missing_scope")
