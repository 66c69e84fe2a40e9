"""Metrics against a brute-force count over the stored responses: every filter, the
partial days at a period's edges, trend buckets and breakdowns, before and after the fold."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.fixtures.auth import TenantHandle
from tests.fixtures.metrics import (
    Item,
    assert_matches,
    brute,
    fold,
    make_items,
    metric,
    seed,
    tiers,
)

PERIOD = {"from": "2026-06-10", "to": "2026-08-20"}
LO = datetime(2026, 6, 10, tzinfo=UTC)
HI = datetime(2026, 8, 20, tzinfo=UTC)

FILTERS: list[tuple[dict[str, str], Callable[[Item], bool]]] = [
    ({}, lambda i: True),
    ({"channel": "app"}, lambda i: i["channel"] == "app"),
    ({"touchpoint": "delivery"}, lambda i: i.get("touchpoint") == "delivery"),
    ({"survey": "relationship"}, lambda i: i.get("survey") == "relationship"),
    (
        {"channel": "web", "touchpoint": "support"},
        lambda i: i["channel"] == "web" and i.get("touchpoint") == "support",
    ),
    ({"tag": "late"}, lambda i: "late" in i["tags"]),
    ({"agent_ref": "agent-1"}, lambda i: i.get("agent_ref") == "agent-1"),
    ({"location_ref": "store-2"}, lambda i: i["location_ref"] == "store-2"),
    ({"language": "zh-CN"}, lambda i: i["language"] == "zh-CN"),
]


class TestAgainstBruteForce:
    @pytest.fixture
    async def data(self, tenant: TenantHandle) -> list[Item]:
        items = make_items(random.Random(7), 600)
        await seed(tenant, items)
        return items

    @pytest.mark.parametrize("kind", ["nps", "csat", "ces"])
    async def test_filters_before_and_after_the_fold(
        self, tenant: TenantHandle, data: list[Item], kind: str
    ) -> None:
        for _ in range(2):  # from the delta log, then from the rollup
            for params, keep in FILTERS:
                expected = brute(data, kind, LO, HI, keep)
                body = await metric(tenant, kind, **PERIOD, **params)
                assert_matches(body, kind, expected)
            await fold(tenant)

    async def test_customer_attribute_filter(self, tenant: TenantHandle, data: list[Item]) -> None:
        tier = await tiers(tenant)
        body = await metric(tenant, **PERIOD, **{"attr.tier": "gold"})
        gold = brute(data, "nps", LO, HI, lambda i: tier.get(i.get("customer", "")) == "gold")
        assert gold.n > 0
        assert_matches(body, "nps", gold)

    async def test_partial_days_at_the_edges(self, tenant: TenantHandle, data: list[Item]) -> None:
        await fold(tenant)
        lo, hi = datetime(2026, 6, 10, 13, 17, tzinfo=UTC), datetime(2026, 8, 3, 7, 5, tzinfo=UTC)
        body = await metric(tenant, **{"from": lo.isoformat(), "to": hi.isoformat()})
        assert_matches(body, "nps", brute(data, "nps", lo, hi, lambda i: True))

    @pytest.mark.parametrize("interval", ["day", "week", "month"])
    async def test_trend_buckets_sum_to_the_whole(
        self, tenant: TenantHandle, data: list[Item], interval: str
    ) -> None:
        params = {"from": "2026-06-03T12:00:00Z", "to": "2026-08-29", "interval": interval}
        for _ in range(2):  # from the delta log, then from the rollup
            trend = (await tenant.get("/v1/metrics/nps/trend", params=params)).json()
            whole = await metric(tenant, **{"from": params["from"], "to": params["to"]})
            assert sum(b["n"] for b in trend["buckets"]) == whole["n"]
            columns = zip(*(b["distribution"] for b in trend["buckets"]), strict=True)
            assert [sum(col) for col in columns] == whole["distribution"]
            # contiguous, in order, covering the period
            assert trend["buckets"][0]["start"] == "2026-06-03T12:00:00Z"
            assert trend["buckets"][-1]["end"] == "2026-08-29T00:00:00Z"
            for before, after in zip(trend["buckets"], trend["buckets"][1:], strict=False):
                assert before["end"] == after["start"]
            for bucket in trend["buckets"]:
                lo = datetime.fromisoformat(bucket["start"])
                hi = datetime.fromisoformat(bucket["end"])
                assert bucket["distribution"] == brute(data, "nps", lo, hi, lambda i: True).counts
            await fold(tenant)

    async def test_breakdown(self, tenant: TenantHandle, data: list[Item]) -> None:
        tier = await tiers(tenant)
        await fold(tenant)
        reader = await tenant.key("metrics:read")  # small groups merged (no small_cells)
        for by in ("channel", "touchpoint", "survey", "tag", "agent_ref", "language", "attr.tier"):
            body = (
                await tenant.get(
                    "/v1/metrics/nps/breakdown", params={**PERIOD, "by": by}, key=reader
                )
            ).json()
            assert body["min_cell"] == 5

            def keys(item: Item, by: str = by) -> list[str | None]:
                if by == "tag":
                    return list(item["tags"]) or [None]
                if by == "attr.tier":
                    return [tier.get(item.get("customer", ""))]
                return [item.get(by)]

            groups = {k for i in data for k in keys(i)}
            expected = {
                g: brute(data, "nps", LO, HI, lambda i, g=g: g in keys(i))  # type: ignore[misc]
                for g in groups
            }
            rows = {r["key"]: r for r in body["rows"] if not r["other"]}
            assert set(rows) == {g for g, h in expected.items() if h.n >= 5}, by
            for key, row in rows.items():
                assert row["distribution"] == expected[key].counts, (by, key)
            sizes = [r["n"] for r in body["rows"] if not r["other"]]
            assert sizes == sorted(sizes, reverse=True)
            # `other` holds every response of a merged group, each once (by tag, a response
            # in two merged tags is one answer, not two)
            merged = {g for g, h in expected.items() if h.n and g not in rows}
            (other,) = [r for r in body["rows"] if r["other"]] or [None]
            if merged:
                assert other is not None, by
                want = brute(
                    data,
                    "nps",
                    LO,
                    HI,
                    lambda i, merged=merged: bool(merged & set(keys(i))),  # type: ignore[misc]
                )
                assert (other["n"], other["distribution"]) == (want.n, want.counts), by
                assert other["groups"] == len(merged)
                assert other["n"] >= 5
                assert not other["suppressed"]
            else:
                assert other is None, by
