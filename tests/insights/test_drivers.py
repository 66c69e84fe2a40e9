"""Drivers through the API: planted effects recovered in order, not-estimable drivers listed
and never ranked, exclusive dimensions, filters, isolation and bad input."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.auth import TenantHandle, assert_problem
from tests.insights.test_trends import dictionary, store

NOW = datetime.now(UTC).replace(microsecond=0)


def nps_score(latent: float) -> int:
    return max(0, min(10, round(latent)))


def planted(rng: random.Random, n: int = 1500) -> list[dict[str, Any]]:
    """Comments with three themes of known effect on the score (delivery −4 points of the
    0–10 scale, price −2, app none), correlated through a shared 'bad day', plus a rare one."""
    out = []
    for i in range(n):
        bad_day = rng.random() < 0.3
        rate = 0.35 if bad_day else 0.15
        words = [w for w in ("delivery", "price", "app") if rng.random() < rate]
        if i % 60 == 0:
            words.append("parking")  # 25 mentions: below the minimum
        latent = 8.5 - 4 * ("delivery" in words) - 2 * ("price" in words) + rng.gauss(0, 1.5)
        out.append(
            {
                "kind": "nps",
                "score": nps_score(latent),
                "channel": "app" if i % 3 else "web",
                "touchpoint": "store" if i % 4 == 0 else "online",
                "tags": ["vip"] if i % 5 == 0 else [],
                "comment": " and ".join(words) or "nothing to add",
                "occurred_at": (NOW - timedelta(minutes=i + 1)).isoformat(),
            }
        )
    return out


@pytest.fixture
async def planted_tenant(tenant: TenantHandle) -> list[dict[str, Any]]:
    await dictionary(tenant, "delivery", "price", "app", "parking")
    items = planted(random.Random(7))
    await store(tenant, items)
    return items


async def test_planted_drivers_come_out_in_order_with_their_effects(
    tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    body = (await tenant.get("/v1/insights/drivers", params={"by": "theme"})).json()
    assert body["method"] == "relative_weights"
    assert body["base"] == 1500
    ranked = [d for d in body["items"] if d["estimable"]]
    assert [d["key"] for d in ranked] == ["delivery", "price", "app"]
    assert [d["rank"] for d in ranked] == [1, 2, 3]
    assert sum(d["importance"]["value"] for d in ranked) == pytest.approx(100)
    delivery, price, app = ranked
    assert delivery["effect"]["interval"]["high"] < price["effect"]["interval"]["high"] < 0
    assert app["effect"]["interval"]["low"] <= 0 <= app["effect"]["interval"]["high"]
    for d in ranked:
        low, high = d["importance"]["interval"]["low"], d["importance"]["interval"]["high"]
        assert low <= d["importance"]["value"] <= high
        # impact = effect × share (share in percent)
        expected = d["effect"]["value"] * d["share"]["value"] / 100
        assert d["impact"]["value"] == pytest.approx(expected, abs=1e-3)
        assert d["performance"]["n"] == d["n"]
    assert 0 < body["r_squared"]["value"] < 100
    assert body["overall"]["n"] == 1500


async def test_a_rare_driver_is_listed_as_not_estimable_and_never_ranked(
    tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    body = (await tenant.get("/v1/insights/drivers")).json()
    parking = next(d for d in body["items"] if d["key"] == "parking")
    assert parking["n"] == 25
    assert parking["estimable"] is False
    assert parking["reason"] == "too_few_responses"
    assert parking["rank"] is None
    assert parking["importance"] is None
    assert parking["effect"] is None
    assert parking["impact"] is None
    assert parking["performance"]["value"] is not None  # how it does is still shown
    assert body["items"][-1]["key"] == "parking"
    assert body["min_n"] == 30


async def test_touchpoints_channels_and_tags(
    tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    body = (await tenant.get("/v1/insights/drivers", params={"by": "touchpoint"})).json()
    store_, online = (next(d for d in body["items"] if d["key"] == k) for k in ("store", "online"))
    assert store_["n"] == 375
    assert online["n"] == 1125
    # exclusive: the effect is the difference of the NPS with it and without it
    difference = store_["performance"]["value"] - online["performance"]["value"]
    assert store_["effect"]["value"] == pytest.approx(difference, abs=1e-3)
    assert online["effect"]["value"] == pytest.approx(-difference, abs=1e-3)
    channels = (await tenant.get("/v1/insights/drivers", params={"by": "channel"})).json()
    assert {d["key"] for d in channels["items"]} == {"app", "web"}
    tags = (await tenant.get("/v1/insights/drivers", params={"by": "tag"})).json()
    assert [d["key"] for d in tags["items"]] == ["tag:vip"]
    assert tags["items"][0]["n"] == 300
    assert tags["base"] == 1500


async def test_filters_narrow_the_base(
    tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    body = (await tenant.get("/v1/insights/drivers", params={"channel": "web"})).json()
    assert body["base"] == 500
    later = [(NOW + timedelta(days=d)).date().isoformat() for d in (2, 3)]
    empty = (
        await tenant.get("/v1/insights/drivers", params={"from": later[0], "to": later[1]})
    ).json()
    assert empty.get("base") == 0, empty
    assert empty["items"] == []
    assert empty["r_squared"] is None


async def test_scores_without_variance_explain_nothing(tenant: TenantHandle) -> None:
    await dictionary(tenant, "delivery")
    items = [
        {
            "kind": "nps",
            "score": 10,
            "channel": "app",
            "comment": "delivery" if i % 2 else "fine",
            "occurred_at": (NOW - timedelta(minutes=i + 1)).isoformat(),
        }
        for i in range(80)
    ]
    await store(tenant, items)
    body = (await tenant.get("/v1/insights/drivers")).json()
    assert body["r_squared"] is None
    assert body["items"][0]["reason"] == "no_variance"
    assert body["items"][0]["rank"] is None


async def test_other_tenants_and_scopes(
    tenant: TenantHandle, other_tenant: TenantHandle, planted_tenant: list[dict[str, Any]]
) -> None:
    theirs = (await other_tenant.get("/v1/insights/drivers")).json()
    assert theirs["base"] == 0
    assert theirs["items"] == []
    writer = await tenant.key("responses:write")
    assert_problem(await tenant.get("/v1/insights/drivers", key=writer), 403, "missing_scope")


@pytest.mark.parametrize(
    "params",
    [
        {"by": "nope"},
        {"kind": "rating"},
        {"kind": "nps", "confidence": "NaN"},
        {"from": "0001-01-01", "to": "9999-12-31", "by": "channel"},
        {"attr.tier": "gold\x00"},
    ],
)
async def test_bad_input_gets_a_problem(tenant: TenantHandle, params: dict[str, str]) -> None:
    answer = await tenant.get("/v1/insights/drivers", params=params)
    if params.get("from") == "0001-01-01":
        assert answer.status_code in (200, 422), answer.text
        return
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
