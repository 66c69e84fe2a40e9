"""A theme over time, and rising themes: through the API on planted data, the test's error
rates over many synthetic seeds, and the worker's `theme.rising` sent once per week."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from feedback_api.insights import watch
from feedback_api.insights.trends import MIN_MENTIONS, rising_tests
from feedback_api.models import Event
from feedback_api.worker import PERIODIC, TASKS
from tests.fixtures.auth import TenantHandle, assert_problem

NOW = datetime.now(UTC).replace(microsecond=0)


async def store(tenant: TenantHandle, items: list[dict[str, Any]]) -> None:
    for first in range(0, len(items), 1000):
        answer = await tenant.post(
            "/v1/responses/batch", json={"items": items[first : first + 1000]}
        )
        assert answer.status_code == 200, answer.text
        assert all(r["status"] == 201 for r in answer.json()["items"]), answer.text[:500]


def item(comment: str, when: datetime, score: int = 5, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "nps",
        "score": score,
        "channel": "app",
        "comment": comment,
        "occurred_at": when.isoformat(),
        **extra,
    }


def planted(
    start: datetime, days: int, n: int, shares: dict[str, float], rng: random.Random
) -> list[dict[str, Any]]:
    """n comments spread over `days` from `start`; each mentions a word with its share."""
    out = []
    for i in range(n):
        when = start + timedelta(seconds=rng.uniform(0, days * 86400 - 1))
        words = [w for w, share in shares.items() if rng.random() < share]
        out.append(item(" and ".join(words) or "nothing special", when, score=rng.randint(0, 10)))
        del i
    return out


async def dictionary(tenant: TenantHandle, *words: str) -> None:
    for word in words:
        answer = await tenant.put(f"/v1/themes/{word}", json={"keywords": [word]})
        assert answer.status_code == 201, answer.text


class TestTrend:
    async def test_buckets_count_mentions_in_the_tenants_weeks(self, tenant: TenantHandle) -> None:
        await tenant.patch("/v1/tenant", json={"timezone": "Asia/Shanghai"})
        await dictionary(tenant, "mirror")
        zone = ZoneInfo("Asia/Shanghai")
        monday = datetime(2026, 11, 2, tzinfo=zone)  # a Monday, local midnight
        items = [item("the mirror is dark", monday + timedelta(hours=1))] * 3
        items += [item("fine", monday + timedelta(days=2))] * 2
        items += [item("mirror again", monday + timedelta(days=7, minutes=1), tags=["fitting"])]
        # Sunday 23:30 in Shanghai (15:30 UTC): the first local week's last half hour.
        items += [item("mirror", monday + timedelta(days=6, hours=23, minutes=30))]
        await store(tenant, items)
        body = (
            await tenant.get(
                "/v1/insights/themes/mirror/trend",
                params={"interval": "week", "from": "2026-11-02", "to": "2026-11-16"},
            )
        ).json()
        assert [b["start"][:10] for b in body["buckets"]] == ["2026-11-02", "2026-11-09"]
        assert body["buckets"][0]["start"].endswith("+08:00")
        assert [(b["base"], b["mentions"]) for b in body["buckets"]] == [(6, 4), (1, 1)]
        assert body["buckets"][0]["share"]["value"] == pytest.approx(400 / 6)
        tag = (
            await tenant.get(
                "/v1/insights/themes/tag:fitting/trend",
                params={"interval": "week", "from": "2026-11-02", "to": "2026-11-16"},
            )
        ).json()
        assert [b["mentions"] for b in tag["buckets"]] == [0, 1]

    async def test_small_cells_withhold_the_metric(self, tenant: TenantHandle) -> None:
        await dictionary(tenant, "mirror")
        await store(tenant, [item("mirror", NOW - timedelta(days=1))] * 2)
        reader = await tenant.key("insights:read")
        body = (
            await tenant.get(
                "/v1/insights/themes/mirror/trend", params={"interval": "month"}, key=reader
            )
        ).json()
        cells = [b["with_theme"] for b in body["buckets"] if b["mentions"]]
        assert cells
        assert all(c["suppressed"] and c["value"] is None for c in cells)

    async def test_unknown_theme_bad_interval_and_other_tenants(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await dictionary(tenant, "mirror")
        assert_problem(await tenant.get("/v1/insights/themes/nope/trend"), 404, "not_found")
        assert_problem(await other_tenant.get("/v1/insights/themes/mirror/trend"), 404, "not_found")
        bad = await tenant.get("/v1/insights/themes/mirror/trend", params={"interval": "hour"})
        assert_problem(bad, 422, "validation_error")
        many = await tenant.get(
            "/v1/insights/themes/mirror/trend",
            params={"interval": "day", "from": "0001-01-01", "to": "9999-12-31"},
        )
        assert many.status_code == 422, many.text
        for key in ("Bad Key", "tag:", "x" * 65, "tag:%00"):
            answer = await tenant.get(f"/v1/insights/themes/{key}/trend")
            assert answer.status_code in (404, 422), (key, answer.text)


class TestRising:
    async def test_a_tripled_theme_rises_and_a_stable_one_does_not(
        self, tenant: TenantHandle
    ) -> None:
        rng = random.Random(5)
        await dictionary(tenant, "mirror", "parking")
        start = NOW - timedelta(days=60)
        await store(tenant, planted(start, 30, 600, {"mirror": 0.04, "parking": 0.10}, rng))
        await store(
            tenant,
            planted(NOW - timedelta(days=30), 30, 600, {"mirror": 0.12, "parking": 0.10}, rng),
        )
        period = {"from": (NOW - timedelta(days=30)).isoformat(), "to": NOW.isoformat()}
        body = (await tenant.get("/v1/insights/themes/rising", params=period)).json()
        by_key = {i["key"]: i for i in body["items"]}
        assert by_key["mirror"]["rising"] is True
        assert by_key["mirror"]["ratio"] > 2
        assert by_key["mirror"]["change"]["low"] > 0
        assert by_key["parking"]["rising"] is False
        assert body["items"][0]["key"] == "mirror"
        assert body["base"] == 600
        assert body["previous_base"] == 600

    async def test_another_tenants_comments_never_count(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await dictionary(tenant, "mirror")
        await dictionary(other_tenant, "mirror")
        await store(tenant, [item("mirror", NOW - timedelta(days=2), tags=["dark"])] * 40)
        body = (await other_tenant.get("/v1/insights/themes/rising")).json()
        assert body["base"] == 0
        assert body["items"] == []
        trend = (await other_tenant.get("/v1/insights/themes/tag:dark/trend")).json()
        assert sum(b["base"] for b in trend["buckets"]) == 0

    async def test_few_mentions_are_not_tested(self, tenant: TenantHandle) -> None:
        await dictionary(tenant, "mirror")
        items = [item("mirror", NOW - timedelta(days=2))] * (MIN_MENTIONS - 1)
        items += [item("fine", NOW - timedelta(days=40))] * 50
        items += [item("fine", NOW - timedelta(days=3))] * 50
        await store(tenant, items)
        body = (await tenant.get("/v1/insights/themes/rising")).json()
        mirror = next(i for i in body["items"] if i["key"] == "mirror")
        assert mirror["tested"] is False
        assert mirror["rising"] is False
        assert mirror["p_value"] is None

    @pytest.mark.parametrize("fdr", ["0", "1", "NaN", "-0.1", "x"])
    async def test_a_bad_fdr_is_refused(self, tenant: TenantHandle, fdr: str) -> None:
        answer = await tenant.get("/v1/insights/themes/rising", params={"fdr": fdr})
        assert_problem(answer, 422, "validation_error")


def _counts(rng: random.Random, shares: dict[str, float], n: int) -> dict[str | None, int]:
    counts: dict[str | None, int] = {None: n}
    for key, share in shares.items():
        counts[key] = sum(rng.random() < share for _ in range(n))
    return counts


def test_stable_themes_are_called_rising_at_most_at_the_fdr() -> None:
    """Ten stable themes over 400 seeds: under the complete null, Benjamini–Hochberg holds
    the chance of any false call at the FDR (5 %); allow the binomial margin of 400 runs."""
    shares = {f"t{i}": 0.03 + 0.01 * i for i in range(10)}
    false_calls = 0
    for seed in range(400):
        rng = random.Random(seed)
        before, now = _counts(rng, shares, 800), _counts(rng, shares, 800)
        false_calls += any(r for _, _, r in rising_tests(before, now, 0.05))
    assert false_calls / 400 <= 0.05 + 2 * (0.05 * 0.95 / 400) ** 0.5


def test_a_tripled_theme_is_found_among_stable_ones() -> None:
    shares = {f"t{i}": 0.05 for i in range(9)}
    """The FDR is the expected share of false calls among the calls of one run (0 when
    nothing is called), averaged over the runs."""
    found, proportions = 0, 0.0
    for seed in range(200):
        rng = random.Random(1000 + seed)
        before = _counts(rng, {**shares, "grown": 0.03}, 800)
        now = _counts(rng, {**shares, "grown": 0.09}, 800)
        called = {t.key for t, _, r in rising_tests(before, now, 0.05) if r}
        found += "grown" in called
        proportions += len(called - {"grown"}) / max(len(called), 1)
    assert found / 200 >= 0.95
    assert proportions / 200 <= 0.05 + 0.02


class TestWatch:
    async def test_the_worker_sends_theme_rising_once_per_theme_and_week(
        self, tenant: TenantHandle
    ) -> None:
        assert "insights.rising" in TASKS
        assert any(p.kind == "insights.rising" for p in PERIODIC)
        rng = random.Random(9)
        await dictionary(tenant, "mirror", "parking")
        zone = ZoneInfo("UTC")
        start, end = watch.last_week(NOW, zone)
        week = timedelta(days=7)
        shares_before = {"mirror": 0.04, "parking": 0.10}
        shares_now = {"mirror": 0.14, "parking": 0.10}
        await store(tenant, planted(start - week, 7, 500, shares_before, rng))
        await store(tenant, planted(start, 7, 500, shares_now, rng))
        assert await watch.watch(tenant.session, tenant.id, zone, NOW) == 1
        assert await watch.watch(tenant.session, tenant.id, zone, NOW + timedelta(hours=1)) == 0
        # Read from the table: this test's transaction never commits, so polling would not
        # show its events yet (events/repository.py).
        stmt = select(Event).where(Event.tenant_id == tenant.id, Event.type == "theme.rising")
        rising = (await tenant.session.scalars(stmt)).all()
        assert len(rising) == 1
        data = rising[0].data
        assert data["key"] == "mirror"
        assert data["kind"] == "nps"
        assert data["period"]["from"].startswith(start.date().isoformat())
        assert data["ratio"] > 2
        assert (tenant.id, "UTC") in await watch.watched_tenants(tenant.session)
        assert end - start == week
