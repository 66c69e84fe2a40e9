"""Discovered theme candidates through the API: on the labelled development set they find
the themes, phrases the dictionary knows drop out, a manager accepts one, and no tenant's
comments show in another's candidates."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from feedback_api.insights import phrases
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.paths import REFERENCE

URL = "/v1/insights/theme-candidates"
ROWS = [
    json.loads(line)
    for line in (REFERENCE / "insights" / "development.jsonl").read_text().splitlines()
]


def score_of(row: dict[str, Any], rng: random.Random) -> int:
    """A detractor's score for a comment that complains, a promoter's or passive's else."""
    return rng.randint(0, 6) if "neg" in row["polarity"].values() else rng.randint(7, 10)


async def store_rows(tenant: TenantHandle, rows: list[dict[str, Any]], seed: int = 7) -> None:
    rng = random.Random(seed)
    items = [
        {"kind": "nps", "score": score_of(r, rng), "channel": "app", "comment": r["text"]}
        for r in rows
    ]
    for first in range(0, len(items), 500):
        answer = await tenant.post(
            "/v1/responses/batch", json={"items": items[first : first + 500]}
        )
        assert answer.status_code == 200, answer.text


def themes_found(items: list[dict[str, Any]], rows: list[dict[str, Any]]) -> set[str]:
    """The labelled themes the candidates stand for: a candidate stands for the theme that
    at least half of the comments containing it are labelled with."""
    found = set()
    for item in items:
        labels = Counter(
            theme
            for r in rows
            if item["phrase"] in phrases.phrases(r["text"])
            for theme in r["themes"] or ["(none)"]
        )
        theme, n = labels.most_common(1)[0]
        if theme != "(none)" and n >= 0.5 * item["comments"]:
            found.add(theme)
    return found


async def test_the_development_set_yields_its_themes(tenant: TenantHandle) -> None:
    await store_rows(tenant, ROWS)
    body = (await tenant.get(URL, params={"limit": 20})).json()
    assert body["focus"] == "negative"
    negative = [r for r in ROWS if "neg" in r["polarity"].values()]
    assert body["focus_comments"] == len(negative)
    assert body["other_comments"] == len(ROWS) - len(negative)
    assert len(body["items"]) == 20
    found = themes_found(body["items"], negative)
    assert len(found) >= 8, found
    first = body["items"][0]
    assert first["keyness"] > 3.84
    assert first["comments"] >= body["min_comments"]
    assert 0 < len(first["examples"]) <= 5
    keyness = [i["keyness"] for i in body["items"]]
    assert keyness == sorted(keyness, reverse=True)

    everything = (await tenant.get(URL, params={"focus": "all", "limit": 20})).json()
    assert everything["other_comments"] == 0
    assert all(i["keyness"] is None for i in everything["items"])
    counts = [i["comments"] for i in everything["items"]]
    assert counts == sorted(counts, reverse=True)
    assert len(themes_found(everything["items"], ROWS)) >= 8


async def test_accepting_a_candidate_makes_it_a_theme(tenant: TenantHandle) -> None:
    await store_rows(tenant, ROWS)
    before = (await tenant.get(URL)).json()["items"]
    phrase = before[0]["phrase"]
    accepted = await tenant.post(
        f"{URL}/accept",
        json={"phrase": phrase, "key": "found", "names": {"en": "Found"}, "keywords": ["xyz"]},
    )
    assert accepted.status_code == 201, accepted.text
    theme = accepted.json()
    assert theme["origin"] == "discovered"
    assert theme["keywords"] == [phrase, "xyz"]
    after = [i["phrase"] for i in (await tenant.get(URL)).json()["items"]]
    assert phrase not in after  # the dictionary matches it now

    # Into an existing theme: the phrase joins its keywords, and it stays as it was.
    await tenant.put("/v1/themes/mine", json={"keywords": ["mirror"], "names": {"en": "Mine"}})
    merged = await tenant.post(f"{URL}/accept", json={"phrase": "镜子", "key": "mine"})
    assert merged.status_code == 200, merged.text
    assert merged.json()["keywords"] == ["mirror", "镜子"]
    assert merged.json()["origin"] == "manual"
    assert merged.json()["names"] == {"en": "Mine"}


def crossing(answer: Any) -> bool:
    """Whether the zebra crossing is among the candidates (its phrases are merged into one)."""
    return any("crossing" in i["phrase"] for i in answer.json()["items"])


async def test_a_phrase_in_fewer_comments_than_a_small_cell_is_not_listed(
    tenant: TenantHandle,
) -> None:
    rows = [{"text": "the zebra crossing outside is unsafe", "polarity": {"x": "neg"}}] * 4
    rows += [{"text": "everything fine", "polarity": {}}] * 10
    await store_rows(tenant, rows)
    reader = await tenant.key("insights:read")
    assert (await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 5})).status_code == 200
    body = (await tenant.get(URL, key=reader)).json()
    assert body["min_comments"] == 5
    assert body["items"] == []
    # A key that may see small cells (the admin key here) sees it.
    assert crossing(await tenant.get(URL))
    assert (await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 3})).status_code == 200
    assert crossing(await tenant.get(URL, key=reader))


async def test_another_tenants_comments_never_show(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    await store_rows(tenant, ROWS)
    body = (await other_tenant.get(URL)).json()
    assert body["focus_comments"] == body["other_comments"] == 0
    assert body["items"] == []
    refused = await other_tenant.post(f"{URL}/accept", json={"phrase": "x", "key": "y"})
    assert refused.status_code == 201  # its own dictionary ...
    assert (await tenant.get("/v1/themes/y")).status_code == 404  # ... not the other's


async def test_hostile_comments_cost_little_and_break_nothing(tenant: TenantHandle) -> None:
    rng = random.Random(3)
    words = ["mirror", "dark", "镜子", "太暗", "\u200b", "🙂", "'", "--", "ｆｉｔｔｉｎｇ"]
    texts = [" ".join(rng.choice(words) for _ in range(2000))[:4000] for _ in range(40)]
    rows = [{"text": t, "polarity": {"x": "neg"}} for t in texts]
    await store_rows(tenant, rows + [{"text": "ok", "polarity": {}}] * 5)
    answer = await tenant.get(URL, params={"limit": 100})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"focus": "worst"}, "focus"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"kind": "x"}, "kind"),
        ({"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}, None),
    ],
)
async def test_bad_parameters_answer_422(
    tenant: TenantHandle, params: dict[str, Any], loc: str | None
) -> None:
    answer = await tenant.get(URL, params=params)
    assert answer.status_code in (200, 422), answer.text
    if loc is not None:
        assert_problem(answer, 422, "validation_error")
        assert answer.json()["errors"][0]["loc"][-1] == loc


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"phrase": "!!!", "key": "k"}, "no_terms"),
        ({"phrase": "mirror", "key": "Not A Key"}, None),
        ({"phrase": "", "key": "k"}, None),
        ({"phrase": "a\u0000b", "key": "k"}, None),
        ({"key": "k"}, None),
    ],
)
async def test_bad_acceptances_answer_422(
    tenant: TenantHandle, body: dict[str, Any], code: str | None
) -> None:
    answer = await tenant.post(f"{URL}/accept", json=body)
    assert answer.status_code == 422, answer.text
    if code is not None:
        assert code in answer.text
    assert (await tenant.get("/v1/themes")).json()["items"] == []
