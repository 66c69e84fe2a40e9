"""The theme dictionary through the API, the classification of comments at ingest, and
their re-classification after a change of the dictionary."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from feedback_api.insights import service as insight_module
from feedback_api.insights.repository import ThemeRepository
from feedback_api.insights.service import RECLASSIFY_JOB
from feedback_api.insights.service import theme as theme_service
from feedback_api.models import Job
from tests.fixtures.auth import TenantHandle, assert_problem

LIGHT = {
    "names": {"en": "Fitting-room light", "zh": "试衣间灯光"},
    "keywords": ["fitting room", "mirror", "试衣间", "镜子"],
    "aliases": ["changing room"],
    "negative_keywords": ["mirror app"],
}


async def put(tenant: TenantHandle, key: str, body: dict[str, Any], **kw: Any) -> Any:
    return await tenant.request("PUT", f"/v1/themes/{key}", json=body, **kw)


async def respond(tenant: TenantHandle, comment: str | None, **extra: Any) -> str:
    body = {"kind": "nps", "score": 3, "channel": "app", **extra}
    if comment is not None:
        body["comment"] = comment
    response = await tenant.post("/v1/responses", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def mentions(tenant: TenantHandle, response_id: str) -> list[str]:
    return await ThemeRepository(tenant.session).mentions_of(tenant.id, UUID(response_id))


async def reclassify(tenant: TenantHandle, chunk: int = 2) -> int:
    steps = 1
    while not await theme_service.reclassify_step(tenant.session, tenant.id, chunk=chunk):
        steps += 1
    return steps


class TestDictionary:
    async def test_create_read_replace_delete(self, tenant: TenantHandle) -> None:
        created = await put(tenant, "fitting_room_light", LIGHT)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["key"] == "fitting_room_light"
        assert body["keywords"] == LIGHT["keywords"]
        assert body["names"] == LIGHT["names"]
        assert body["origin"] == "manual"

        again = await put(tenant, "fitting_room_light", {**LIGHT, "keywords": ["mirror"]})
        assert again.status_code == 200
        assert again.json()["keywords"] == ["mirror"]

        got = await tenant.get("/v1/themes/fitting_room_light")
        assert got.json()["keywords"] == ["mirror"]
        listed = (await tenant.get("/v1/themes")).json()
        assert [t["key"] for t in listed["items"]] == ["fitting_room_light"]
        assert listed["classification"]["dictionary_version"] == 2

        gone = await tenant.request("DELETE", "/v1/themes/fitting_room_light")
        assert gone.status_code == 204
        assert_problem(await tenant.get("/v1/themes/fitting_room_light"), 404, "not_found")
        assert_problem(
            await tenant.request("DELETE", "/v1/themes/fitting_room_light"), 404, "not_found"
        )

    async def test_terms_are_deduplicated_ignoring_case(self, tenant: TenantHandle) -> None:
        body = (
            await put(tenant, "light", {"keywords": ["Mirror", "mirror", "MIRROR", "镜子"]})
        ).json()
        assert body["keywords"] == ["Mirror", "镜子"]

    @pytest.mark.parametrize(
        ("key", "body", "code"),
        [
            ("Light", {"keywords": ["x"]}, "validation_error"),
            ("a" * 65, {"keywords": ["x"]}, "validation_error"),
            ("tag:late", {"keywords": ["x"]}, "validation_error"),
            ("light", {}, "validation_error"),
            ("light", {"keywords": []}, "validation_error"),
            ("light", {"keywords": ["!!!", "\u200b"]}, "validation_error"),
            ("light", {"keywords": ["bad\u0000byte"]}, "validation_error"),
            ("light", {"keywords": ["x" * 101]}, "validation_error"),
            ("light", {"keywords": ["x"] * 201}, "validation_error"),
            ("light", {"keywords": ["x"], "names": {"not a language": "x"}}, "validation_error"),
            ("light", {"keywords": ["x"], "weights": [1]}, "validation_error"),
            ("light", {"keywords": "mirror"}, "validation_error"),
        ],
    )
    async def test_bad_input_is_a_422(
        self, tenant: TenantHandle, key: str, body: dict[str, Any], code: str
    ) -> None:
        assert_problem(await put(tenant, key, body), 422, code)
        assert (await tenant.get("/v1/themes")).json()["items"] == []

    async def test_a_full_dictionary_refuses_a_new_theme_but_replaces(
        self, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(insight_module, "MAX_THEMES", 2)
        for key in ("a", "b"):
            assert (await put(tenant, key, {"keywords": [key]})).status_code == 201
        assert_problem(await put(tenant, "c", {"keywords": ["c"]}), 409, "too_many_themes")
        assert (await put(tenant, "a", {"keywords": ["aa"]})).status_code == 200

    async def test_a_dictionary_holds_a_bounded_number_of_terms(
        self, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(insight_module, "MAX_DICTIONARY_TERMS", 5)
        assert (await put(tenant, "a", {"keywords": ["a1", "a2", "a3"]})).status_code == 201
        three_more = {"keywords": ["b1", "b2"], "negative_keywords": ["b3"]}
        assert_problem(await put(tenant, "b", three_more), 409, "too_many_terms")
        # replacing a theme counts its new terms, not its old ones
        assert (await put(tenant, "a", {"keywords": ["a1"]})).status_code == 200
        assert (await put(tenant, "b", three_more)).status_code == 201

    async def test_a_dictionary_of_terms_extending_each_other_is_refused(
        self, tenant: TenantHandle
    ) -> None:
        chain = [" ".join(["a"] * n) for n in range(1, 41)]  # a, a a, a a a …
        assert (await put(tenant, "one", {"keywords": chain})).status_code == 201
        # the same chain again in another theme: one walk would meet 80 terms
        response = await put(tenant, "two", {"keywords": chain})
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["code"] == "too_ambiguous"

    async def test_another_tenants_dictionary_is_invisible(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await put(tenant, "light", LIGHT)
        assert (await other_tenant.get("/v1/themes")).json()["items"] == []
        assert_problem(await other_tenant.get("/v1/themes/light"), 404, "not_found")
        assert_problem(await other_tenant.request("DELETE", "/v1/themes/light"), 404, "not_found")
        # the same key is the other tenant's own theme
        assert (await put(other_tenant, "light", {"keywords": ["lamp"]})).status_code == 201
        assert (await tenant.get("/v1/themes/light")).json()["keywords"] == LIGHT["keywords"]


class TestAtIngest:
    async def test_a_comment_is_classified_when_it_is_stored(self, tenant: TenantHandle) -> None:
        await put(tenant, "light", LIGHT)
        await put(tenant, "delivery", {"keywords": ["delivery", "快递"]})
        both = await respond(tenant, "试衣间太暗, and the delivery was late")
        none = await respond(tenant, "great, thanks")
        blank = await respond(tenant, None)
        negative = await respond(tenant, "the mirror app keeps crashing")
        assert await mentions(tenant, both) == ["delivery", "light"]
        assert await mentions(tenant, none) == []
        assert await mentions(tenant, blank) == []
        assert await mentions(tenant, negative) == []

    async def test_a_batch_is_classified_item_by_item(self, tenant: TenantHandle) -> None:
        await put(tenant, "light", LIGHT)
        items = [
            {"kind": "csat", "score": 1, "channel": "web", "comment": "镜子太暗"},
            {"kind": "csat", "score": 9, "channel": "web", "comment": "bad"},  # off scale: 422
            {"kind": "csat", "score": 5, "channel": "web", "comment": "nice changing rooms"},
        ]
        response = await tenant.post("/v1/responses/batch", json={"items": items})
        assert response.status_code == 200, response.text
        results = response.json()["items"]
        assert [r["status"] for r in results] == [201, 422, 201]
        assert await mentions(tenant, results[0]["id"]) == ["light"]
        assert await mentions(tenant, results[2]["id"]) == ["light"]

    async def test_without_a_dictionary_nothing_is_written(self, tenant: TenantHandle) -> None:
        stored = await respond(tenant, "试衣间太暗")
        assert await mentions(tenant, stored) == []
        state = await ThemeRepository(tenant.session).state(tenant.id)
        assert state is not None
        assert state.version == 0

    async def test_a_comment_too_costly_to_classify_is_stored_unclassified(
        self, tenant: TenantHandle
    ) -> None:
        # Terms that extend each other as far as the ambiguity limit allows, and a comment
        # made of them: the walk would exceed the step budget.
        terms = ["啊" * n for n in range(1, 40)]
        assert (
            await put(tenant, "a", {"keywords": terms[:1], "negative_keywords": terms})
        ).status_code == 201
        stored = await respond(tenant, "啊" * 5000)
        assert await mentions(tenant, stored) == []
        fine = await respond(tenant, "啊")
        assert await mentions(tenant, fine) == []  # blocked by its own negative keyword

    async def test_a_theme_only_sees_its_own_tenants_comments(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await put(tenant, "light", LIGHT)
        theirs = await respond(other_tenant, "试衣间太暗")
        assert (
            await ThemeRepository(other_tenant.session).mentions_of(other_tenant.id, UUID(theirs))
            == []
        )


class TestReclassification:
    async def test_stored_comments_follow_the_dictionary(self, tenant: TenantHandle) -> None:
        ids = [
            await respond(tenant, text) for text in ("镜子太暗", "slow delivery", "ok", "mirror")
        ]
        await put(tenant, "light", LIGHT)
        listed = (await tenant.get("/v1/themes")).json()
        assert listed["classification"]["up_to_date"] is False
        jobs = (
            select(func.count())
            .select_from(Job)
            .where(Job.tenant_id == tenant.id, Job.kind == RECLASSIFY_JOB)
        )
        assert await tenant.session.scalar(jobs) == 1

        assert await reclassify(tenant, chunk=3) == 2  # a full chunk of 3, then a short one: done
        assert [await mentions(tenant, i) for i in ids] == [["light"], [], [], ["light"]]
        listed = (await tenant.get("/v1/themes")).json()
        assert listed["classification"] == {
            "dictionary_version": 1,
            "classified_version": 1,
            "up_to_date": True,
        }

        await put(tenant, "light", {"keywords": ["镜子"]})
        await put(tenant, "delivery", {"keywords": ["delivery"]})
        await reclassify(tenant)
        assert [await mentions(tenant, i) for i in ids] == [["light"], ["delivery"], [], []]

        await tenant.request("DELETE", "/v1/themes/light")
        await reclassify(tenant)
        assert [await mentions(tenant, i) for i in ids] == [[], ["delivery"], [], []]

    async def test_a_change_mid_pass_starts_the_pass_again(self, tenant: TenantHandle) -> None:
        ids = [await respond(tenant, f"mirror {n}") for n in range(5)]
        await put(tenant, "light", {"keywords": ["mirror"]})
        assert not await theme_service.reclassify_step(tenant.session, tenant.id, chunk=2)
        await put(tenant, "light", {"keywords": ["nothing like it"]})
        await reclassify(tenant)
        assert [await mentions(tenant, i) for i in ids] == [[]] * 5
        state = await ThemeRepository(tenant.session).state(tenant.id)
        assert state is not None
        assert state.classified_version == state.version == 2

    async def test_a_finished_pass_is_a_no_op(self, tenant: TenantHandle) -> None:
        assert await theme_service.reclassify_step(tenant.session, tenant.id)
        await put(tenant, "light", LIGHT)
        await reclassify(tenant)
        assert await theme_service.reclassify_step(tenant.session, tenant.id)


class TestErasure:
    async def test_erasing_a_customer_drops_the_mentions_of_their_comments(
        self, tenant: TenantHandle
    ) -> None:
        await put(tenant, "light", LIGHT)
        theirs = await respond(tenant, "镜子太暗", customer="crm-9")
        kept = await respond(tenant, "镜子太暗")
        assert (await tenant.request("DELETE", "/v1/customers/crm-9")).status_code == 204
        assert await mentions(tenant, theirs) == []
        assert await mentions(tenant, kept) == ["light"]
        await reclassify(tenant)
        assert await mentions(tenant, theirs) == []
