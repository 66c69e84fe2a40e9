"""People working tickets through the API: the status flow and its events, replies and the
first-response clock, priorities, manual tickets, the customer's follow-up, hostile input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.fixtures.auth import TenantHandle, assert_problem
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


class TestFollowUp:
    """The customer's answer to “Is your problem solved?”."""

    async def test_follow_up_solved(self, tenant: TenantHandle, session: AsyncSession) -> None:
        ticket_id = await resolved_ticket(tenant)
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
        ticket_id = await resolved_ticket(tenant)
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
        ticket_id = await resolved_ticket(tenant)
        problem = assert_problem(
            await tenant.post(
                f"/v1/tickets/{ticket_id}/follow-up",
                json={"solved": True, "response_id": "01900000-0000-7000-8000-000000000000"},
            ),
            422,
            "validation_error",
        )
        assert problem["errors"][0]["loc"] == ["body", "response_id"]


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
