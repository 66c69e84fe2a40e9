"""Tickets from responses through the API: the rules open a ticket before the 201, a new
complaint attaches to the active ticket, a repeat complaint reopens a resolved one, and the
rules themselves (defaults, order, conditions, CRUD)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import Ticket
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.live import Live
from tests.fixtures.tickets import (
    RESOLVE,
    at,
    only_ticket,
    patch,
    resolved_ticket,
    respond,
    ticket_events,
    tickets,
    timeline,
)


class TestAutoTickets:
    async def test_a_detractor_opens_a_ticket_before_the_201(self, tenant: TenantHandle) -> None:
        response = await respond(tenant, 2, comment="Late again")
        ticket = await only_ticket(tenant)
        assert ticket["response_id"] == response["id"]
        assert ticket["customer"] == "c-1"
        assert ticket["touchpoint"] == "delivery"
        assert ticket["origin"] == "response"
        assert ticket["status"] == "open"
        assert ticket["priority"] == "high"  # NPS 0–3
        assert ticket["description"] == "Late again"
        assert ticket["sla_policy"] == "standard"
        first, resolution = ticket["first_response"], ticket["resolution"]
        assert first["state"] == resolution["state"] == "running"
        assert first["target_seconds"] == 4 * 3600
        assert resolution["target_seconds"] == 24 * 3600
        created = at(ticket["created_at"])
        assert at(first["due_at"]) - created == timedelta(hours=4)
        assert at(resolution["due_at"]) - created == timedelta(hours=24)
        (entry,) = await timeline(tenant, ticket["id"])
        assert entry["type"] == "created"
        assert entry["actor_key_id"] is None

    async def test_the_response_and_its_ticket_commit_together(self, live: Live) -> None:
        """The ticket is committed with the response, before the acknowledgement: visible
        the moment the 201 arrives, and gone with the response when the transaction fails
        after both were written (here the Idempotency-Key record, the last write)."""
        response = await live.client.post(
            "/v1/responses",
            json={"kind": "nps", "score": 1, "channel": "crm", "customer": "c-1"},
            headers=live.headers,
        )
        assert response.status_code == 201
        async with live.sessionmaker() as session:
            ticket = await session.scalar(
                select(Ticket.id).where(Ticket.response_id == response.json()["id"])
            )
        assert ticket is not None

        async with live.sessionmaker() as session:
            await session.execute(
                text(
                    "CREATE FUNCTION test_fail_last() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN RAISE EXCEPTION 'the last write fails' USING ERRCODE = '22023';"
                    " END $$"
                )
            )
            await session.execute(
                text(
                    "CREATE TRIGGER test_fail_last BEFORE INSERT ON idempotency_keys"
                    " FOR EACH ROW EXECUTE FUNCTION test_fail_last()"
                )
            )
            await session.commit()
        try:
            failed = await live.client.post(
                "/v1/responses",
                json={"kind": "nps", "score": 1, "channel": "crm", "customer": "c-2"},
                headers={**live.headers, "Idempotency-Key": "fails-last"},
            )
        finally:
            async with live.sessionmaker() as session:
                await session.execute(text("DROP TRIGGER test_fail_last ON idempotency_keys"))
                await session.execute(text("DROP FUNCTION test_fail_last()"))
                await session.commit()
        assert failed.status_code == 422
        async with live.sessionmaker() as session:
            counts = (
                await session.execute(
                    text(
                        "SELECT (SELECT count(*) FROM responses r JOIN customers c"
                        "  ON c.id = r.customer_id WHERE c.external_ref = 'c-2'"
                        "  AND r.tenant_id = :t),"
                        " (SELECT count(*) FROM tickets t WHERE t.tenant_id = :t)"
                    ),
                    {"t": live.tenant_id},
                )
            ).one()
        assert tuple(counts) == (0, 1)  # c-2's response and ticket are both gone

    @pytest.mark.parametrize(
        ("kind", "score", "priority"),
        [
            ("nps", 0, "high"),
            ("nps", 3, "high"),
            ("nps", 4, "normal"),
            ("nps", 6, "normal"),
            ("nps", 7, None),
            ("nps", 10, None),
            ("csat", 1, "normal"),
            ("csat", 2, "normal"),
            ("csat", 3, None),
            ("ces", 4, None),
            ("ces", 5, "normal"),
            ("ces", 7, "normal"),
        ],
    )
    async def test_default_rules(
        self, tenant: TenantHandle, kind: str, score: int, priority: str | None
    ) -> None:
        await respond(tenant, score, kind=kind)
        found = await tickets(tenant)
        assert [t["priority"] for t in found] == ([priority] if priority else [])

    async def test_no_ticket_without_a_customer_or_for_old_news(self, tenant: TenantHandle) -> None:
        await respond(tenant, 0, customer=None)
        old = (datetime.now(UTC) - timedelta(days=8)).isoformat()
        await respond(tenant, 0, occurred_at=old)
        assert await tickets(tenant) == []

    async def test_a_batch_opens_tickets_too(self, tenant: TenantHandle) -> None:
        items = [
            {"kind": "nps", "score": 1, "channel": "crm", "customer": f"c-{n % 3}"}
            for n in range(6)
        ]
        response = await tenant.post("/v1/responses/batch", json={"items": items})
        assert response.json()["created"] == 6
        found = await tickets(tenant)
        assert sorted(t["customer"] for t in found) == ["c-0", "c-1", "c-2"]

    async def test_a_new_complaint_attaches_to_the_open_ticket(self, tenant: TenantHandle) -> None:
        await respond(tenant, 5)
        second = await respond(tenant, 1, comment="Still nothing")
        ticket = await only_ticket(tenant)
        assert ticket["priority"] == "high"  # the angrier answer raised it
        # the clocks take the higher priority's targets from when the ticket opened
        assert at(ticket["first_response"]["due_at"]) - at(ticket["created_at"]) == timedelta(
            hours=4
        )
        entries = await timeline(tenant, ticket["id"])
        assert [e["type"] for e in entries] == ["created", "response_attached"]
        assert entries[1]["data"]["response_id"] == second["id"]
        assert entries[1]["body"] == "Still nothing"
        # another touchpoint is another ticket
        await respond(tenant, 1, touchpoint="billing")
        assert len(await tickets(tenant)) == 2

    async def test_concurrent_complaints_share_one_ticket(self, live: Live, engine: Any) -> None:
        async def post(n: int) -> int:
            response = await live.client.post(
                "/v1/responses",
                json={"kind": "nps", "score": n % 4, "channel": "crm", "customer": "race"},
                headers=live.headers,
            )
            return response.status_code

        assert await asyncio.gather(*(post(n) for n in range(8))) == [201] * 8
        async with live.sessionmaker() as session:
            count = await session.scalar(
                text("SELECT count(*) FROM tickets WHERE tenant_id = :t"),
                {"t": live.tenant_id},
            )
            links = await session.scalar(
                text("SELECT count(*) FROM ticket_responses WHERE tenant_id = :t"),
                {"t": live.tenant_id},
            )
        assert count == 1
        assert links == 8


class TestRules:
    async def test_new_tenant_defaults(self, tenant: TenantHandle) -> None:
        rules = (await tenant.get("/v1/ticket-rules")).json()
        assert [(r["position"], r["action"]["priority"]) for r in rules] == [
            (10, "high"),
            (20, "normal"),
            (30, "normal"),
            (40, "normal"),
        ]
        assert rules[0]["conditions"] == {
            **rules[0]["conditions"],
            "kinds": ["nps"],
            "score_max": 3,
        }
        (policy,) = (await tenant.get("/v1/sla-policies")).json()
        assert policy["key"] == "standard"
        assert policy["is_default"]
        assert policy["business_hours"] is None
        assert policy["targets"]["urgent"] == {
            "first_response_minutes": 60,
            "resolution_minutes": 480,
        }

    async def test_first_matching_rule_by_position_routes(self, tenant: TenantHandle) -> None:
        created = await tenant.post(
            "/v1/ticket-rules",
            json={
                "name": "Refunds to billing",
                "position": 5,
                "conditions": {"keywords_any": ["退款", "refund"], "score_max": 8},
                "action": {"priority": "urgent", "team": "billing", "assignee": "li.wei"},
            },
        )
        assert created.status_code == 201, created.text
        await respond(tenant, 8, comment="I want a REFUND now", customer="c-1")
        await respond(tenant, 2, comment="我要退款", customer="c-2")
        await respond(tenant, 2, comment="slow", customer="c-3")
        by_customer = {t["customer"]: t for t in await tickets(tenant)}
        assert by_customer["c-1"]["team"] == "billing"
        assert by_customer["c-1"]["priority"] == "urgent"
        assert by_customer["c-1"]["assignee"] == "li.wei"
        assert by_customer["c-1"]["rule_id"] == created.json()["id"]
        assert by_customer["c-2"]["team"] == "billing"
        assert by_customer["c-3"]["team"] is None
        assert by_customer["c-3"]["priority"] == "high"

    async def test_customer_attributes_tags_and_disabled_rules(self, tenant: TenantHandle) -> None:
        await tenant.put("/v1/customers/vip-1", json={"attributes": {"tier": "gold"}})
        gold = await tenant.post(
            "/v1/ticket-rules",
            json={
                "name": "Gold customers",
                "position": 1,
                "conditions": {"customer_attributes": {"tier": "gold"}, "score_max": 6},
                "action": {"priority": "urgent", "team": "vip"},
            },
        )
        tagged = await tenant.post(
            "/v1/ticket-rules",
            json={
                "name": "Broken items (off)",
                "position": 2,
                "enabled": False,
                "conditions": {"tags_any": ["broken"]},
                "action": {"priority": "urgent", "team": "quality"},
            },
        )
        assert gold.status_code == tagged.status_code == 201
        await respond(tenant, 5, customer="vip-1")
        await respond(tenant, 5, customer="c-2", tags=["broken"])
        by_customer = {t["customer"]: t for t in await tickets(tenant)}
        assert by_customer["vip-1"]["team"] == "vip"
        assert by_customer["c-2"]["team"] is None  # the disabled rule did not fire
        enabled = await tenant.patch(
            f"/v1/ticket-rules/{tagged.json()['id']}", json={"enabled": True}
        )
        assert enabled.json()["enabled"] is True
        await respond(tenant, 9, customer="c-3", tags=["broken"])
        assert (await only_ticket(tenant, customer="c-3"))["team"] == "quality"

    async def test_rule_crud_and_errors(self, tenant: TenantHandle) -> None:
        bad = await tenant.post(
            "/v1/ticket-rules",
            json={"name": "x", "position": 1, "action": {"sla_policy": "missing"}},
        )
        assert_problem(bad, 422, "validation_error")
        assert bad.json()["errors"][0]["code"] == "unknown_policy"
        reversed_range = await tenant.post(
            "/v1/ticket-rules",
            json={"name": "x", "position": 1, "conditions": {"score_min": 5, "score_max": 2}},
        )
        problem = assert_problem(reversed_range, 422, "validation_error")
        assert [(e["loc"], e["code"]) for e in problem["errors"]] == [
            (["body", "conditions"], "score_range")
        ]
        unknown_field = await tenant.post(
            "/v1/ticket-rules", json={"name": "x", "position": 1, "conditions": {"score": 1}}
        )
        assert_problem(unknown_field, 422, "validation_error")
        for body, loc, code in (
            ({"position": 10**20}, ["body", "position"], "less_than_equal"),
            ({"position": "1"}, ["body", "position"], "int_type"),
            ({"enabled": "false"}, ["body", "enabled"], "bool_type"),
            ({"name": "a\u0000"}, ["body", "name"], "nul_character"),
            (
                {"conditions": {"score_min": -(10**30)}},
                ["body", "conditions", "score_min"],
                "greater_than_equal",
            ),
            (
                {"conditions": {"keywords_any": ["late\u0000"]}},
                ["body", "conditions", "keywords_any", 0],
                "nul_character",
            ),
            (
                {"conditions": {"touchpoints": ["\u0000"]}},
                ["body", "conditions", "touchpoints", 0],
                "nul_character",
            ),
            (
                {"conditions": {"customer_attributes": {"tier": "gold\u0000"}}},
                ["body", "conditions", "customer_attributes", "tier"],
                "nul_character",
            ),
            (
                {"conditions": {"customer_attributes": {"t\u0000": "gold"}}},
                ["body", "conditions", "customer_attributes", "t\u0000"],
                "nul_character",
            ),
            ({"action": {"team": "\u0000"}}, ["body", "action", "team"], "nul_character"),
        ):
            hostile = await tenant.post(
                "/v1/ticket-rules", json={"name": "x", "position": 1, **body}
            )
            problem = assert_problem(hostile, 422, "validation_error")
            # a bad key may be marked with a trailing "[key]"
            assert [(e["loc"][: len(loc)], e["code"]) for e in problem["errors"]] == [
                (loc, code)
            ], problem
        rule_id = (await tenant.get("/v1/ticket-rules")).json()[0]["id"]
        assert (await tenant.delete(f"/v1/ticket-rules/{rule_id}")).status_code == 204
        assert_problem(await tenant.get(f"/v1/ticket-rules/{rule_id}"), 404, "not_found")
        assert len((await tenant.get("/v1/ticket-rules")).json()) == 3
        # NPS 0–3 now falls through to the detractor rule
        await respond(tenant, 1)
        assert (await only_ticket(tenant))["priority"] == "normal"


class TestRepeatComplaints:
    """A complaint after a resolution: the same ticket reopens, within the tenant's window."""

    async def test_repeat_complaint_reopens(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        ticket_id = await resolved_ticket(tenant)
        await patch(tenant, ticket_id, status="closed")
        again = await respond(tenant, 3, comment="It broke again")
        ticket = await only_ticket(tenant)
        assert ticket["id"] == ticket_id
        assert ticket["status"] == "reopened"
        assert ticket["repeat_count"] == 1
        assert ticket["reopened_count"] == 1
        entries = await timeline(tenant, ticket_id)
        assert [e["type"] for e in entries[-2:]] == ["repeat_complaint", "status_changed"]
        assert entries[-2]["data"]["response_id"] == again["id"]
        event = (await ticket_events(session, tenant.id))[-1]
        assert event.type == "ticket.reopened"
        assert event.data["entry"]["data"]["reason"] == "repeat_complaint"

    async def test_after_the_window_a_complaint_is_a_new_ticket(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        ticket_id = await resolved_ticket(tenant)
        await session.execute(
            text("UPDATE tickets SET resolved_at = now() - interval '31 days' WHERE id = :id"),
            {"id": ticket_id},
        )
        await respond(tenant, 3)
        found = await tickets(tenant)
        assert len(found) == 2
        assert {t["status"] for t in found} == {"resolved", "open"}
        # the window is the tenant's: at 45 days the first ticket (resolved 31 days ago) is
        # still in it, the second (resolved 50 days ago) is not
        assert (
            await tenant.patch("/v1/tenant", json={"ticket_reopen_days": 45})
        ).status_code == 200
        newest = found[0]["id"]
        await patch(tenant, newest, status="in_progress")
        await patch(tenant, newest, **RESOLVE)
        await session.execute(
            text("UPDATE tickets SET resolved_at = now() - interval '50 days' WHERE id = :id"),
            {"id": newest},
        )
        await respond(tenant, 3)
        reopened = await only_ticket(tenant, status="reopened")
        assert reopened["id"] == ticket_id
