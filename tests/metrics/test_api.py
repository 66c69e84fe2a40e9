"""The metrics endpoints against a brute-force count over the responses we stored.

Each dataset is checked three ways where it matters: straight after ingest (rollup empty,
everything in the delta log), after the worker's fold (rollup), and through the raw path
(a filter the rollup does not hold) — all three must equal the brute force.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from feedback_api.metrics.service import merge_small_cells
from feedback_api.worker import TASKS
from feedback_api.worker_context import JobContext
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.live import Live
from tests.fixtures.metrics import (
    SCALES,
    START,
    assert_matches,
    brute,
    fold,
    make_items,
    metric,
    seed,
)


async def test_small_cells_are_merged_into_other(tenant: TenantHandle) -> None:
    at = "2026-09-01T10:00:00Z"
    sizes = {"store-1": 20, "store-2": 3, "store-3": 1, "store-4": 6}
    items = [
        {"kind": "nps", "score": 9, "channel": "crm", "location_ref": loc, "occurred_at": at}
        for loc, n in sizes.items()
        for _ in range(n)
    ]
    await seed(tenant, items)
    params = {"from": "2026-09-01", "to": "2026-09-02", "by": "location_ref"}
    # A dashboard's key: without metrics:small_cells (the admin key has it, and sees every
    # group on its own: tests/metrics/test_small_cells.py).
    reader = await tenant.key("metrics:read")
    rows = (await tenant.get("/v1/metrics/nps/breakdown", params=params, key=reader)).json()["rows"]
    # store-2 and store-3 (4 together) are too small even merged, so store-4 joins them
    assert [(r["key"], r["n"], r["other"], r["groups"]) for r in rows] == [
        ("store-1", 20, False, 1),
        (None, 10, True, 3),
    ]

    # a bigger minimum merges more
    await tenant.patch("/v1/tenant", json={"metrics_min_cell_n": 21})
    rows = (await tenant.get("/v1/metrics/nps/breakdown", params=params, key=reader)).json()["rows"]
    assert [(r["key"], r["n"], r["groups"]) for r in rows] == [(None, 30, 4)]


@pytest.mark.parametrize(
    ("sizes", "kept", "merged"),
    [
        ({"a": 10, "b": 7}, ["a", "b"], []),
        ({"a": 10, "b": 3, "c": 4}, ["a"], ["c", "b"]),
        # other alone would be 2: the smallest kept group joins it
        ({"a": 10, "b": 6, "c": 2}, ["a"], ["c", "b"]),
        ({"a": 3}, [], ["a"]),
        ({"a": 9, "b": 0}, ["a"], []),
    ],
)
def test_merge_small_cells(
    sizes: dict[str | None, int], kept: list[str], merged: list[str]
) -> None:
    assert merge_small_cells(sizes, 5) == (kept, merged)


class TestTimeZones:
    async def test_a_local_day_is_not_a_utc_day(self, tenant: TenantHandle) -> None:
        await tenant.patch("/v1/tenant", json={"timezone": "Asia/Shanghai"})
        await rebuild(tenant)
        items = [
            # 23:30 in Shanghai on the 1st is 15:30 UTC on the 1st
            {
                "kind": "nps",
                "score": 10,
                "channel": "crm",
                "occurred_at": "2026-09-01T23:30:00+08:00",
            },
            # 00:30 in Shanghai on the 2nd is still the 1st in UTC
            {"kind": "nps", "score": 0, "channel": "crm", "occurred_at": "2026-09-01T16:30:00Z"},
        ]
        await seed(tenant, items)
        params = {"from": "2026-09-01", "to": "2026-09-03", "interval": "day"}
        for _ in range(2):  # from the delta log, then from the rollup
            buckets = (await tenant.get("/v1/metrics/nps/trend", params=params)).json()["buckets"]
            assert [(b["start"], b["n"], b["value"]) for b in buckets] == [
                ("2026-09-01T00:00:00+08:00", 1, 100.0),
                ("2026-09-02T00:00:00+08:00", 1, -100.0),
            ]
            await fold(tenant)

    async def test_dst_week_has_its_local_boundaries(self, tenant: TenantHandle) -> None:
        await tenant.patch("/v1/tenant", json={"timezone": "Europe/Berlin"})
        await rebuild(tenant)
        # Clocks go back on Sunday 2026-10-25; a response late that Sunday is in that week.
        items = [
            {
                "kind": "nps",
                "score": 9,
                "channel": "crm",
                "occurred_at": "2026-10-25T23:30:00+01:00",
            }
        ]
        await seed(tenant, items)
        await fold(tenant)
        params = {"from": "2026-10-19", "to": "2026-11-02", "interval": "week"}
        buckets = (await tenant.get("/v1/metrics/nps/trend", params=params)).json()["buckets"]
        assert [(b["start"], b["end"], b["n"]) for b in buckets] == [
            ("2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 1),
            ("2026-10-26T00:00:00+01:00", "2026-11-02T00:00:00+01:00", 0),
        ]

    async def test_changing_the_time_zone_rebuckets(self, tenant: TenantHandle) -> None:
        items = [
            {"kind": "nps", "score": 10, "channel": "crm", "occurred_at": "2026-09-01T20:00:00Z"}
        ]
        await seed(tenant, items)
        await fold(tenant)
        params = {"from": "2026-09-01", "to": "2026-09-03", "interval": "day"}

        def days(body: dict[str, Any]) -> list[int]:
            return [b["n"] for b in body["buckets"]]

        assert days((await tenant.get("/v1/metrics/nps/trend", params=params)).json()) == [1, 0]
        await tenant.patch("/v1/tenant", json={"timezone": "Asia/Tokyo"})
        # before the rebuild job has run: raw rows, already in the new zone
        assert days((await tenant.get("/v1/metrics/nps/trend", params=params)).json()) == [0, 1]
        await rebuild(tenant)
        assert days((await tenant.get("/v1/metrics/nps/trend", params=params)).json()) == [0, 1]
        state = await tenant.session.scalar(
            text("SELECT timezone FROM metric_rollup_state WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
        assert state == "Asia/Tokyo"


async def rebuild(tenant: TenantHandle) -> None:
    """Run the rebuild job the time zone change queued."""
    from feedback_api.models import Job

    job = Job(kind="metrics.rebuild", tenant_id=tenant.id, payload={})
    await TASKS["metrics.rebuild"](JobContext(job=job, session=tenant.session, settings=None))  # type: ignore[arg-type]


class TestRollupStaysExact:
    async def test_backdated_excluded_and_erased(self, tenant: TenantHandle) -> None:
        items = make_items(random.Random(3), 300)
        ids = await seed(tenant, items)
        await fold(tenant)
        # a late, backdated import into a day the rollup already holds
        late = make_items(random.Random(4), 50)
        ids += await seed(tenant, late)
        items += late
        # exclusions (a person's flag), after the rollup already counted them
        gone = set(range(0, 40, 4))
        flagged = await tenant.post(
            "/v1/integrity/flags",
            json={"response_ids": [ids[i] for i in sorted(gone)], "reason": "test data"},
        )
        assert flagged.status_code == 201, flagged.text
        # an erasure: the customer's responses stay in the numbers, anonymised
        assert (await tenant.delete("/v1/customers/c-1")).status_code == 204
        remaining = [i for n, i in enumerate(items) if n not in gone]
        for _ in range(2):
            for kind in SCALES:
                expected = brute(remaining, kind, START, START + timedelta(days=91), lambda i: True)
                body = await metric(tenant, kind, **{"from": "2026-06-01", "to": "2026-09-01"})
                assert_matches(body, kind, expected)
            await fold(tenant)
        rollup_total = await tenant.session.scalar(
            text(
                "SELECT sum(c) FROM metric_rollups r, unnest(r.counts) c "
                "WHERE r.tenant_id = :t AND r.grain = 'day' AND NOT r.excluded"
            ),
            {"t": tenant.id},
        )
        assert rollup_total == len(remaining)
        # each grain of both tables holds the same total
        for table in ("metric_rollups", "metric_totals"):
            for grain in ("day", "week", "month"):
                total = (
                    await tenant.session.execute(
                        text(
                            f"SELECT sum(c) FILTER (WHERE NOT r.excluded), "
                            f"sum(c) FILTER (WHERE r.excluded) FROM {table} r, unnest(r.counts) c "
                            "WHERE r.tenant_id = :t AND r.grain = :g"
                        ),
                        {"t": tenant.id, "g": grain},
                    )
                ).one()
                assert tuple(total) == (len(remaining), len(gone)), (table, grain)

    async def test_erased_customers_leave_attribute_filters(self, tenant: TenantHandle) -> None:
        await tenant.put("/v1/customers/c-9", json={"attributes": {"tier": "gold"}})
        at = "2026-09-01T10:00:00Z"
        await seed(
            tenant,
            [{"kind": "nps", "score": 2, "channel": "crm", "customer": "c-9", "occurred_at": at}],
        )
        period = {"from": "2026-09-01", "to": "2026-09-02"}
        assert (await metric(tenant, **period, **{"attr.tier": "gold"}))["n"] == 1
        await tenant.delete("/v1/customers/c-9")
        assert (await metric(tenant, **period, **{"attr.tier": "gold"}))["n"] == 0
        assert (await metric(tenant, **period))["n"] == 1


class TestIntegrityAndVerified:
    async def test_excluded_and_verified(self, tenant: TenantHandle) -> None:
        at = "2026-09-01T10:00:00Z"
        items = [
            {"kind": "nps", "score": s, "channel": "crm", "occurred_at": at}
            for s in (10, 10, 0, 0, 5)
        ]
        ids = await seed(tenant, items)
        await tenant.session.execute(
            text("UPDATE responses SET excluded = true WHERE id = ANY(:ids)"),
            {"ids": [ids[0], ids[1]]},
        )
        await tenant.session.execute(
            text("UPDATE responses SET verified = true WHERE id = ANY(:ids)"),
            {"ids": [ids[1], ids[2]]},
        )
        period = {"from": "2026-09-01", "to": "2026-09-02"}
        for _ in range(2):
            valid = await metric(tenant, **period)
            assert (valid["n"], valid["excluded"], valid["value"]) == (3, 2, -100.0)
            everything = await metric(tenant, **period, integrity="all")
            assert (everything["n"], everything["excluded"]) == (5, 2)
            verified = await metric(tenant, **period, verified="true")
            assert (verified["n"], verified["excluded"]) == (1, 1)
            await fold(tenant)


class TestCompareAndSummary:
    async def test_two_periods(self, tenant: TenantHandle) -> None:
        before = [9] * 90 + [7] * 60 + [3] * 50  # the reference before/after vectors
        after = [10] * 121 + [8] * 55 + [0] * 44
        items = [
            {"kind": "nps", "score": s, "channel": "crm", "occurred_at": "2026-08-15T10:00:00Z"}
            for s in before
        ] + [
            {"kind": "nps", "score": s, "channel": "web", "occurred_at": "2026-09-15T10:00:00Z"}
            for s in after
        ]
        await seed(tenant, items)
        params = {
            "a_from": "2026-08-01",
            "a_to": "2026-09-01",
            "b_from": "2026-09-01",
            "b_to": "2026-10-01",
        }
        body = (await tenant.get("/v1/metrics/nps/compare", params=params)).json()
        assert (body["a"]["metric"]["n"], body["b"]["metric"]["n"]) == (200, 220)
        result = body["comparison"]
        assert result["test"] == "z"
        assert result["delta"] == pytest.approx(15.0)
        assert result["p_value"] == pytest.approx(0.0558, abs=1e-4)
        assert result["significant"] is False
        # the same data as two segments of one period
        params = {
            "from": "2026-08-01",
            "to": "2026-10-01",
            "a_segment": "channel:crm",
            "b_segment": "channel:web",
            "alpha": "0.1",
        }
        body = (await tenant.get("/v1/metrics/nps/compare", params=params)).json()
        assert body["comparison"]["delta"] == pytest.approx(15.0)
        assert body["comparison"]["significant"] is True  # at alpha 0.1
        assert body["a"]["segment"] == "channel:crm"

    async def test_summary_against_the_previous_period(self, tenant: TenantHandle) -> None:
        items = [
            {"kind": "csat", "score": s, "channel": "crm", "occurred_at": at}
            for s, at in [(5, "2026-08-20T10:00:00Z")] * 40 + [(1, "2026-09-10T10:00:00Z")] * 40
        ]
        await seed(tenant, items)
        body = (
            await tenant.get(
                "/v1/metrics/summary", params={"from": "2026-09-01", "to": "2026-10-01"}
            )
        ).json()
        assert body["previous_period"]["from"] == "2026-08-02T00:00:00Z"
        assert body["previous_period"]["to"] == "2026-09-01T00:00:00Z"
        csat = body["csat"]
        assert (csat["current"]["value"], csat["previous"]["value"]) == (0.0, 100.0)
        assert csat["change"]["delta"] == pytest.approx(-100.0)
        assert csat["change"]["significant"] is True
        assert body["nps"]["change"] is None  # no NPS responses in either period

    async def test_defaults_to_the_last_30_days(self, tenant: TenantHandle) -> None:
        now = datetime.now(UTC)
        items = [
            {"kind": "nps", "score": 9, "channel": "crm", "occurred_at": now.isoformat()},
            {
                "kind": "nps",
                "score": 9,
                "channel": "crm",
                "occurred_at": (now - timedelta(days=31)).isoformat(),
            },
        ]
        await seed(tenant, items)
        body = await metric(tenant)
        assert body["n"] == 1
        period_from = datetime.fromisoformat(body["period"]["from"])
        period_to = datetime.fromisoformat(body["period"]["to"])
        assert period_to - period_from == timedelta(days=30)
        assert period_from < now < period_to
        assert body["low_sample"] is True

    async def test_low_sample_threshold_is_the_tenants(self, tenant: TenantHandle) -> None:
        at = "2026-09-01T10:00:00Z"
        await seed(tenant, [{"kind": "nps", "score": 9, "channel": "crm", "occurred_at": at}] * 12)
        period = {"from": "2026-09-01", "to": "2026-09-02"}
        assert (await metric(tenant, **period))["low_sample"] is True
        response = await tenant.patch("/v1/tenant", json={"metrics_low_sample_n": 10})
        assert response.json()["metrics_low_sample_n"] == 10
        assert (await metric(tenant, **period))["low_sample"] is False

    async def test_rating_and_needed_n(self, tenant: TenantHandle) -> None:
        at = "2026-09-01T10:00:00Z"
        items = [
            {
                "kind": "rating",
                "score": s,
                "scale_min": 1,
                "scale_max": 10,
                "channel": "crm",
                "occurred_at": at,
            }
            for s in (10, 10, 7, 3)
        ]
        await seed(tenant, items)
        period = {"from": "2026-09-01", "to": "2026-09-02"}
        body = await metric(tenant, "rating", **period, scale_min=1, scale_max=10, target_margin=1)
        assert body["value"] == pytest.approx(7.5)
        assert body["share"]["count"] == 2
        assert body["needed_n"] > 4


class TestBadInput:
    @pytest.mark.parametrize(
        ("url", "params"),
        [
            ("/v1/metrics/nps", {"from": "2026-09-02", "to": "2026-09-01"}),
            ("/v1/metrics/nps", {"from": "yesterday"}),
            ("/v1/metrics/nps", {"confidence": "1.5"}),
            ("/v1/metrics/nps", {"channel": "carrier-pigeon"}),
            ("/v1/metrics/nps", {"attr.bad name": "x"}),
            ("/v1/metrics/nps", {"scale_min": 1, "scale_max": 5}),
            ("/v1/metrics/rating", {}),
            ("/v1/metrics/nope", {}),
            ("/v1/metrics/nps/trend", {"interval": "hour"}),
            (
                "/v1/metrics/nps/trend",
                {"from": "2020-01-01", "to": "2026-01-01", "interval": "day"},
            ),
            ("/v1/metrics/nps/breakdown", {}),
            ("/v1/metrics/nps/breakdown", {"by": "comment"}),
            ("/v1/metrics/nps/compare", {}),
            ("/v1/metrics/nps/compare", {"a_segment": "channel"}),
            ("/v1/metrics/nps/compare", {"a_segment": "channel:fax", "b_segment": "channel:web"}),
            ("/v1/metrics/nps/compare", {"channel": "app", "a_segment": "channel:web"}),
            ("/v1/metrics/summary", {"alpha": "0.7"}),
        ],
    )
    async def test_is_a_422_problem(
        self, tenant: TenantHandle, url: str, params: dict[str, Any]
    ) -> None:
        response = await tenant.get(url, params=params)
        assert_problem(response, 422, "validation_error")

    @pytest.mark.parametrize(
        ("url", "params", "loc", "code"),
        [
            ("/v1/metrics/nps", {"from": "1899-12-31"}, "from", "datetime_out_of_range"),
            ("/v1/metrics/nps", {"to": "3000-01-01"}, "to", "datetime_out_of_range"),
            (
                "/v1/metrics/nps",
                {"to": "2999-12-31T23:00:00-14:00"},
                "to",
                "datetime_out_of_range",
            ),
            ("/v1/metrics/nps", {"from": "10000-01-01"}, "from", "datetime_format"),
            ("/v1/metrics/nps", {"from": "1700000000"}, "from", "datetime_format"),
            ("/v1/metrics/nps", {"touchpoint": "a\x00b"}, "touchpoint", "nul_character"),
            ("/v1/metrics/nps", {"tag": "x" * 65}, "tag", "string_too_long"),
            ("/v1/metrics/nps", {"attr.tier": "a\x00b"}, "attr.tier", "nul_character"),
            ("/v1/metrics/nps", {"attr.tier\n": "gold"}, "attr.tier\n", "attribute_filter"),
            (
                "/v1/metrics/nps",
                {f"attr.a{i}": "x" for i in range(6)},
                "attr.a5",
                "too_many_attribute_filters",
            ),
            ("/v1/metrics/nps", {"scale_min": 10**30}, "scale_min", "less_than_equal"),
            ("/v1/metrics/nps", {"scale_min": 1, "scale_max": 5}, "scale_min", "scale_fixed"),
            ("/v1/metrics/rating", {}, "scale_min", "scale_required"),
            ("/v1/metrics/rating", {"scale_min": 5, "scale_max": 3}, "scale_min", "scale_range"),
            ("/v1/metrics/nps/breakdown", {"by": "attr." + "x" * 65}, "by", "string_too_long"),
            (
                "/v1/metrics/nps/compare",
                {"a_segment": "channel:a\x00b"},
                "a_segment",
                "string_pattern_mismatch",
            ),
            ("/v1/metrics/nps/compare", {}, "a_from", "comparison_required"),
            (
                "/v1/metrics/nps/trend",
                {"from": "1900-01-01", "to": "2999-12-31", "interval": "month"},
                "interval",
                "too_many_buckets",
            ),
        ],
    )
    async def test_each_refusal_has_its_code(
        self, tenant: TenantHandle, url: str, params: dict[str, Any], loc: str, code: str
    ) -> None:
        body = assert_problem(await tenant.get(url, params=params), 422, "validation_error")
        assert [(e["loc"], e["code"]) for e in body["errors"]][:1] == [(["query", loc], code)]

    @pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "America/St_Johns"])
    async def test_the_widest_periods_are_answered(self, tenant: TenantHandle, zone: str) -> None:
        """The first and last days a bound may name, in the zones furthest from UTC: the
        previous period (summary) reaches back ~1,100 years before 1900, and that is fine."""
        assert (await tenant.patch("/v1/tenant", json={"timezone": zone})).status_code == 200
        await seed(tenant, [{"kind": "nps", "score": 9, "channel": "crm"}])
        widest = {"from": "1900-01-01", "to": "2999-12-31"}
        edges = [
            widest,
            {"from": "1900-01-01T00:00:00Z"},
            {"to": "2999-12-31T23:59:59Z"},
            {"from": "2999-12-31", "to": "2999-12-31T23:59:59+09:00"},
        ]
        for params in edges:
            assert (await metric(tenant, **params))["n"] in (0, 1)
        summary = await tenant.get("/v1/metrics/summary", params=widest)
        assert summary.status_code == 200, summary.text
        assert summary.json()["nps"]["current"]["n"] == 1
        # Close to 1,000 buckets, ending on the last day a bound may name.
        for interval, first in (
            ("day", "2997-06-01"),
            ("week", "2981-01-01"),
            ("month", "2917-01-01"),
        ):
            trend = await tenant.get(
                "/v1/metrics/nps/trend",
                params={"from": first, "to": "2999-12-31", "interval": interval},
            )
            assert trend.status_code == 200, trend.text
            assert len(trend.json()["buckets"]) <= 1000
        compare = await tenant.get(
            "/v1/metrics/nps/compare",
            params={"a_from": "1900-01-01", "a_to": "1900-02-01", "b_from": "2999-12-01"},
        )
        assert compare.status_code == 200, compare.text


async def test_tenants_see_only_their_own_numbers(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    at = "2026-09-01T10:00:00Z"
    await seed(other_tenant, [{"kind": "nps", "score": 0, "channel": "crm", "occurred_at": at}] * 7)
    await seed(tenant, [{"kind": "nps", "score": 10, "channel": "crm", "occurred_at": at}] * 3)
    period = {"from": "2026-09-01", "to": "2026-09-02"}
    for _ in range(2):
        assert (await metric(tenant, **period))["distribution"][10] == 3
        assert (await metric(tenant, **period))["n"] == 3
        trend = (
            await tenant.get("/v1/metrics/nps/trend", params={**period, "interval": "day"})
        ).json()
        assert trend["buckets"][0]["n"] == 3
        rows = (
            await tenant.get("/v1/metrics/nps/breakdown", params={**period, "by": "channel"})
        ).json()["rows"]
        assert [r["n"] for r in rows] == [3]
        summary = (await tenant.get("/v1/metrics/summary", params=period)).json()
        assert summary["nps"]["current"]["n"] == 3
        await fold(tenant)


class TestExport:
    async def test_ndjson_and_csv_stream_everything_matching(self, live: Live) -> None:
        items = [
            {
                "kind": "nps",
                "score": n % 11,
                "channel": "crm",
                "comment": '=HYPERLINK("x")',
                "tags": ["a", "b"],
                "occurred_at": f"2026-09-01T{n // 60:02d}:{n % 60:02d}:00Z",
            }
            for n in range(1400)
        ]
        for first in range(0, len(items), 1000):
            response = await live.client.post(
                "/v1/responses/batch",
                json={"items": items[first : first + 1000]},
                headers=live.headers,
            )
            assert response.json()["created"] == len(items[first : first + 1000])
        params = {"from": "2026-09-01T00:00:00Z", "to": "2026-09-02T00:00:00Z"}
        async with live.client.stream(
            "GET", "/v1/responses/export", params=params, headers=live.headers
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/x-ndjson"
            lines = [json.loads(line) async for line in response.aiter_lines() if line]
        assert len(lines) == len(items)  # two pages of 1,000, nothing lost or repeated
        assert len({r["id"] for r in lines}) == len(items)
        assert [r["occurred_at"] for r in lines] == sorted(r["occurred_at"] for r in lines)
        assert lines[0]["comment"] == '=HYPERLINK("x")'  # NDJSON carries text as is

        expected = [i for i in items if int(str(i["score"])) >= 9]
        response = await live.client.get(
            "/v1/responses/export",
            params={**params, "score_min": "9", "format": "csv"},
            headers=live.headers,
        )
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == len(expected)
        assert rows[0]["comment"] == '\'=HYPERLINK("x")'  # defused for spreadsheets
        assert rows[0]["tags"] == "a;b"
        assert rows[0]["kind"] == "nps"

    async def test_another_tenants_rows_never_appear(self, live: Live, other_live: Live) -> None:
        item = {"kind": "nps", "score": 3, "channel": "crm"}
        await other_live.client.post("/v1/responses", json=item, headers=other_live.headers)
        response = await live.client.get("/v1/responses/export", headers=live.headers)
        assert response.status_code == 200
        assert response.text == ""
        response = await live.client.get(
            "/v1/responses/export", params={"format": "csv"}, headers=live.headers
        )
        assert response.text.count("\r\n") == 1  # the header only

    async def test_bad_format_is_a_422(self, tenant: TenantHandle) -> None:
        response = await tenant.get("/v1/responses/export", params={"format": "xlsx"})
        assert_problem(response, 422, "validation_error")
