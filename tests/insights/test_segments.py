"""Segments: a planted segment is found and nothing else, over many seeds (pure); a stable
population shows no segment at about the FDR; and the endpoint through the API."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedback_api.insights.segments import find
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.schemas import MetricKind
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.insights.test_trends import store

NOW = datetime.now(UTC).replace(microsecond=0)
ATTRIBUTES = {
    "tier": (("gold", 0.2), ("silver", 0.3), ("bronze", 0.5)),
    "region": (("east", 0.25), ("west", 0.25), ("north", 0.25), ("south", 0.25)),
    "lifecycle": (("new", 0.4), ("returning", 0.6)),
}


def customer(rng: random.Random) -> tuple[str, ...]:
    return tuple(
        rng.choices([v for v, _ in values], [w for _, w in values])[0]
        for values in ATTRIBUTES.values()
    )


Planted = Callable[[tuple[str, ...]], bool]


def east_new(values: tuple[str, ...]) -> bool:
    return values[1] == "east" and values[2] == "new"


def score(rng: random.Random, values: tuple[str, ...], shift: float, planted: Planted) -> int:
    return max(0, min(10, round(rng.gauss(8.0, 2.0) - (shift if planted(values) else 0.0))))


def cells_of(
    seed: int, n: int, shift: float, planted: Planted = east_new
) -> dict[tuple[str | None, ...], Histogram]:
    rng = random.Random(seed)
    cells: dict[tuple[str | None, ...], Histogram] = defaultdict(lambda: Histogram(0, 10))
    for _ in range(n):
        values = customer(rng)
        cells[values].add(score(rng, values, shift, planted), 1)
    return dict(cells)


def search(cells: dict[tuple[str | None, ...], Histogram]) -> list[tuple[tuple[int, str], ...]]:
    found = find(cells, 3, MetricKind.NPS, low=0, high=10, fdr=0.05, min_n=30)
    return sorted(found.reported)


PLANTED = ((1, "east"), (2, "new"))


@pytest.mark.parametrize(
    ("planted", "target", "shift"),
    [
        # new customers in the east (10 % of them) score about 20 NPS points lower
        (east_new, PLANTED, 2.0),
        # a pair that is 40 % of a large value (bronze): the value differs strongly too
        (lambda v: v[0] == "bronze" and v[2] == "new", ((0, "bronze"), (2, "new")), 1.5),
        # one value alone: its pairs differ as much, and must not be reported
        (lambda v: v[0] == "gold", ((0, "gold"),), 1.5),
    ],
    ids=["pair", "pair-in-a-large-value", "value"],
)
def test_the_planted_segment_is_found_and_no_other_over_seeds(
    planted: Planted, target: tuple[tuple[int, str], ...], shift: float
) -> None:
    """The planted segment's values, their complements (`west`, `returning`) and the pairs
    that overlap it differ from everyone else too: they must be explained, not reported."""
    seeds = 40
    found, alone, false_share = 0, 0, 0.0
    for seed in range(seeds):
        reported = search(cells_of(seed, 4000, shift, planted))
        found += target in reported
        alone += reported == [target]
        false_share += sum(k != target for k in reported) / max(1, len(reported))
    assert found == seeds, found
    assert alone >= 0.9 * seeds, alone
    assert false_share / seeds <= 0.05  # the false-discovery proportion, on average


def test_a_population_without_segments_shows_none_at_about_the_fdr() -> None:
    runs = 100
    any_reported = sum(bool(search(cells_of(1000 + s, 4000, shift=0.0))) for s in range(runs))
    # BH at 5 % bounds the chance of reporting anything when nothing differs by 5 %
    assert any_reported <= 0.05 * runs, any_reported


def test_explained_segments_name_what_explains_them() -> None:
    found = find(cells_of(2, 4000, 2.0), 3, MetricKind.NPS, low=0, high=10, fdr=0.05, min_n=30)
    assert found.reported == [PLANTED]
    assert ((1, "east"),) in found.explained
    assert ((2, "returning"),) in found.explained
    assert set(found.explained.values()) == {PLANTED}


def test_small_segments_are_not_tested() -> None:
    cells = cells_of(3, 300, shift=3.0)  # the planted pair has about 30 responses
    found = find(cells, 3, MetricKind.NPS, low=0, high=10, fdr=0.05, min_n=60)
    assert all(found.segments[k].n >= 60 for k, p in found.tests.items() if p is not None)
    assert PLANTED not in found.reported


async def plant(tenant: TenantHandle, seed: int, n: int, customers: int = 300) -> None:
    """n responses from `customers` customers with random attributes (PUT one by one)."""
    rng = random.Random(seed)
    people = [customer(rng) for _ in range(customers)]
    for i, values in enumerate(people):
        answer = await tenant.put(
            f"/v1/customers/c{i}", json={"attributes": dict(zip(ATTRIBUTES, values, strict=True))}
        )
        assert answer.status_code in (200, 201), answer.text
    out: list[dict[str, Any]] = []
    for i in range(n):
        who = rng.randrange(customers)
        out.append(
            {
                "kind": "nps",
                "score": score(rng, people[who], 2.5, east_new),
                "channel": "app",
                "customer": f"c{who}",
                "occurred_at": (NOW - timedelta(minutes=i + 1)).isoformat(),
            }
        )
    # no customer: counts in everyone else
    out.append({"kind": "nps", "score": 0, "channel": "app", "occurred_at": NOW.isoformat()})
    await store(tenant, out)


async def test_the_endpoint_finds_the_planted_segment(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    await plant(tenant, 11, 3000)
    body = (
        await tenant.get("/v1/insights/segments", params={"attr": "tier,region,lifecycle"})
    ).json()
    assert body["base"] == 3001
    assert body["attributes"] == ["tier", "region", "lifecycle"]
    assert [s["conditions"] for s in body["items"]] == [
        [{"attribute": "region", "value": "east"}, {"attribute": "lifecycle", "value": "new"}]
    ]
    (segment,) = body["items"]
    assert segment["difference"]["delta"] < -15
    assert segment["difference"]["significant"] is True
    assert segment["metric"]["n"] == segment["n"]
    assert segment["rest"]["n"] == 3001 - segment["n"]
    assert segment["q_value"] <= 0.05
    explained = {tuple(c["value"] for c in e["conditions"]) for e in body["explained"]}
    assert ("east",) in explained
    assert body["tested"] > 20
    # filters apply; another tenant sees nothing of it
    narrowed = (
        await tenant.get(
            "/v1/insights/segments", params={"attr": "tier", "attr.lifecycle": "returning"}
        )
    ).json()
    assert 0 < narrowed["base"] < 3001
    assert narrowed["items"] == []
    theirs = (
        await other_tenant.get("/v1/insights/segments", params={"attr": "tier,region"})
    ).json()
    assert theirs["base"] == 0
    assert theirs["items"] == []


@pytest.mark.parametrize(
    "attr",
    [
        "",
        ",",
        "a,b,c,d,e,f",
        "tier\x00",
        "bad name",
        "x" * 65,
        "é",
        "tier,tier,tier,tier,tier,tier",
    ],
)
async def test_bad_attribute_lists_get_a_problem(tenant: TenantHandle, attr: str) -> None:
    answer = await tenant.get("/v1/insights/segments", params={"attr": attr})
    if attr.startswith("tier,tier"):  # repeated names count once
        assert answer.status_code == 200, answer.text
        assert answer.json()["attributes"] == ["tier"]
        return
    assert_problem(answer, 422, answer.json().get("code", "?"))
    assert answer.json()["code"] in ("attribute_count", "attribute_name", "validation_error")


async def test_missing_attr_fdr_and_scope(tenant: TenantHandle) -> None:
    assert_problem(await tenant.get("/v1/insights/segments"), 422, "validation_error")
    for fdr in ("0", "1", "NaN", "inf", "-1"):
        answer = await tenant.get("/v1/insights/segments", params={"attr": "tier", "fdr": fdr})
        assert_problem(answer, 422, "validation_error")
    writer = await tenant.key("responses:write")
    answer = await tenant.get("/v1/insights/segments", params={"attr": "tier"}, key=writer)
    assert_problem(answer, 403, "missing_scope")
