"""No metric cell singles out a person: below the tenant's `metrics_min_cell_n` a read shows
n but nothing computed from the scores, unless the key holds `metrics:small_cells`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from feedback_api.metrics.measures import Histogram, measure
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.metrics import fold, seed

AT = "2026-09-01T10:00:00Z"
DAY = {"from": "2026-09-01", "to": "2026-09-02"}
WITHHELD = ("value", "interval", "margin", "categories", "share", "sd", "distribution")
# Three answers that every filter below picks out of a crowd of 20.
RARE = {
    "channel": "sms",
    "touchpoint": "returns",
    "survey": "exit",
    "tags": ["rare"],
    "agent_ref": "agent-7",
    "location_ref": "store-9",
    "language": "fr",
    "customer": "c-rare",
}
RARE_SCORES = (0, 9, 10)
FILTERS: list[dict[str, str]] = [
    {"agent_ref": "agent-7"},
    {"location_ref": "store-9"},
    {"touchpoint": "returns"},
    {"survey": "exit"},
    {"channel": "sms"},
    {"tag": "rare"},
    {"language": "fr"},
    {"attr.tier": "platinum"},
    {"verified": "true"},
    {"channel": "sms", "agent_ref": "agent-7", "attr.tier": "platinum"},
]


def answers(score: int, n: int = 1, at: str = AT, **fields: Any) -> list[dict[str, Any]]:
    return [{"kind": "nps", "score": score, "channel": "crm", "occurred_at": at, **fields}] * n


async def crowd_and_three(tenant: TenantHandle, kind: str = "nps", **scale: int) -> None:
    """20 answers from the crowd, 3 from agent-7's customer in store 9 (and so on)."""
    low, high = scale.get("scale_min", 0), scale.get("scale_max", 10)
    crowd = [
        {"kind": kind, "score": high - i % 3, "channel": "crm", "occurred_at": AT, **scale}
        for i in range(20)
    ]
    rare = [
        {"kind": kind, "score": max(low, min(high, s)), "occurred_at": AT, **RARE, **scale}
        for s in RARE_SCORES
    ]
    ids = await seed(tenant, crowd + rare)
    put = await tenant.put("/v1/customers/c-rare", json={"attributes": {"tier": "platinum"}})
    assert put.status_code in (200, 201), put.text
    # verified comes from signed invitations; set it directly for the three
    await tenant.session.execute(
        text("UPDATE responses SET verified = true WHERE id = ANY(:ids)"), {"ids": ids[20:]}
    )


async def get(tenant: TenantHandle, url: str, key: str, **params: Any) -> dict[str, Any]:
    response = await tenant.get(url, params=params, key=key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_suppressed(cell: dict[str, Any], n: int) -> None:
    assert cell["suppressed"] is True
    assert cell["n"] == n  # n is always shown
    assert cell["low_sample"] is True
    for name in WITHHELD:
        assert cell[name] is None, name


def assert_shown(cell: dict[str, Any], kind: str, histogram: Histogram) -> None:
    want = measure(kind, histogram)
    assert cell["suppressed"] is False
    assert cell["n"] == histogram.n
    assert cell["distribution"] == histogram.counts
    assert cell["categories"] == want.categories
    assert cell["value"] == pytest.approx(want.value)


@pytest.fixture
async def keys(tenant: TenantHandle) -> tuple[str, str]:
    """A dashboard's key, and an analyst's key that may read small cells."""
    return await tenant.key("metrics:read"), await tenant.key("metrics:read", "metrics:small_cells")


class TestFilteredReads:
    @pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(p))
    async def test_below_the_threshold_only_n_unless_the_key_may(
        self, tenant: TenantHandle, keys: tuple[str, str], params: dict[str, str]
    ) -> None:
        dashboard, analyst = keys
        await crowd_and_three(tenant)
        for _ in range(2):  # from the delta log, then from the rollup
            body = await get(tenant, "/v1/metrics/nps", dashboard, **DAY, **params)
            assert_suppressed(body, 3)
            assert body["min_cell"] == 5
            shown = await get(tenant, "/v1/metrics/nps", analyst, **DAY, **params)
            assert_shown(shown, "nps", Histogram.of(0, 10, RARE_SCORES))
            assert shown["interval"] is not None
            # the crowd itself is large enough for anyone
            everyone = await get(tenant, "/v1/metrics/nps", dashboard, **DAY)
            assert (everyone["n"], everyone["suppressed"]) == (23, False)
            await fold(tenant)

    @pytest.mark.parametrize(
        ("kind", "scale"),
        [("csat", {}), ("ces", {}), ("rating", {"scale_min": 1, "scale_max": 10})],
    )
    async def test_every_kind_withholds_its_shares_and_spread(
        self, tenant: TenantHandle, keys: tuple[str, str], kind: str, scale: dict[str, int]
    ) -> None:
        dashboard, analyst = keys
        low, high = {"csat": (1, 5), "ces": (1, 7)}.get(kind, (1, 10))
        await crowd_and_three(tenant, kind, scale_min=low, scale_max=high)
        params = {**DAY, "agent_ref": "agent-7", **scale}
        assert_suppressed(await get(tenant, f"/v1/metrics/{kind}", dashboard, **params), 3)
        shown = await get(tenant, f"/v1/metrics/{kind}", analyst, **params)
        scores = [max(low, min(high, s)) for s in RARE_SCORES]
        assert_shown(shown, kind, Histogram.of(low, high, scores))
        if kind != "csat":
            assert shown["sd"] is not None
            assert shown["share"] is not None

    async def test_a_tenant_wide_total_below_the_threshold_is_a_small_cell(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        """Unfiltered is no exception: a tenant with 3 answers in a period has 3 people's
        answers in its NPS."""
        dashboard, analyst = keys
        await seed(tenant, [a for s in RARE_SCORES for a in answers(s)])
        assert_suppressed(await get(tenant, "/v1/metrics/nps", dashboard, **DAY), 3)
        assert (await get(tenant, "/v1/metrics/nps", analyst, **DAY))["suppressed"] is False
        # an empty period has nothing to hide: n = 0, null value, zeros
        empty = await get(tenant, "/v1/metrics/nps", dashboard, **{"from": "2026-10-01"})
        assert (empty["n"], empty["suppressed"], empty["value"]) == (0, False, None)
        assert empty["distribution"] == [0] * 11

    async def test_at_the_threshold_shown_below_it_not(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        dashboard, _ = keys
        await seed(tenant, [a for n in (4, 5, 6) for a in answers(10, n, agent_ref=f"agent-{n}")])
        for agent, suppressed in (("agent-4", True), ("agent-5", False), ("agent-6", False)):
            body = await get(tenant, "/v1/metrics/nps", dashboard, **DAY, agent_ref=agent)
            assert body["suppressed"] is suppressed, agent
            assert (body["value"] is None) is suppressed

    async def test_the_tenants_threshold_takes_effect(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        dashboard, _ = keys
        await crowd_and_three(tenant)
        params = {**DAY, "agent_ref": "agent-7"}
        assert (await get(tenant, "/v1/metrics/nps", dashboard, **params))["suppressed"] is True
        assert (await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 3})).status_code == 200
        body = await get(tenant, "/v1/metrics/nps", dashboard, **params)
        assert (body["min_cell"], body["suppressed"]) == (3, False)
        assert body["distribution"] == Histogram.of(0, 10, RARE_SCORES).counts
        # and upwards: the crowd of 23 is a small cell when the minimum is 30
        await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 30})
        assert_suppressed(await get(tenant, "/v1/metrics/nps", dashboard, **DAY), 23)
        await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 1})  # 1: nothing withheld
        assert (await get(tenant, "/v1/metrics/nps", dashboard, **params))["suppressed"] is False

    async def test_needed_n_does_not_leak_the_variance(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        dashboard, analyst = keys
        await crowd_and_three(tenant)
        params = {**DAY, "agent_ref": "agent-7", "target_margin": 5}
        worst = 1534  # NPS ±5 points at Var = 1
        assert (await get(tenant, "/v1/metrics/nps", dashboard, **params))["needed_n"] == worst
        assert (await get(tenant, "/v1/metrics/nps", analyst, **params))["needed_n"] != worst

    async def test_needed_n_with_every_answer_alike_is_the_worst_case(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        """40 promoters: a variance of 0 seen, yet not "0 more answers needed"."""
        dashboard, _ = keys
        await seed(tenant, answers(10, 40))
        body = await get(tenant, "/v1/metrics/nps", dashboard, **DAY, target_margin=5)
        assert (body["value"], body["needed_n"]) == (100.0, 1534)

    async def test_the_scope_does_not_replace_metrics_read(self, tenant: TenantHandle) -> None:
        key = await tenant.key("metrics:small_cells")
        assert_problem(await tenant.get("/v1/metrics/nps", key=key), 403, "missing_scope")


class TestTrendCompareSummary:
    async def test_each_trend_bucket_is_a_cell(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        dashboard, analyst = keys
        day2 = "2026-09-02T10:00:00Z"
        await seed(tenant, answers(10, 6) + answers(0, 2, at=day2))
        params = {"from": "2026-09-01", "to": "2026-09-04", "interval": "day"}
        for _ in range(2):
            trend = await get(tenant, "/v1/metrics/nps/trend", dashboard, **params)
            first, second, third = trend["buckets"]
            assert (first["n"], first["suppressed"], first["value"]) == (6, False, 100.0)
            assert_suppressed(second, 2)
            assert (third["n"], third["suppressed"], third["distribution"]) == (0, False, [0] * 11)
            shown = await get(tenant, "/v1/metrics/nps/trend", analyst, **params)
            assert [b["value"] for b in shown["buckets"]] == [100.0, -100.0, None]
            await fold(tenant)

    async def test_compare_makes_no_comparison_with_a_small_side(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        """The delta and the large side's value would give the small side away."""
        dashboard, analyst = keys
        await crowd_and_three(tenant)
        params = {**DAY, "a_segment": "channel:crm", "b_segment": "agent_ref:agent-7"}
        body = await get(tenant, "/v1/metrics/nps/compare", dashboard, **params)
        assert (body["a"]["metric"]["n"], body["a"]["metric"]["suppressed"]) == (20, False)
        assert_suppressed(body["b"]["metric"], 3)
        assert body["comparison"] is None
        shown = await get(tenant, "/v1/metrics/nps/compare", analyst, **params)
        assert shown["comparison"] is not None
        assert shown["b"]["metric"]["value"] == pytest.approx(
            measure("nps", Histogram.of(0, 10, RARE_SCORES)).value
        )
        # two periods: the same rule for each side
        periods = {
            "a_from": "2026-08-01",
            "a_to": "2026-09-01",
            "b_from": "2026-09-01",
            "b_to": "2026-09-02",
        }
        await seed(tenant, answers(9, 2, at="2026-08-15T10:00:00Z"))
        body = await get(tenant, "/v1/metrics/nps/compare", dashboard, **periods)
        assert_suppressed(body["a"]["metric"], 2)
        assert body["comparison"] is None

    async def test_summary_withholds_a_small_period_and_its_change(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        dashboard, analyst = keys
        before = answers(5, 40, at="2026-08-20T10:00:00Z", kind="csat")
        await seed(tenant, before + answers(1, 2, at="2026-09-10T10:00:00Z", kind="csat"))
        period = {"from": "2026-09-01", "to": "2026-10-01"}
        body = await get(tenant, "/v1/metrics/summary", dashboard, **period)
        assert body["min_cell"] == 5
        assert_suppressed(body["csat"]["current"], 2)
        assert body["csat"]["previous"]["value"] == 100.0
        assert body["csat"]["change"] is None
        shown = await get(tenant, "/v1/metrics/summary", analyst, **period)
        assert shown["csat"]["current"]["value"] == 0.0
        assert shown["csat"]["change"]["delta"] == pytest.approx(-100.0)


class TestBreakdowns:
    async def test_no_group_is_hidden_beside_the_others(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        """Differencing within one read: if a small group were suppressed while the others
        were shown, the tenant's total minus the shown rows would give it. Small groups
        are merged instead, so the rows always add up to the whole and none is hidden."""
        dashboard, analyst = keys
        sizes = {"store-1": 20, "store-2": 6, "store-3": 3}
        await seed(
            tenant,
            [
                a
                for loc, n in sizes.items()
                for i in range(n)
                for a in answers(i % 11, location_ref=loc)
            ],
        )
        total = await get(tenant, "/v1/metrics/nps", dashboard, **DAY)
        params = {**DAY, "by": "location_ref"}
        rows = (await get(tenant, "/v1/metrics/nps/breakdown", dashboard, **params))["rows"]
        # store-3 alone is too small, so store-2 joins it
        assert [(r["key"], r["n"], r["other"], r["suppressed"]) for r in rows] == [
            ("store-1", 20, False, False),
            (None, 9, True, False),
        ]
        assert sum(r["n"] for r in rows) == total["n"]
        columns = zip(*(r["distribution"] for r in rows), strict=True)
        assert [sum(c) for c in columns] == total["distribution"]  # nothing left to derive
        # the analyst sees every store on its own
        rows = (await get(tenant, "/v1/metrics/nps/breakdown", analyst, **params))["rows"]
        assert [(r["key"], r["n"], r["suppressed"]) for r in rows] == [
            ("store-1", 20, False),
            ("store-2", 6, False),
            ("store-3", 3, False),
        ]
        assert rows[2]["distribution"] == Histogram.of(0, 10, range(3)).counts

    async def test_all_groups_together_too_small_is_one_suppressed_row(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        dashboard, _ = keys
        await crowd_and_three(tenant)
        params = {**DAY, "channel": "sms", "by": "agent_ref"}
        (row,) = (await get(tenant, "/v1/metrics/nps/breakdown", dashboard, **params))["rows"]
        assert (row["key"], row["other"], row["groups"]) == (None, True, 1)
        assert_suppressed(row, 3)

    async def test_by_tag_other_counts_each_response_once(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        """One answer tagged five ways is one person, not a cell of five."""
        dashboard, analyst = keys
        tags = ["t1", "t2", "t3", "t4", "t5"]
        await seed(
            tenant,
            answers(10, 20, tags=["common"])
            + answers(9, 5, tags=["common"])
            + answers(0, tags=tags),
        )
        params = {**DAY, "by": "tag"}
        rows = (await get(tenant, "/v1/metrics/nps/breakdown", dashboard, **params))["rows"]
        # the five tags hold one response: too few, so `common` joins them
        (row,) = rows
        assert (row["other"], row["groups"], row["n"], row["suppressed"]) == (True, 6, 26, False)
        assert row["distribution"] == Histogram.of(0, 10, [10] * 20 + [9] * 5 + [0]).counts
        rows = (await get(tenant, "/v1/metrics/nps/breakdown", analyst, **params))["rows"]
        assert [(r["key"], r["n"]) for r in rows] == [("common", 25)] + [(t, 1) for t in tags]

    async def test_by_tag_other_holds_its_responses_once(
        self, tenant: TenantHandle, keys: tuple[str, str]
    ) -> None:
        dashboard, _ = keys
        await seed(
            tenant,
            answers(10, 20, tags=["common"])
            + answers(0, 3, tags=["a", "b"])
            + answers(5, 1, tags=["b"])
            + answers(8, 2, tags=["c"]),
        )
        rows = (await get(tenant, "/v1/metrics/nps/breakdown", dashboard, **DAY, by="tag"))["rows"]
        # a (3), b (4) and c (2) are 9 tag uses but 6 answers: enough, shown, n = 6
        assert [(r["key"], r["n"], r["other"], r["groups"]) for r in rows] == [
            ("common", 20, False, 1),
            (None, 6, True, 3),
        ]
        assert rows[1]["distribution"] == Histogram.of(0, 10, [0, 0, 0, 5, 8, 8]).counts
        assert rows[1]["suppressed"] is False


async def test_another_tenant_sees_nothing_of_this_one(
    tenant: TenantHandle, other_tenant: TenantHandle, keys: tuple[str, str]
) -> None:
    await crowd_and_three(tenant)
    await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 2})
    stranger = await other_tenant.key("metrics:read", "metrics:small_cells")
    for key in (stranger, other_tenant.admin_key):
        body = await get(other_tenant, "/v1/metrics/nps", key, **DAY, agent_ref="agent-7")
        assert (body["n"], body["suppressed"], body["min_cell"]) == (0, False, 5)
        rows = (await get(other_tenant, "/v1/metrics/nps/breakdown", key, **DAY, by="agent_ref"))[
            "rows"
        ]
        assert rows == []
        trend = await get(other_tenant, "/v1/metrics/nps/trend", key, **DAY, interval="day")
        assert [b["n"] for b in trend["buckets"]] == [0]
        summary = await get(other_tenant, "/v1/metrics/summary", key, **DAY)
        assert summary["nps"]["current"]["n"] == 0
