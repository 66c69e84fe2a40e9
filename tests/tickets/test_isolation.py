"""Tenancy: another tenant's tickets, rules and policies answer 404 and stay apart; and
erasure takes the customer out of their tickets."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import Ticket
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.tickets import (
    only_ticket,
    respond,
    tickets,
    timeline,
)


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
