"""Integrity through the API and the worker's screen, on a real database: flags exclude
from every metric, the review queue and its audit trail, settings, rewards, the report,
and tenant isolation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.integrity.service import integrity as integrity_service
from feedback_api.jobs.failures import WorkFailureRepository
from feedback_api.models import AuditLog, Event
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.integrity import NPS, post, screen

DAY = "from=2026-11-01&to=2026-12-01"


async def event_types(tenant: TenantHandle, prefix: str) -> list[Event]:
    stmt = (
        select(Event)
        .where(Event.tenant_id == tenant.id, Event.type.startswith(prefix))
        .order_by(Event.xid, Event.id)
    )
    return list((await tenant.session.scalars(stmt)).all())


class TestScreen:
    async def test_a_repeat_rating_is_flagged_and_leaves_the_metrics(
        self, tenant: TenantHandle
    ) -> None:
        first = await post(tenant, score=10, customer="c-1")
        again = await post(tenant, score=10, customer="c-1", occurred_at="2026-11-10T13:00:00Z")
        await post(tenant, score=0, customer="c-2")
        await screen(tenant)

        (flag,) = (await tenant.get("/v1/integrity/flags")).json()["items"]
        assert flag["type"] == "duplicate"
        assert flag["status"] == "open"
        assert flag["excludes"]
        assert flag["evidence"]["first_response_id"] == first
        detail = (await tenant.get(f"/v1/integrity/flags/{flag['id']}")).json()
        assert detail["response_ids"] == [again]
        assert (await tenant.get(f"/v1/responses/{again}")).json()["excluded"] is True
        assert (await tenant.get(f"/v1/responses/{first}")).json()["excluded"] is False

        valid = (await tenant.get(f"/v1/metrics/nps?{DAY}")).json()
        assert (valid["n"], valid["excluded"], valid["value"]) == (2, 1, 0.0)
        everything = (await tenant.get(f"/v1/metrics/nps?{DAY}&integrity=all")).json()
        assert (everything["n"], everything["excluded"]) == (3, 1)
        (created,) = await event_types(tenant, "integrity.")
        assert created.type == "integrity.flag_created"
        assert created.data["id"] == flag["id"]
        assert created.data["response_count"] == 1

    async def test_each_response_is_screened_once(self, tenant: TenantHandle) -> None:
        await post(tenant, score=10, customer="c-1")
        await post(tenant, score=10, customer="c-1")
        assert await integrity_service.screen(tenant.session, tenant_id=tenant.id) == 2
        assert await integrity_service.screen(tenant.session, tenant_id=tenant.id) == 0
        assert len((await tenant.get("/v1/integrity/flags")).json()["items"]) == 1

    async def test_a_burst_from_one_device_through_a_publishable_key(
        self, tenant: TenantHandle
    ) -> None:
        key = await tenant.key(publishable=True)
        body = {"kind": "nps", "score": 10, "channel": "web"}
        ids = []
        for _ in range(7):
            response = await tenant.post(
                "/v1/responses", json=body, key=key, headers={"User-Agent": "bot/1"}
            )
            ids.append(response.json()["id"])
        await screen(tenant)
        (flag,) = (await tenant.get("/v1/integrity/flags?type=burst")).json()["items"]
        assert flag["subject_ref"].startswith("device:")  # 7 > 5 per device; IP limit is 30
        assert flag["response_count"] == 7
        assert flag["excludes"]
        metric = (await tenant.get("/v1/metrics/nps")).json()
        assert (metric["n"], metric["excluded"]) == (0, 7)

    async def test_a_ring_of_near_identical_texts_across_customers(
        self, tenant: TenantHandle
    ) -> None:
        text = "The barista was super friendly and the latte art was amazing, best cafe in town"
        ring = [
            await post(tenant, score=10, customer=f"r-{i}", comment=text + "!" * i)
            for i in range(4)
        ]
        honest = await post(tenant, score=3, customer="h", comment="Cold coffee, slow queue, rude.")
        await screen(tenant)
        (flag,) = (await tenant.get("/v1/integrity/flags?type=near_duplicate")).json()["items"]
        detail = (await tenant.get(f"/v1/integrity/flags/{flag['id']}")).json()
        assert sorted(detail["response_ids"]) == sorted(ring)
        assert (await tenant.get(f"/v1/responses/{honest}")).json()["excluded"] is False
        # a later member joins the same flag
        late = await post(tenant, score=10, customer="r-9", comment=text + "?")
        await screen(tenant)
        (again,) = (await tenant.get("/v1/integrity/flags?type=near_duplicate")).json()["items"]
        assert again["id"] == flag["id"]
        assert again["response_count"] == 5
        assert (await tenant.get(f"/v1/responses/{late}")).json()["excluded"] is True

    async def test_incentive_wording_in_a_comment(self, tenant: TenantHandle) -> None:
        bought = await post(tenant, score=10, comment="店员说五星好评返现5元")
        quoted = await post(tenant, score=2, comment="The coffee was free but awful")
        await screen(tenant)
        (flag,) = (await tenant.get("/v1/integrity/flags")).json()["items"]
        assert flag["type"] == "incentive"
        assert flag["subject_ref"] == bought
        assert (await tenant.get(f"/v1/responses/{quoted}")).json()["excluded"] is False

    async def test_incentive_wording_in_a_surveys_own_texts(self, tenant: TenantHandle) -> None:
        survey = {"kind": "nps", "question": {"en": "How likely are you to recommend us?"}}
        bought = {"en": "Thanks! Show this page for a free coffee with 5 stars."}
        created = await tenant.post(
            "/v1/surveys", json={**survey, "key": "bought", "thank_you": bought}
        )
        assert created.status_code == 201, created.text
        await tenant.post("/v1/surveys", json={**survey, "key": "honest"})
        answers = [await post(tenant, score=s, survey="bought") for s in (10, 2)]
        honest = await post(tenant, score=10, survey="honest")
        await screen(tenant)
        (flag,) = (await tenant.get("/v1/integrity/flags")).json()["items"]
        assert (flag["type"], flag["subject_type"], flag["subject_ref"]) == (
            "incentive",
            "survey",
            "bought",
        )
        detail = (await tenant.get(f"/v1/integrity/flags/{flag['id']}")).json()
        assert sorted(detail["response_ids"]) == sorted(answers)
        assert (await tenant.get(f"/v1/responses/{honest}")).json()["excluded"] is False

    async def test_a_trusted_key_submits_verified_responses(self, tenant: TenantHandle) -> None:
        created = await tenant.post(
            "/v1/api-keys",
            json={"name": "crm", "scopes": ["responses:write"], "trusted": True},
        )
        assert created.json()["trusted"] is True
        verified = await tenant.post(
            "/v1/responses", json={**NPS, "score": 9}, key=created.json()["secret"]
        )
        plain = await tenant.post("/v1/responses", json={**NPS, "score": 9})
        assert (verified.json()["verified"], plain.json()["verified"]) == (True, False)
        refused = await tenant.post(
            "/v1/api-keys", json={"name": "app", "publishable": True, "trusted": True}
        )
        assert_problem(refused, 422, "validation_error")


class TestExclusionInEveryMetric:
    async def test_every_endpoint_leaves_out_and_counts_the_excluded(
        self, tenant: TenantHandle
    ) -> None:
        kept = [await post(tenant, score=s, channel="email") for s in (0, 3, 10, 10, 9, 7)]
        gone = [await post(tenant, score=10, channel="in_person") for _ in range(5)]
        manual = await tenant.post(
            "/v1/integrity/flags", json={"response_ids": gone, "reason": "staff asked for 10s"}
        )
        assert manual.status_code == 201
        assert manual.json()["status"] == "confirmed"
        assert len(kept) == 6

        metric = (await tenant.get(f"/v1/metrics/nps?{DAY}")).json()
        assert (metric["n"], metric["excluded"], metric["value"]) == (6, 5, 50 / 3)
        trend = (await tenant.get(f"/v1/metrics/nps/trend?{DAY}&interval=month")).json()
        assert [(b["n"], b["excluded"]) for b in trend["buckets"]] == [(6, 5)]
        summary = (await tenant.get(f"/v1/metrics/summary?{DAY}")).json()
        assert (summary["nps"]["current"]["n"], summary["nps"]["current"]["excluded"]) == (6, 5)
        compare = (
            await tenant.get(
                f"/v1/metrics/nps/compare?{DAY}&a_segment=channel:email&b_segment=channel:in_person"
            )
        ).json()
        assert (compare["b"]["metric"]["n"], compare["b"]["metric"]["excluded"]) == (0, 5)
        assert compare["comparison"] is None
        breakdown = (
            await tenant.get(f"/v1/metrics/nps/breakdown?{DAY}&by=channel&integrity=all")
        ).json()
        rows = {r["key"]: (r["n"], r["excluded"], r["value"]) for r in breakdown["rows"]}
        # the bias made visible: in person 100, by email 16.7
        assert rows == {"email": (6, 0, 50 / 3), "in_person": (5, 5, 100.0)}
        valid = (await tenant.get(f"/v1/metrics/nps/breakdown?{DAY}&by=channel")).json()
        assert [(r["key"], r["n"], r["excluded"]) for r in valid["rows"]] == [("email", 6, 0)]


class TestReviewQueue:
    async def _flag(self, tenant: TenantHandle) -> tuple[str, str]:
        await post(tenant, score=10, customer="c-1")
        again = await post(tenant, score=10, customer="c-1")
        await screen(tenant)
        (flag,) = (await tenant.get("/v1/integrity/flags")).json()["items"]
        return flag["id"], again

    async def test_dismiss_then_confirm_with_an_audit_trail(self, tenant: TenantHandle) -> None:
        flag_id, again = await self._flag(tenant)
        url = f"/v1/integrity/flags/{flag_id}"
        dismissed = await tenant.post(f"{url}/dismiss", json={"reason": "two visits that day"})
        assert dismissed.status_code == 200
        body = dismissed.json()
        assert (body["status"], body["excludes"], body["reason"]) == (
            "dismissed",
            False,
            "two visits that day",
        )
        assert (await tenant.get(f"/v1/responses/{again}")).json()["excluded"] is False
        assert (await tenant.get("/v1/metrics/nps")).json()["excluded"] == 0

        reviewer = await tenant.key("integrity:write", "integrity:read")
        confirmed = await tenant.post(f"{url}/confirm", json={"reason": "same order"}, key=reviewer)
        assert confirmed.json()["status"] == "confirmed"
        assert (await tenant.get(f"/v1/responses/{again}")).json()["excluded"] is True
        decisions = confirmed.json()["decisions"]
        assert [(d["status"], d["reason"]) for d in decisions] == [
            ("dismissed", "two visits that day"),
            ("confirmed", "same order"),
        ]
        assert decisions[0]["key_id"] != decisions[1]["key_id"]
        audit = (
            await tenant.session.scalars(
                select(AuditLog.action).where(
                    AuditLog.tenant_id == tenant.id, AuditLog.target_id == flag_id
                )
            )
        ).all()
        assert list(audit) == ["integrity.flag_dismissed", "integrity.flag_confirmed"]
        resolved = await event_types(tenant, "integrity.flag_resolved")
        assert [e.data["status"] for e in resolved] == ["dismissed", "confirmed"]
        # filters
        assert (await tenant.get("/v1/integrity/flags?status=open")).json()["items"] == []
        found = (await tenant.get(f"/v1/integrity/flags?response_id={again}")).json()["items"]
        assert [f["id"] for f in found] == [flag_id]

    async def test_pages_newest_first(self, tenant: TenantHandle) -> None:
        made = []
        for score in range(5):
            rid = await post(tenant, score=score)
            body = {"response_ids": [rid], "reason": f"test {score}"}
            made.append((await tenant.post("/v1/integrity/flags", json=body)).json()["id"])
        first = (await tenant.get("/v1/integrity/flags?limit=2")).json()
        second = (
            await tenant.get(f"/v1/integrity/flags?limit=2&cursor={first['next_cursor']}")
        ).json()
        third = (
            await tenant.get(f"/v1/integrity/flags?limit=2&cursor={second['next_cursor']}")
        ).json()
        seen = [f["id"] for page in (first, second, third) for f in page["items"]]
        assert seen == made[::-1]
        assert third["next_cursor"] is None
        bad = await tenant.get("/v1/integrity/flags?cursor=nonsense")
        assert_problem(bad, 422, "invalid_cursor")

    async def test_a_decision_needs_a_reason(self, tenant: TenantHandle) -> None:
        flag_id, _ = await self._flag(tenant)
        url = f"/v1/integrity/flags/{flag_id}/confirm"
        assert_problem(await tenant.post(url, json={}), 422, "validation_error")
        assert_problem(await tenant.post(url, json={"reason": ""}), 422, "validation_error")
        assert_problem(
            await tenant.post(
                "/v1/integrity/flags", json={"response_ids": [flag_id], "reason": "x y z"}
            ),
            422,
            "validation_error",
        )

    async def test_reasons_and_refs_are_storable_text(self, tenant: TenantHandle) -> None:
        flag_id, _ = await self._flag(tenant)
        url = f"/v1/integrity/flags/{flag_id}/dismiss"
        for reason, code in (("bad\x00reason", "nul_character"), ("x" * 2001, "string_too_long")):
            problem = assert_problem(
                await tenant.post(url, json={"reason": reason}), 422, "validation_error"
            )
            assert problem["errors"][0]["code"] == code
        problem = assert_problem(
            await tenant.get("/v1/integrity/flags", params={"subject_ref": "ip:\x00"}),
            422,
            "validation_error",
        )
        assert problem["errors"][0] == {
            **problem["errors"][0],
            "loc": ["query", "subject_ref"],
            "code": "nul_character",
        }
        for params in ({"from": "1899-12-31"}, {"to": "2999-12-31T23:00:00-14:00"}):
            problem = assert_problem(
                await tenant.get("/v1/integrity/report", params=params), 422, "validation_error"
            )
            assert problem["errors"][0]["code"] == "datetime_out_of_range"
        widest = await tenant.get(
            "/v1/integrity/report", params={"from": "1900-01-01", "to": "2999-12-31"}
        )
        assert widest.status_code == 200, widest.text

    async def test_the_threshold_decides_what_open_flags_exclude(
        self, tenant: TenantHandle
    ) -> None:
        _, again = await self._flag(tenant)  # strength 0.9
        patched = await tenant.patch("/v1/integrity/settings", json={"exclude_threshold": 0.95})
        assert patched.json()["exclude_threshold"] == 0.95
        assert (await tenant.get(f"/v1/responses/{again}")).json()["excluded"] is False
        await tenant.patch("/v1/integrity/settings", json={"exclude_threshold": 0.9})
        assert (await tenant.get(f"/v1/responses/{again}")).json()["excluded"] is True

    async def test_settings_validate(self, tenant: TenantHandle) -> None:
        defaults = (await tenant.get("/v1/integrity/settings")).json()
        assert defaults["exclude_threshold"] == 0.8
        assert defaults["rewards_enabled"] is False
        assert defaults["detectors"]["burst_ip_max"] == 30
        changed = await tenant.patch(
            "/v1/integrity/settings", json={"detectors": {"burst_ip_max": 100}}
        )
        assert changed.json()["detectors"]["burst_ip_max"] == 100
        assert changed.json()["detectors"]["burst_device_max"] == 5
        for body in (
            {"detectors": {"burst_ip_max": 1}},
            {"detectors": {"no_such": 1}},
            {"exclude_threshold": 0.1},
            {"exclude_threshold": None},
        ):
            assert_problem(
                await tenant.patch("/v1/integrity/settings", json=body), 422, "validation_error"
            )

    @pytest.mark.parametrize(
        ("body", "loc", "code"),
        [
            ({"detectors": {"burst_ip_max": 10**30}}, ["burst_ip_max"], "less_than_equal"),
            ({"detectors": {"burst_ip_max": True}}, ["burst_ip_max"], "int_type"),
            ({"detectors": {"burst_ip_max": "30"}}, ["burst_ip_max"], "int_type"),
            ({"detectors": {"spike_p_value": "1e-6"}}, ["spike_p_value"], "float_type"),
            ({"detectors": {"spike_p_value": 1e308}}, ["spike_p_value"], "less_than"),
            ({"detectors": {"duplicate_window_hours": None}}, [], "null_not_allowed"),
            ({"detectors": {"no\x00such": 1}}, ["no\x00such"], "extra_forbidden"),
            ({"reward_interval_days": 2**40}, None, "less_than_equal"),
            ({"rewards_enabled": "true"}, None, "bool_type"),
            ({"exclude_threshold": "0.9"}, None, "float_type"),
        ],
    )
    async def test_settings_refusals_have_codes(
        self, tenant: TenantHandle, body: dict[str, Any], loc: list[str] | None, code: str
    ) -> None:
        response = await tenant.patch("/v1/integrity/settings", json=body)
        problem = assert_problem(response, 422, "validation_error")
        (name,) = body
        where = ["body", name, *(loc or [])]
        first = problem["errors"][0]
        assert first["code"] == code
        # kit.schemas.field_errors drops Pydantic's union member tags from `loc`; those of
        # float and bool members (`constrained-float`, `bool`) may still follow the field.
        assert first["loc"][: len(where)] == where
        assert first["loc"][len(where) :] in ([], ["constrained-float"], ["bool"])

    async def test_detector_changes_keep_the_rest_and_may_turn_the_key_limit_off(
        self, tenant: TenantHandle
    ) -> None:
        url = "/v1/integrity/settings"
        on = await tenant.patch(url, json={"detectors": {"burst_key_max": 500, "spike_p_value": 1}})
        assert_problem(on, 422, "validation_error")
        on = await tenant.patch(url, json={"detectors": {"burst_key_max": 500.0}})
        assert on.json()["detectors"]["burst_key_max"] == 500
        off = await tenant.patch(url, json={"detectors": {"burst_key_max": None}})
        assert off.json()["detectors"]["burst_key_max"] is None
        assert off.json()["detectors"]["burst_ip_max"] == 30

    async def test_no_path_deletes_a_negative_response(
        self, tenant: TenantHandle, app: FastAPI
    ) -> None:
        deletes = sorted(
            route.path  # type: ignore[attr-defined]
            for route in app.routes
            if "DELETE" in getattr(route, "methods", set())
        )
        # none of them takes a response; the customer's erasure anonymises, never deletes
        assert not [p for p in deletes if "response" in p]
        negative = await post(tenant, score=0, customer="c-1", comment="awful")
        assert (await tenant.delete("/v1/customers/c-1")).status_code == 204
        after = (await tenant.get(f"/v1/responses/{negative}")).json()
        assert (after["score"], after["comment"], after["customer"]) == (0, None, None)
        assert (await tenant.get(f"/v1/metrics/nps?{DAY}")).json()["n"] == 1


class TestRewards:
    async def test_every_valid_response_earns_one_whatever_its_score(
        self, tenant: TenantHandle
    ) -> None:
        await tenant.patch("/v1/integrity/settings", json={"rewards_enabled": True})
        low = await post(tenant, score=0, customer="a")
        high = await post(tenant, score=10, customer="b")
        await post(tenant, score=10)  # anonymous: nobody to reward
        await screen(tenant)
        rewards = await event_types(tenant, "reward.")
        assert sorted(e.data["response_id"] for e in rewards) == sorted([low, high])
        assert all("score" not in e.data for e in rewards)
        # a second answer within the interval earns nothing, nor does a duplicate
        await post(tenant, score=5, customer="a", touchpoint="delivery")
        await post(tenant, score=10, customer="b")
        await screen(tenant)
        assert len(await event_types(tenant, "reward.")) == 2

    async def test_off_by_default_and_no_limit_with_interval_zero(
        self, tenant: TenantHandle
    ) -> None:
        await post(tenant, score=9, customer="a")
        await screen(tenant)
        assert await event_types(tenant, "reward.") == []
        await tenant.patch(
            "/v1/integrity/settings", json={"rewards_enabled": True, "reward_interval_days": 0}
        )
        await post(tenant, score=9, customer="a", touchpoint="t1")
        await post(tenant, score=9, customer="a", touchpoint="t2")
        await screen(tenant)
        assert len(await event_types(tenant, "reward.")) == 2  # the earlier one predates it


class TestPatternsAndReport:
    async def test_a_soliciting_location_is_flagged_and_reported(
        self, tenant: TenantHandle
    ) -> None:
        now = datetime.now(UTC)
        items = []
        for location, promoters, in_person in (("L1", 54, 50), ("L2", 20, 0), ("L3", 22, 0)):
            for i in range(60):
                score = 10 if i < promoters else 5
                channel = "in_person" if i < in_person else "email"
                items.append(
                    {
                        **NPS,
                        "score": score,
                        "channel": channel,
                        "location_ref": location,
                        "occurred_at": (now - timedelta(hours=1 + i)).isoformat(),
                    }
                )
        batch = await tenant.post("/v1/responses/batch", json={"items": items})
        assert batch.status_code == 200
        await integrity_service.patterns(tenant.session, tenant_id=tenant.id)
        (flag,) = (await tenant.get("/v1/integrity/flags?type=solicitation")).json()["items"]
        assert (flag["subject_type"], flag["subject_ref"]) == ("location", "L1")
        assert flag["response_count"] == 50
        assert flag["excludes"]
        assert flag["evidence"]["n"] == 60
        assert flag["evidence"]["q_value"] < 0.01

        report = (await tenant.get("/v1/integrity/report")).json()
        (skew,) = report["skewed"]
        assert (skew["ref"], skew["n"], skew["peer_n"], skew["flagged"]) == ("L1", 60, 120, True)
        assert skew["positive_share"] == 0.9
        assert skew["peer_positive_share"] == round(42 / 120, 4)
        assert report["responses"] == 180
        assert report["excluded"] == 50
        assert report["excluded_by_type"] == {"solicitation": 50}
        assert (report["verified"], report["verified_share"]) == (0, 0.0)
        assert report["flags_by_type"] == {"solicitation": {"open": 1}}
        uplift = report["in_person_uplift"]
        assert uplift["in_person_n"] == 0
        assert uplift["other_n"] == 130
        assert sum(w["responses"] for w in report["trend"]) == 180

    async def test_the_report_validates_its_period(self, tenant: TenantHandle) -> None:
        bad = await tenant.get("/v1/integrity/report?from=2026-11-10&to=2026-11-01")
        assert_problem(bad, 422, "validation_error")


class TestIsolation:
    async def test_another_tenants_flags_are_invisible(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        mine = await post(tenant, score=1)
        flag = (
            await tenant.post(
                "/v1/integrity/flags", json={"response_ids": [mine], "reason": "test"}
            )
        ).json()
        url = f"/v1/integrity/flags/{flag['id']}"
        assert_problem(await other_tenant.get(url), 404, "not_found")
        assert_problem(
            await other_tenant.post(f"{url}/dismiss", json={"reason": "mine now"}), 404, "not_found"
        )
        assert (await other_tenant.get("/v1/integrity/flags")).json()["items"] == []
        theirs = await other_tenant.post(
            "/v1/integrity/flags", json={"response_ids": [mine], "reason": "not yours"}
        )
        assert_problem(theirs, 422, "validation_error")
        assert (await other_tenant.get("/v1/integrity/report")).json()["responses"] == 0
        assert_problem(
            await other_tenant.post(f"{url}/confirm", json={"reason": "mine now"}),
            404,
            "not_found",
        )
        await other_tenant.patch("/v1/integrity/settings", json={"exclude_threshold": 0.5})
        assert (await tenant.get("/v1/integrity/settings")).json()["exclude_threshold"] == 0.8
        assert (await tenant.get(url)).json()["status"] == "confirmed"


class TestScreenFailures:
    async def test_listed_retried_and_private_to_their_tenant(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenant: TenantHandle,
        other_tenant: TenantHandle,
    ) -> None:
        created = await client.post(
            "/v1/responses",
            json={"kind": "nps", "score": 9, "channel": "crm"},
            headers=tenant.headers,
        )
        response_id = created.json()["id"]
        await session.execute(
            text("UPDATE responses SET screened_at = now() WHERE id = :id"), {"id": response_id}
        )
        await WorkFailureRepository(session).record(
            tenant.id, "integrity.screen", response_id, "ValueError", "bad data"
        )
        theirs = await client.get("/v1/integrity/screen-failures", headers=other_tenant.headers)
        assert theirs.json() == {"items": [], "next_cursor": None}
        retried = await client.post(
            "/v1/integrity/screen-failures/retry",
            json={"response_ids": [response_id]},
            headers=other_tenant.headers,
        )
        assert retried.json() == {"queued": 0}

        mine = await client.get("/v1/integrity/screen-failures", headers=tenant.headers)
        (failure,) = mine.json()["items"]
        assert failure["response_id"] == response_id
        assert (failure["error_type"], failure["error"]) == ("ValueError", "bad data")
        retried = await client.post(
            "/v1/integrity/screen-failures/retry", json={}, headers=tenant.headers
        )
        assert retried.json() == {"queued": 1}
        screened = await session.scalar(
            text("SELECT screened_at FROM responses WHERE id = :id"), {"id": response_id}
        )
        assert screened is None  # the screen will take it again
        again = await client.get("/v1/integrity/screen-failures", headers=tenant.headers)
        assert again.json()["items"] == []

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "/v1/integrity/screen-failures/retry", {"response_ids": ["a\u0000b"]}),
            ("POST", "/v1/integrity/screen-failures/retry", {"response_ids": [float("nan")]}),
            ("POST", "/v1/integrity/screen-failures/retry", {"response_ids": "all"}),
            ("POST", "/v1/integrity/screen-failures/retry", {"everything": True}),
            ("POST", "/v1/integrity/screen-failures/retry", {"response_ids": [None] * 1001}),
            ("GET", "/v1/integrity/screen-failures?cursor=%00bad", None),
            ("GET", "/v1/integrity/screen-failures?limit=1000000", None),
        ],
    )
    async def test_bad_input_is_a_problem_never_a_500(
        self, client: httpx.AsyncClient, tenant: TenantHandle, method: str, path: str, body: Any
    ) -> None:
        content = None if body is None else json.dumps(body, allow_nan=True)
        answer = await client.request(
            method,
            path,
            content=content,
            headers={**tenant.headers, "Content-Type": "application/json"},
        )
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
