"""The SLA job: warnings, breaches and escalations, exactly once however many workers run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.tickets.service import ticket as ticket_service
from tests.fixtures.auth import TenantHandle
from tests.fixtures.live import Live
from tests.fixtures.tickets import (
    at,
    only_ticket,
    patch,
    respond,
    ticket_events,
    tickets,
)


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
