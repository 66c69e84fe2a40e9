"""An action's impact: a real effect is detected, none is not (at about the nominal rate
over many seeds), and a tenant-wide shift is removed by the control; through the API, the
before/after windows, the control, the verdict and its edges."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedback_api.actions.impact import assess
from feedback_api.actions.schemas import ActionMetric, Verdict
from feedback_api.actions.service import Measured
from feedback_api.metrics.measures import Histogram
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.insights.test_trends import store

NOW = datetime.now(UTC).replace(microsecond=0)


def nps_sample(rng: random.Random, n: int, shift: float) -> Histogram:
    h = Histogram(0, 10)
    for _ in range(n):
        h.add(max(0, min(10, round(rng.gauss(7.5 + shift, 2.2)))), 1)
    return h


def measured(h: Histogram) -> Measured:
    return Measured(None, None, h.n, histogram=h)


def run(seed: int, scope_shift: float, everywhere: float, n: int = 600) -> Verdict:
    rng = random.Random(seed)
    before, control_before = nps_sample(rng, n, 0), nps_sample(rng, 3 * n, 0)
    after = nps_sample(rng, n, scope_shift + everywhere)
    control_after = nps_sample(rng, 3 * n, everywhere)
    found = assess(
        ActionMetric.NPS,
        measured(before),
        measured(after),
        measured(control_before),
        measured(control_after),
        needed=100,
    )
    return found.verdict


def test_a_real_effect_is_detected_over_seeds() -> None:
    verdicts = [run(seed, scope_shift=0.8, everywhere=0) for seed in range(100)]
    assert verdicts.count(Verdict.IMPROVED) >= 95


def test_no_effect_is_called_improved_at_about_the_nominal_rate() -> None:
    runs = 500
    verdicts = [run(5000 + seed, scope_shift=0, everywhere=0) for seed in range(runs)]
    improved = verdicts.count(Verdict.IMPROVED)
    worse = verdicts.count(Verdict.WORSE)
    # two-sided 5 %: about 2.5 % each way (2,000 seeds gave 2.3 % and 2.75 %)
    assert improved <= 0.04 * runs, improved
    assert improved + worse <= 0.075 * runs, (improved, worse)


def test_a_tenant_wide_shift_is_removed_by_the_control() -> None:
    verdicts = [run(2000 + seed, scope_shift=0, everywhere=0.8) for seed in range(100)]
    # the scope alone rose every time; against the control, it is no effect
    assert verdicts.count(Verdict.IMPROVED) <= 8
    assert verdicts.count(Verdict.NO_DETECTABLE_CHANGE) >= 85


def test_too_few_responses_after_is_too_early() -> None:
    rng = random.Random(1)
    found = assess(
        ActionMetric.NPS,
        measured(nps_sample(rng, 500, 0)),
        measured(nps_sample(rng, 40, 2)),
        measured(nps_sample(rng, 500, 0)),
        measured(nps_sample(rng, 40, 0)),
        needed=200,
    )
    assert found.verdict is Verdict.TOO_EARLY
    assert "40 of the 200" in found.reason


def test_a_theme_share_that_falls_is_an_improvement() -> None:
    found = assess(
        ActionMetric.THEME_SHARE,
        Measured(None, None, 2000, mentions=400),
        Measured(None, None, 2000, mentions=100),
        Measured(None, None, 6000, mentions=600),
        Measured(None, None, 6000, mentions=600),
        needed=300,
    )
    assert found.verdict is Verdict.IMPROVED
    assert found.did is not None
    assert found.did.delta == pytest.approx(-15)


# --- through the API -------------------------------------------------------------------


def responses(
    rng: random.Random, n: int, touchpoint: str, days: tuple[int, int], shift: float
) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        age = rng.uniform(*days)
        out.append(
            {
                "kind": "nps",
                "score": max(0, min(10, round(rng.gauss(7.5 + shift, 2.2)))),
                "channel": "app",
                "touchpoint": touchpoint,
                "occurred_at": (NOW - timedelta(days=age)).isoformat(),
            }
        )
    return out


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


async def plant(tenant: TenantHandle, store_a_after: float, everywhere: float) -> str:
    rng = random.Random(19)
    items = responses(rng, 700, "store_a", (40, 110), 0)
    items += responses(rng, 1400, "store_b", (40, 110), 0)
    items += responses(rng, 700, "store_a", (1, 19), store_a_after + everywhere)
    items += responses(rng, 1400, "store_b", (1, 19), everywhere)
    await store(tenant, items)
    made = await tenant.post(
        "/v1/actions",
        json={
            "title": "Brighter fitting rooms in store A",
            "scope": {"touchpoint": "store_a"},
            "metric": "nps",
            "target": 40,
            "deadline": day(-60),
            "baseline_from": day(120),
            "baseline_to": day(35),
            "starts_on": day(25),
            "ends_on": day(20),
            "status": "in_progress",
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_the_effect_against_the_rest_of_the_tenant(tenant: TenantHandle) -> None:
    action_id = await plant(tenant, store_a_after=1.0, everywhere=0)
    body = (await tenant.get(f"/v1/actions/{action_id}/impact")).json()
    assert body["before"]["n"] == 700
    assert body["after"]["n"] == 700
    assert body["control"] == "the rest of the tenant"
    assert body["control_before"]["n"] == 1400
    assert body["change"]["delta"] > 10
    assert body["difference_in_differences"]["interval"]["low"] > 0
    assert body["verdict"] == "improved"
    assert body["progress"] is not None
    # against a chosen comparison scope: the same store B
    chosen = (
        await tenant.get(
            f"/v1/actions/{action_id}/impact", params={"control_touchpoint": "store_b"}
        )
    ).json()
    assert chosen["control"] == "the comparison scope"
    assert chosen["control_before"]["n"] == 1400
    assert chosen["verdict"] == "improved"


async def test_a_tenant_wide_upswing_is_not_the_actions_effect(tenant: TenantHandle) -> None:
    action_id = await plant(tenant, store_a_after=0, everywhere=1.0)
    body = (await tenant.get(f"/v1/actions/{action_id}/impact")).json()
    assert body["change"]["interval"]["low"] > 0  # store A rose ...
    assert body["control_change"]["interval"]["low"] > 0  # ... and so did everyone
    assert body["verdict"] == "no_detectable_change"


async def test_before_the_change_is_in_place_it_is_too_early(tenant: TenantHandle) -> None:
    action_id = await plant(tenant, store_a_after=1.0, everywhere=0)
    early = (await tenant.get(f"/v1/actions/{action_id}/impact", params={"to": day(19)})).json()
    assert early["after"]["n"] < 100
    assert early["verdict"] == "too_early"
    before_start = (
        await tenant.get(f"/v1/actions/{action_id}/impact", params={"to": day(30)})
    ).json()
    assert before_start["after"]["n"] == 0
    assert before_start["verdict"] == "too_early"


async def test_other_tenants_bad_input_and_scopes(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    action_id = await plant(tenant, store_a_after=0, everywhere=0)
    url = f"/v1/actions/{action_id}/impact"
    assert_problem(await other_tenant.get(url), 404, "not_found")
    for params in (
        {"to": "9999-99-99"},
        {"control_channel": "fax"},
        {"control_touchpoint": "x\x00"},
    ):
        assert_problem(await tenant.get(url, params=params), 422, "validation_error")
    writer = await tenant.key("responses:write")
    assert_problem(await tenant.get(url, key=writer), 403, "missing_scope")


async def test_with_a_theme_its_share_of_comments_before_and_after(tenant: TenantHandle) -> None:
    answer = await tenant.put("/v1/themes/mirror", json={"keywords": ["mirror"]})
    assert answer.status_code == 201, answer.text
    rng = random.Random(4)

    def comments(n: int, days: tuple[int, int], share: float) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            dark = rng.random() < share
            out.append(
                {
                    "kind": "nps",
                    "score": rng.randint(0, 6) if dark else rng.randint(7, 10),
                    "channel": "app",
                    "comment": "the mirror is too dark" if dark else "fine, thanks",
                    "occurred_at": (NOW - timedelta(days=rng.uniform(*days))).isoformat(),
                }
            )
        return out

    await store(tenant, comments(1000, (40, 110), 0.2) + comments(1000, (1, 19), 0.05))
    made = await tenant.post(
        "/v1/actions",
        json={
            "title": "Brighter mirrors",
            "scope": {"theme": "mirror"},
            "metric": "nps",
            "target": -50,
            "deadline": day(-60),
            "baseline_from": day(120),
            "baseline_to": day(35),
            "ends_on": day(20),
        },
    )
    assert made.status_code == 201, made.text
    body = (await tenant.get(f"/v1/actions/{made.json()['id']}/impact")).json()
    assert 15 < body["theme_share_before"]["value"] < 25
    assert body["theme_share_before"]["n"] == 1000
    assert 2 < body["theme_share_after"]["value"] < 8
    assert body["theme_share_change"]["interval"]["high"] < 0
    plain = await plant(tenant, store_a_after=0, everywhere=0)
    without = (await tenant.get(f"/v1/actions/{plain}/impact")).json()
    assert without["theme_share_before"] is None
    assert without["theme_share_change"] is None
