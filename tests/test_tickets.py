"""The closed loop through the API: rules open tickets from unhappy responses, teams work
them, clocks run and stop, a repeat complaint reopens, events tell the CRM."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import Event, Ticket
from feedback_api.tickets.service import ticket as ticket_service
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.live import Live

RESOLVE = {
    "status": "resolved",
    "root_cause": "delivery_delay",
    "resolution_summary": "We re-sent your order with express shipping.",
}


async def respond(
    tenant: TenantHandle,
    score: int = 2,
    *,
    customer: str | None = "c-1",
    touchpoint: str | None = "delivery",
    kind: str = "nps",
    **extra: Any,
) -> dict[str, Any]:
    body = {"kind": kind, "score": score, "channel": "crm", **extra}
    if customer is not None:
        body["customer"] = customer
    if touchpoint is not None:
        body["touchpoint"] = touchpoint
    response = await tenant.post("/v1/responses", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def tickets(tenant: TenantHandle, **params: Any) -> list[dict[str, Any]]:
    response = await tenant.get("/v1/tickets", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def only_ticket(tenant: TenantHandle, **params: Any) -> dict[str, Any]:
    (ticket,) = await tickets(tenant, **params)
    return ticket


async def timeline(tenant: TenantHandle, ticket_id: str) -> list[dict[str, Any]]:
    response = await tenant.get(f"/v1/tickets/{ticket_id}/timeline")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def ticket_events(session: AsyncSession, tenant_id: UUID) -> list[Event]:
    stmt = (
        select(Event)
        .where(Event.tenant_id == tenant_id, Event.type.startswith("ticket."))
        .order_by(Event.xid, Event.id)
    )
    return list((await session.scalars(stmt)).all())


async def patch(tenant: TenantHandle, ticket_id: str, **body: Any) -> dict[str, Any]:
    response = await tenant.patch(f"/v1/tickets/{ticket_id}", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


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


class TestWorkingATicket:
    async def test_the_status_flow_and_its_events(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await respond(tenant, 2)
        ticket_id = (await only_ticket(tenant))["id"]
        assert (await patch(tenant, ticket_id, status="acknowledged"))["acknowledged_at"]
        await patch(tenant, ticket_id, status="in_progress", team="care", assignee="ana")
        waiting = await patch(tenant, ticket_id, status="waiting_on_customer")
        assert waiting["first_response"]["state"] == "paused"
        assert waiting["resolution"]["due_at"] is None
        back = await patch(tenant, ticket_id, status="in_progress")
        assert back["resolution"]["state"] == "running"
        assert at(back["resolution"]["due_at"]) > at(waiting["updated_at"]) + timedelta(hours=23)
        resolved = await patch(tenant, ticket_id, **RESOLVE)
        assert resolved["status"] == "resolved"
        assert resolved["resolution"]["state"] == resolved["first_response"]["state"] == "stopped"
        assert resolved["resolution"]["due_at"] is None
        closed = await patch(tenant, ticket_id, status="closed")
        assert closed["closed_at"] is not None
        reopened = await patch(tenant, ticket_id, status="reopened")
        assert reopened["reopened_count"] == 1
        assert reopened["resolved_at"] is None
        assert reopened["resolution"]["state"] == "running"
        assert reopened["first_response"]["state"] == "stopped"

        types = [e.type for e in await ticket_events(session, tenant.id)]
        assert types == [
            "ticket.created",
            "ticket.updated",  # acknowledged
            "ticket.assigned",
            "ticket.updated",  # in progress
            "ticket.updated",  # waiting
            "ticket.updated",  # in progress
            "ticket.resolved",
            "ticket.closed",
            "ticket.reopened",
        ]
        events = await ticket_events(session, tenant.id)
        resolved_event = events[6]
        assert resolved_event.data["resolution_summary"] == RESOLVE["resolution_summary"]
        assert resolved_event.data["entry"]["data"] == {"from": "in_progress", "to": "resolved"}
        assert events[2].data["entry"]["data"] == {
            "team": {"from": None, "to": "care"},
            "assignee": {"from": None, "to": "ana"},
        }
        entries = await timeline(tenant, ticket_id)
        assert [e["type"] for e in entries].count("status_changed") == 7

    @pytest.mark.parametrize(
        ("path", "target"),
        [
            ([], "closed"),
            ([], "resolved"),
            ([], "waiting_on_customer"),
            (["acknowledged"], "open"),
            (["in_progress"], "acknowledged"),
            (["in_progress", "resolved"], "in_progress"),
            (["in_progress", "resolved", "closed"], "resolved"),
        ],
    )
    async def test_illegal_transitions_are_409(
        self, tenant: TenantHandle, path: list[str], target: str
    ) -> None:
        await respond(tenant, 2)
        ticket_id = (await only_ticket(tenant))["id"]
        for status in path:
            body = RESOLVE if status == "resolved" else {"status": status}
            await patch(tenant, ticket_id, **body)
        body = RESOLVE if target == "resolved" else {"status": target}
        problem = assert_problem(
            await tenant.patch(f"/v1/tickets/{ticket_id}", json=body), 409, "illegal_transition"
        )
        assert "may go to" in problem["detail"]

    async def test_resolving_needs_a_cause_and_a_summary(self, tenant: TenantHandle) -> None:
        await respond(tenant, 2)
        ticket_id = (await only_ticket(tenant))["id"]
        await patch(tenant, ticket_id, status="in_progress")
        problem = assert_problem(
            await tenant.patch(f"/v1/tickets/{ticket_id}", json={"status": "resolved"}),
            422,
            "validation_error",
        )
        assert {tuple(e["loc"]) for e in problem["errors"]} == {
            ("body", "root_cause"),
            ("body", "resolution_summary"),
        }
        assert (await tenant.get(f"/v1/tickets/{ticket_id}")).json()["status"] == "in_progress"
        await patch(tenant, ticket_id, root_cause="billing_error")
        done = await patch(
            tenant, ticket_id, status="resolved", resolution_summary="Refunded the fee."
        )
        assert done["root_cause"] == "billing_error"

    async def test_first_reply_stops_the_first_response_clock(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await respond(tenant, 2)
        ticket_id = (await only_ticket(tenant))["id"]
        note = await tenant.post(
            f"/v1/tickets/{ticket_id}/notes", json={"body": "Checking the courier", "author": "ana"}
        )
        assert note.status_code == 201
        assert note.json()["type"] == "note"
        reply = await tenant.post(
            f"/v1/tickets/{ticket_id}/replies",
            json={"body": "Sorry! Your parcel arrives tomorrow.", "author": "ana"},
        )
        assert reply.status_code == 201, reply.text
        ticket = (await tenant.get(f"/v1/tickets/{ticket_id}")).json()
        first = ticket["first_response"]
        assert first["state"] == "stopped"
        assert first["stopped_at"] == reply.json()["created_at"]
        assert first["due_at"] is None
        assert first["breached_at"] is None
        assert ticket["resolution"]["state"] == "running"
        await tenant.post(f"/v1/tickets/{ticket_id}/replies", json={"body": "Tracking: 123"})
        again = (await tenant.get(f"/v1/tickets/{ticket_id}")).json()
        assert again["first_response"]["stopped_at"] == first["stopped_at"]

        events = await ticket_events(session, tenant.id)
        replied = [e for e in events if e.type == "ticket.replied"]
        assert [e.data["entry"]["body"] for e in replied] == [
            "Sorry! Your parcel arrives tomorrow.",
            "Tracking: 123",
        ]
        assert replied[0].data["entry"]["data"] == {"first": True}
        assert not any(e.data.get("entry", {}).get("type") == "note" for e in events)
        types = [e["type"] for e in await timeline(tenant, ticket_id)]
        assert types == ["created", "note", "reply", "reply"]

    async def test_closed_tickets_take_no_replies(self, tenant: TenantHandle) -> None:
        await respond(tenant, 2)
        ticket_id = (await only_ticket(tenant))["id"]
        await patch(tenant, ticket_id, status="in_progress")
        await patch(tenant, ticket_id, **RESOLVE)
        await patch(tenant, ticket_id, status="closed")
        assert_problem(
            await tenant.post(f"/v1/tickets/{ticket_id}/replies", json={"body": "hi"}),
            409,
            "illegal_transition",
        )

    async def test_priority_change_rebudgets_running_clocks(self, tenant: TenantHandle) -> None:
        await respond(tenant, 5)  # normal: 24 h / 72 h
        ticket = await only_ticket(tenant)
        urgent = await patch(tenant, ticket["id"], priority="urgent")
        created = at(ticket["created_at"])
        assert at(urgent["first_response"]["due_at"]) - created == timedelta(hours=1)
        assert at(urgent["resolution"]["due_at"]) - created == timedelta(hours=8)


class TestClosingTheLoop:
    async def resolved_ticket(self, tenant: TenantHandle) -> str:
        await respond(tenant, 2)
        ticket_id: str = (await only_ticket(tenant))["id"]
        await patch(tenant, ticket_id, status="in_progress")
        await patch(tenant, ticket_id, **RESOLVE)
        return ticket_id

    async def test_follow_up_solved(self, tenant: TenantHandle, session: AsyncSession) -> None:
        ticket_id = await self.resolved_ticket(tenant)
        survey = await respond(tenant, 5, kind="csat", touchpoint="follow-up")
        answer = await tenant.post(
            f"/v1/tickets/{ticket_id}/follow-up",
            json={"solved": True, "comment": "Thanks", "response_id": survey["id"]},
        )
        assert answer.status_code == 200, answer.text
        follow_up = answer.json()["follow_up"]
        assert follow_up["solved"] is True
        assert follow_up["comment"] == "Thanks"
        assert answer.json()["status"] == "resolved"
        entries = await timeline(tenant, ticket_id)
        assert entries[-1]["type"] == "follow_up"
        assert entries[-1]["data"] == {"solved": True, "response_id": survey["id"]}

    async def test_follow_up_not_solved_reopens(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        ticket_id = await self.resolved_ticket(tenant)
        answer = await tenant.post(f"/v1/tickets/{ticket_id}/follow-up", json={"solved": False})
        assert answer.json()["status"] == "reopened"
        assert answer.json()["repeat_count"] == 0
        reopened = (await ticket_events(session, tenant.id))[-1]
        assert reopened.type == "ticket.reopened"
        assert reopened.data["entry"]["data"]["reason"] == "not_solved"

    async def test_follow_up_errors(self, tenant: TenantHandle) -> None:
        await respond(tenant, 2)
        ticket_id = (await only_ticket(tenant))["id"]
        assert_problem(
            await tenant.post(f"/v1/tickets/{ticket_id}/follow-up", json={"solved": True}),
            409,
            "ticket_not_resolved",
        )
        ticket_id = await self.resolved_ticket(tenant)
        problem = assert_problem(
            await tenant.post(
                f"/v1/tickets/{ticket_id}/follow-up",
                json={"solved": True, "response_id": "01900000-0000-7000-8000-000000000000"},
            ),
            422,
            "validation_error",
        )
        assert problem["errors"][0]["loc"] == ["body", "response_id"]

    async def test_repeat_complaint_reopens(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        ticket_id = await self.resolved_ticket(tenant)
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
        ticket_id = await self.resolved_ticket(tenant)
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


class TestManualTickets:
    async def test_create_and_one_active_per_customer_and_touchpoint(
        self, tenant: TenantHandle
    ) -> None:
        body = {
            "customer": "caller-1",
            "touchpoint": "store",
            "channel": "phone",
            "subject": "Rude staff at the Nanjing Road store",
            "priority": "urgent",
            "team": "retail",
        }
        created = await tenant.post("/v1/tickets", json=body)
        assert created.status_code == 201, created.text
        ticket = created.json()
        assert ticket["origin"] == "manual"
        assert ticket["customer"] == "caller-1"
        assert ticket["first_response"]["target_seconds"] == 3600
        again = assert_problem(
            await tenant.post("/v1/tickets", json=body), 409, "active_ticket_exists"
        )
        assert ticket["id"] in again["detail"]
        # a detractor answer for the same customer and touchpoint joins it
        await respond(tenant, 1, customer="caller-1", touchpoint="store")
        assert len(await tickets(tenant)) == 1

    async def test_without_a_customer_and_bad_input(self, tenant: TenantHandle) -> None:
        assert (await tenant.post("/v1/tickets", json={"subject": "x"})).status_code == 201
        assert (await tenant.post("/v1/tickets", json={"subject": "y"})).status_code == 201
        assert_problem(
            await tenant.post("/v1/tickets", json={"sla_policy": "gold"}), 422, "validation_error"
        )
        assert_problem(
            await tenant.post("/v1/tickets", json={"priority": "asap"}), 422, "validation_error"
        )
        assert_problem(
            await tenant.post("/v1/tickets", json={"status": "closed"}), 422, "validation_error"
        )
        ticket_id = (await tickets(tenant))[0]["id"]
        assert_problem(
            await tenant.patch(f"/v1/tickets/{ticket_id}", json={"team": None}),
            422,
            "validation_error",
        )
        assert_problem(
            await tenant.patch(f"/v1/tickets/{ticket_id}", json={"root_cause": "Bad Cause!"}),
            422,
            "validation_error",
        )
        # ids are routed as `{ticket_id:uuid}`: anything else names no resource
        assert_problem(await tenant.get("/v1/tickets/not-a-uuid"), 404, "not_found")

    @pytest.mark.parametrize(
        ("body", "loc", "code"),
        [
            ({"subject": "a\u0000b"}, ["body", "subject"], "nul_character"),
            ({"description": "\u0000"}, ["body", "description"], "nul_character"),
            ({"team": "care\u0000"}, ["body", "team"], "nul_character"),
            ({"assignee": "\u0000"}, ["body", "assignee"], "nul_character"),
            ({"agent_ref": "a\u0000"}, ["body", "agent_ref"], "nul_character"),
            ({"location_ref": "a\u0000"}, ["body", "location_ref"], "nul_character"),
            ({"touchpoint": "t\u0000"}, ["body", "touchpoint"], "nul_character"),
            # stored in 100 characters: a longer one must be a 422, not a database error
            ({"touchpoint": "t" * 101}, ["body", "touchpoint"], "string_too_long"),
            ({"customer": "c\u0000"}, ["body", "customer"], "string_pattern_mismatch"),
            ({"sla_policy": "s\u0000"}, ["body", "sla_policy"], "string_pattern_mismatch"),
            ({"subject": "s" * 301}, ["body", "subject"], "string_too_long"),
        ],
    )
    async def test_hostile_ticket_fields_are_422(
        self, tenant: TenantHandle, body: dict[str, Any], loc: list[str], code: str
    ) -> None:
        problem = assert_problem(
            await tenant.post("/v1/tickets", json=body), 422, "validation_error"
        )
        assert [(e["loc"], e["code"]) for e in problem["errors"]] == [(loc, code)]

    async def test_hostile_updates_notes_and_follow_ups_are_422(self, tenant: TenantHandle) -> None:
        ticket_id = (await tenant.post("/v1/tickets", json={"subject": "x"})).json()["id"]
        url = f"/v1/tickets/{ticket_id}"
        nul = "nul_character"
        for path, body, loc, code in (
            ("", {"resolution_summary": "done\u0000"}, ["body", "resolution_summary"], nul),
            ("", {"root_cause": "late\u0000"}, ["body", "root_cause"], "string_pattern_mismatch"),
            ("", {"subject": "s" * 301}, ["body", "subject"], "string_too_long"),
            ("/notes", {"body": "a\u0000b"}, ["body", "body"], nul),
            ("/notes", {"body": "ok", "author": "\u0000"}, ["body", "author"], nul),
            ("/replies", {"body": "\u0000"}, ["body", "body"], nul),
            ("/follow-up", {"solved": True, "comment": "\u0000"}, ["body", "comment"], nul),
        ):
            send = tenant.patch if path == "" else tenant.post
            problem = assert_problem(await send(url + path, json=body), 422, "validation_error")
            # PATCH fields are `X | (not null)` unions: pydantic may add the branch to `loc`
            assert any(
                e["loc"][: len(loc)] == loc and e["code"] == code for e in problem["errors"]
            ), problem
        problem = assert_problem(
            await tenant.post(f"{url}/follow-up", json={"solved": "yes"}), 422, "validation_error"
        )
        assert problem["errors"][0]["code"] == "bool_type"

    @pytest.mark.parametrize(
        ("params", "code"),
        [
            ({"team": "a\u0000"}, "nul_character"),
            ({"assignee": "a\u0000"}, "nul_character"),
            ({"touchpoint": "t" * 101}, "string_too_long"),
            ({"customer": "c\u0000"}, "string_pattern_mismatch"),
            ({"due_before": "9999-12-31T23:59:59+00:00"}, "datetime_out_of_range"),
            ({"due_before": "0001-01-01T00:00:00+14:00"}, "datetime_out_of_range"),
            ({"due_before": "1700000000"}, "datetime_format"),
            ({"limit": "99999999999999999999"}, "less_than_equal"),
        ],
    )
    async def test_hostile_list_filters_are_422(
        self, tenant: TenantHandle, params: dict[str, str], code: str
    ) -> None:
        problem = assert_problem(
            await tenant.get("/v1/tickets", params=params), 422, "validation_error"
        )
        assert [e["code"] for e in problem["errors"]] == [code], problem

    async def test_list_filters_and_cursor(self, tenant: TenantHandle) -> None:
        for n in range(5):
            await respond(tenant, n, customer=f"c-{n}")
        high = await tickets(tenant, priority="high")
        assert len(high) == 4
        await patch(tenant, high[0]["id"], team="care")
        assert [t["id"] for t in await tickets(tenant, team="care")] == [high[0]["id"]]
        assert len(await tickets(tenant, status="open")) == 5
        assert await tickets(tenant, breached=True) == []
        soon = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
        assert len(await tickets(tenant, due_before=soon)) == 4  # the high ones (4 h)
        page = (await tenant.get("/v1/tickets", params={"limit": 2})).json()
        seen = [t["id"] for t in page["items"]]
        while page["next_cursor"]:
            page = (
                await tenant.get("/v1/tickets", params={"limit": 2, "cursor": page["next_cursor"]})
            ).json()
            seen += [t["id"] for t in page["items"]]
        assert len(seen) == len(set(seen)) == 5
        assert_problem(
            await tenant.get("/v1/tickets", params={"status": "done"}), 422, "validation_error"
        )


class TestPolicies:
    async def test_business_hours_policy(self, tenant: TenantHandle) -> None:
        hours = {
            "timezone": "Asia/Shanghai",
            "weekly": {d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue")},
            "country": "CN",
            "closures": ["2026-12-24"],
        }
        created = await tenant.post(
            "/v1/sla-policies",
            json={
                "key": "cn-care",
                "name": "China care desk",
                "targets": {
                    p: {"first_response_minutes": 120, "resolution_minutes": 960}
                    for p in ("urgent", "high", "normal", "low")
                },
                "business_hours": hours,
                "escalation": {"raise_priority": False, "team": "supervisors"},
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["business_hours"]["weekly"]["mon"][1] == ["13:00", "18:00"]
        ticket = (
            await tenant.post("/v1/tickets", json={"subject": "x", "sla_policy": "cn-care"})
        ).json()
        due = at(ticket["first_response"]["due_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
        assert due.weekday() in (0, 1)
        assert 9 * 60 < due.hour * 60 + due.minute <= 18 * 60
        assert due.hour != 12  # lunch is closed

        cleared = await tenant.patch("/v1/sla-policies/cn-care", json={"business_hours": None})
        assert cleared.status_code == 200
        assert cleared.json()["business_hours"] is None

    @pytest.mark.parametrize(
        ("hours", "code"),
        [
            ({"weekly": {"monday": [["09:00", "18:00"]]}}, "string_too_long"),
            ({"weekly": {"sun2": [["09:00", "18:00"]]}}, "string_too_long"),
            ({"weekly": {"sno": [["09:00", "18:00"]]}}, "string_pattern_mismatch"),
            ({"weekly": {"mon": [["18:00", "09:00"]]}}, "empty_span"),
            ({"weekly": {"mon": [["24:00", "24:00"]]}}, "empty_span"),
            ({"weekly": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}}, "overlapping_spans"),
            ({"weekly": {"mon": [["9am", "6pm"]]}}, "string_pattern_mismatch"),
            ({"weekly": {"mon": [["09:00", "18:00\u0000"]]}}, "string_too_long"),
            ({"weekly": {"mon": [[f"{h:02}:00", f"{h:02}:30"] for h in range(7)]}}, "too_long"),
            ({"weekly": {}}, "no_open_hours"),
            ({"weekly": {"mon": []}}, "no_open_hours"),
            ({"weekly": {"mon": [["09:00", "18:00"]]}, "country": "XX"}, "unknown_country"),
            ({"weekly": {"mon": [["09:00", "18:00"]]}, "country": "de"}, "string_pattern_mismatch"),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "country": "DE", "subdivision": "ZZ"},
                "unknown_subdivision",
            ),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "subdivision": "BY"},
                "subdivision_needs_country",
            ),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "timezone": "Mars/Base"},
                "unknown_timezone",
            ),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "closures": ["9999-12-31"]},
                "datetime_out_of_range",
            ),
            (
                {"weekly": {"mon": [["09:00", "18:00"]]}, "closures": ["0001-01-01"]},
                "datetime_out_of_range",
            ),
        ],
    )
    async def test_bad_business_hours_are_422(
        self, tenant: TenantHandle, hours: dict[str, Any], code: str
    ) -> None:
        targets = {
            p: {"first_response_minutes": 60, "resolution_minutes": 60}
            for p in ("urgent", "high", "normal", "low")
        }
        response = await tenant.post(
            "/v1/sla-policies",
            json={"key": "k", "name": "k", "targets": targets, "business_hours": hours},
        )
        problem = assert_problem(response, 422, "validation_error")
        assert [e["code"] for e in problem["errors"]][:1] == [code], problem

    async def test_subdivisions_with_long_names_are_accepted(self, tenant: TenantHandle) -> None:
        targets = {
            p: {"first_response_minutes": 60, "resolution_minutes": 600}
            for p in ("urgent", "high", "normal", "low")
        }
        hours = {
            "weekly": {"mon": [["09:00", "18:00"]]},
            "country": "BR",
            "subdivision": "São Paulo Capital",
        }
        response = await tenant.post(
            "/v1/sla-policies",
            json={"key": "sp", "name": "SP", "targets": targets, "business_hours": hours},
        )
        assert response.status_code == 201, response.text
        assert response.json()["business_hours"]["subdivision"] == "São Paulo Capital"

    @pytest.mark.parametrize(
        ("body", "loc", "code"),
        [
            ({"key": "a\u0000"}, ["body", "key"], "string_pattern_mismatch"),
            ({"name": "a\u0000b"}, ["body", "name"], "nul_character"),
            ({"warn_at_percent": 10**30}, ["body", "warn_at_percent"], "less_than_equal"),
            ({"warn_at_percent": "80"}, ["body", "warn_at_percent"], "int_type"),
            ({"warn_at_percent": True}, ["body", "warn_at_percent"], "int_type"),
            ({"is_default": "yes"}, ["body", "is_default"], "bool_type"),
            (
                {"escalation": {"raise_priority": 1}},
                ["body", "escalation", "raise_priority"],
                "bool_type",
            ),
            ({"escalation": {"team": "\u0000"}}, ["body", "escalation", "team"], "nul_character"),
        ],
    )
    async def test_hostile_policy_fields_are_422(
        self, tenant: TenantHandle, body: dict[str, Any], loc: list[str], code: str
    ) -> None:
        targets = {
            p: {"first_response_minutes": 60, "resolution_minutes": 60}
            for p in ("urgent", "high", "normal", "low")
        }
        sent = {"key": "k", "name": "k", "targets": targets, **body}
        problem = assert_problem(
            await tenant.post("/v1/sla-policies", json=sent), 422, "validation_error"
        )
        assert {"loc": loc, "code": code} in [
            {"loc": e["loc"], "code": e["code"]} for e in problem["errors"]
        ], problem

    async def test_huge_targets_are_422(self, tenant: TenantHandle) -> None:
        targets = {
            p: {"first_response_minutes": 10**40, "resolution_minutes": 2.5}
            for p in ("urgent", "high", "normal", "low")
        }
        problem = assert_problem(
            await tenant.post(
                "/v1/sla-policies", json={"key": "k", "name": "k", "targets": targets}
            ),
            422,
            "validation_error",
        )
        codes = {(tuple(e["loc"][-1:]), e["code"]) for e in problem["errors"]}
        assert (("first_response_minutes",), "less_than_equal") in codes
        assert (("resolution_minutes",), "int_from_float") in codes or (
            ("resolution_minutes",),
            "int_type",
        ) in codes

    async def test_a_partial_escalation_is_replaced_as_a_whole(self, tenant: TenantHandle) -> None:
        url = "/v1/sla-policies/standard"
        changed = await tenant.patch(url, json={"escalation": {"raise_priority": False}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["escalation"] == {"raise_priority": False, "team": None}
        changed = await tenant.patch(url, json={"escalation": {"team": "leads"}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["escalation"] == {"raise_priority": True, "team": "leads"}
        changed = await tenant.patch(url, json={"escalation": {}})
        assert changed.json()["escalation"] == {"raise_priority": True, "team": None}
        hours = await tenant.patch(
            url, json={"business_hours": {"weekly": {"mon": [["09:00", "18:00"]]}}}
        )
        assert hours.status_code == 200, hours.text
        assert hours.json()["business_hours"]["closures"] == []

    async def test_policy_keys_in_the_path_are_checked(self, tenant: TenantHandle) -> None:
        for key in ("Standard", "x" * 64, "a%00b", "-a"):
            assert_problem(await tenant.get(f"/v1/sla-policies/{key}"), 422, "validation_error")
        assert_problem(await tenant.get("/v1/sla-policies/nope"), 404, "not_found")

    async def test_hours_that_cannot_meet_the_targets_are_422(self, tenant: TenantHandle) -> None:
        """Otherwise every new ticket on the policy, and the response opening it, would fail."""
        targets = {
            p: {"first_response_minutes": 60, "resolution_minutes": 525_600}
            for p in ("urgent", "high", "normal", "low")
        }
        one_minute_a_week = {"weekly": {"mon": [["09:00", "09:01"]]}}
        problem = assert_problem(
            await tenant.post(
                "/v1/sla-policies",
                json={
                    "key": "tiny",
                    "name": "Tiny",
                    "targets": targets,
                    "business_hours": one_minute_a_week,
                },
            ),
            422,
            "validation_error",
        )
        assert problem["errors"][0]["code"] == "targets_unreachable"
        patched = await tenant.patch(
            "/v1/sla-policies/standard", json={"business_hours": one_minute_a_week}
        )
        assert_problem(patched, 422, "validation_error")
        await respond(tenant, 2)  # the standard policy is unchanged and still works
        assert len(await tickets(tenant)) == 1

    async def test_default_and_deletion(self, tenant: TenantHandle) -> None:
        targets = {
            p: {"first_response_minutes": 30, "resolution_minutes": 60}
            for p in ("urgent", "high", "normal", "low")
        }
        body = {"key": "fast", "name": "Fast", "targets": targets}
        assert (await tenant.post("/v1/sla-policies", json=body)).status_code == 201
        assert_problem(await tenant.post("/v1/sla-policies", json=body), 409, "policy_key_taken")
        assert_problem(await tenant.delete("/v1/sla-policies/standard"), 409, "policy_in_use")
        moved = await tenant.patch("/v1/sla-policies/fast", json={"is_default": True})
        assert moved.json()["is_default"] is True
        assert (await tenant.get("/v1/sla-policies/standard")).json()["is_default"] is False
        await respond(tenant, 5)
        assert (await only_ticket(tenant))["first_response"]["target_seconds"] == 1800
        assert_problem(await tenant.delete("/v1/sla-policies/fast"), 409, "policy_in_use")
        assert (await tenant.delete("/v1/sla-policies/standard")).status_code == 204
        assert_problem(await tenant.get("/v1/sla-policies/standard"), 404, "not_found")
        problem = assert_problem(
            await tenant.patch("/v1/sla-policies/fast", json={"is_default": False}),
            422,
            "validation_error",
        )
        assert [(e["loc"], e["code"]) for e in problem["errors"]] == [
            (["body", "is_default"], "default_only_true")
        ]


class TestEscalation:
    async def test_warning_breach_and_escalation_once(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await respond(tenant, 2)  # high: 4 h / 24 h, warnings at 80 %
        ticket = await only_ticket(tenant)
        created = at(ticket["created_at"])

        assert await ticket_service.check_sla(session, created + timedelta(hours=3)) == 0
        await ticket_service.check_sla(session, created + timedelta(hours=3, minutes=13))
        warned = (await tenant.get(f"/v1/tickets/{ticket['id']}")).json()
        assert warned["first_response"]["warned_at"] is not None
        assert warned["first_response"]["breached_at"] is None

        await ticket_service.check_sla(session, created + timedelta(hours=4, seconds=1))
        await ticket_service.check_sla(session, created + timedelta(hours=4, minutes=5))
        breached = (await tenant.get(f"/v1/tickets/{ticket['id']}")).json()
        assert breached["breached"] is True
        assert breached["priority"] == "urgent"
        assert breached["escalation_level"] == 1
        # escalation keeps the clocks' targets
        assert breached["resolution"]["target_seconds"] == 24 * 3600
        assert await tickets(tenant, breached=True) != []

        types = [e.type for e in await ticket_events(session, tenant.id)]
        assert types == [
            "ticket.created",
            "ticket.sla_warning",
            "ticket.sla_breached",
            "ticket.escalated",
        ]
        await ticket_service.check_sla(session, created + timedelta(hours=30))
        types = [e.type for e in await ticket_events(session, tenant.id)]
        assert types.count("ticket.sla_warning") == 2  # one per clock
        assert types.count("ticket.sla_breached") == 2
        assert types.count("ticket.escalated") == 2
        events = await ticket_events(session, tenant.id)
        clocks = [
            e.data["entry"]["data"]["clock"] for e in events if e.type.startswith("ticket.sla")
        ]
        assert clocks == ["first_response", "first_response", "resolution", "resolution"]
        assert await ticket_service.check_sla(session, created + timedelta(days=9)) == 0

    async def test_escalation_team(self, tenant: TenantHandle, session: AsyncSession) -> None:
        await tenant.patch(
            "/v1/sla-policies/standard",
            json={"escalation": {"raise_priority": False, "team": "supervisors"}},
        )
        await respond(tenant, 2)
        ticket = await only_ticket(tenant)
        await ticket_service.check_sla(session, at(ticket["created_at"]) + timedelta(hours=5))
        escalated = (await tenant.get(f"/v1/tickets/{ticket['id']}")).json()
        assert escalated["team"] == "supervisors"
        assert escalated["priority"] == "high"

    async def test_a_paused_clock_does_not_breach(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await respond(tenant, 2)
        ticket = await only_ticket(tenant)
        await patch(tenant, ticket["id"], status="in_progress")
        await patch(tenant, ticket["id"], status="waiting_on_customer")
        assert await ticket_service.check_sla(session, datetime.now(UTC) + timedelta(days=5)) == 0

    async def test_a_late_reply_is_a_breach(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await respond(tenant, 2)
        ticket = await only_ticket(tenant)
        # The ticket opened five hours ago and the SLA job has not run since.
        await session.execute(
            text(
                "UPDATE tickets SET first_response_running_since = now() - interval '5 hours' "
                "WHERE id = :id"
            ),
            {"id": ticket["id"]},
        )
        await tenant.post(f"/v1/tickets/{ticket['id']}/replies", json={"body": "Sorry"})
        late = (await tenant.get(f"/v1/tickets/{ticket['id']}")).json()
        assert late["first_response"]["breached_at"] is not None
        assert late["first_response"]["used_seconds"] >= 5 * 3600
        types = [e.type for e in await ticket_events(session, tenant.id)]
        assert types == ["ticket.created", "ticket.sla_breached", "ticket.replied"]


async def test_two_workers_warn_and_breach_exactly_once(live: Live) -> None:
    for n in range(30):
        response = await live.client.post(
            "/v1/responses",
            json={"kind": "nps", "score": n % 4, "channel": "crm", "customer": f"c-{n}"},
            headers=live.headers,
        )
        assert response.status_code == 201
    later = datetime.now(UTC) + timedelta(days=2)

    async def worker() -> int:
        seen = 0
        async with live.sessionmaker() as session:
            while (n := await ticket_service.check_sla(session, later, limit=4)) > 0:
                seen += n
                await session.commit()
        return seen

    looked = await asyncio.gather(worker(), worker())
    assert sum(looked) == 30  # every ticket handled once, split between the two
    async with live.sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT type, count(*) FROM events WHERE tenant_id = :t "
                    "AND type LIKE 'ticket.sla%' GROUP BY type"
                ),
                {"t": live.tenant_id},
            )
        ).all()
    assert dict(rows) == {"ticket.sla_warning": 60, "ticket.sla_breached": 60}


class TestIsolation:
    async def test_another_tenants_tickets_rules_and_policies_are_404(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await respond(tenant, 2)
        ticket_id = (await only_ticket(tenant))["id"]
        rule_id = (await tenant.get("/v1/ticket-rules")).json()[0]["id"]
        await tenant.post(
            "/v1/sla-policies",
            json={
                "key": "mine",
                "name": "Mine",
                "targets": {
                    p: {"first_response_minutes": 1, "resolution_minutes": 2}
                    for p in ("urgent", "high", "normal", "low")
                },
            },
        )
        for method, path, body in [
            ("GET", f"/v1/tickets/{ticket_id}", None),
            ("PATCH", f"/v1/tickets/{ticket_id}", {"team": "x"}),
            ("POST", f"/v1/tickets/{ticket_id}/notes", {"body": "x"}),
            ("POST", f"/v1/tickets/{ticket_id}/replies", {"body": "x"}),
            ("POST", f"/v1/tickets/{ticket_id}/follow-up", {"solved": True}),
            ("GET", f"/v1/tickets/{ticket_id}/timeline", None),
            ("GET", f"/v1/ticket-rules/{rule_id}", None),
            ("PATCH", f"/v1/ticket-rules/{rule_id}", {"enabled": False}),
            ("DELETE", f"/v1/ticket-rules/{rule_id}", None),
            ("GET", "/v1/sla-policies/mine", None),
            ("PATCH", "/v1/sla-policies/mine", {"name": "x"}),
            ("DELETE", "/v1/sla-policies/mine", None),
        ]:
            response = await other_tenant.request(method, path, json=body)
            assert_problem(response, 404, "not_found")
        assert await tickets(other_tenant) == []
        assert len((await tenant.get("/v1/ticket-rules")).json()) == 4
        theirs_rules = (await other_tenant.get("/v1/ticket-rules")).json()
        assert rule_id not in {r["id"] for r in theirs_rules}
        their_policies = (await other_tenant.get("/v1/sla-policies")).json()
        assert [p["key"] for p in their_policies] == ["standard"]
        stats = (await other_tenant.get("/v1/tickets/stats")).json()
        assert stats["groups"] == []
        # their rules do not open tickets here, and a manual ticket cannot use my policy
        assert_problem(
            await other_tenant.post("/v1/tickets", json={"sla_policy": "mine"}),
            422,
            "validation_error",
        )
        # the same customer ref in another tenant is another customer
        await respond(other_tenant, 2)
        theirs = await only_ticket(other_tenant)
        assert theirs["id"] != ticket_id


async def test_erasure_redacts_the_customers_tickets(
    tenant: TenantHandle, session: AsyncSession
) -> None:
    await respond(tenant, 1, comment="I am Alice, call 138")
    ticket_id = (await only_ticket(tenant))["id"]
    await tenant.post(f"/v1/tickets/{ticket_id}/notes", json={"body": "Alice is upset"})
    assert (await tenant.delete("/v1/customers/c-1")).status_code == 204
    after = (await tenant.get(f"/v1/tickets/{ticket_id}")).json()
    assert after["customer"] is None
    assert after["description"] is None
    assert after["priority"] == "high"  # the numbers stay
    assert all(e["body"] is None for e in await timeline(tenant, ticket_id))
    stored = await session.get(Ticket, (tenant.id, UUID(ticket_id)))
    assert stored is not None
    assert stored.customer_id is None
