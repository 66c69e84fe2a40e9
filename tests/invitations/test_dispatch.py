"""The worker's side: due, reminder and expiry steps, blocks at sending time, and
exactly once with several workers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from feedback_api.config import Settings
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.time import utcnow
from feedback_api.worker import Worker
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.invitations import (
    SURVEY,
    events,
    invite,
    parse,
    seconds_until,
    setup,
)
from tests.fixtures.live import Live

# --- the worker ---------------------------------------------------------------------------


async def test_due_reminder_expiry(tenant: TenantHandle, settings: Settings) -> None:
    await setup(tenant, delay_minutes=0, reminder_after_hours=48, expires_after_hours=120)
    await tenant.put(
        "/v1/customers/c-1", json={"email": "ann@example.com", "locale": "zh-CN", "name": "Ann"}
    )
    invitation = await invite(tenant)
    due = parse(invitation["due_at"])
    session = tenant.session

    await invitation_service.process_due(session, due - timedelta(seconds=1), settings=settings)
    assert await events(tenant, "invitation.due") == []

    await invitation_service.process_due(session, due, settings=settings)
    (sent,) = await events(tenant, "invitation.due")
    assert sent["status"] == "sent"
    message = sent["message"]
    assert message["question"] == "您向朋友推荐我们的可能性有多大？"
    assert message["follow_up"] == "主要原因是什么？"  # zh-CN falls back to zh
    assert [link["score"] for link in message["links"]] == list(range(11))
    assert message["links"][9]["url"] == message["landing_url"] + "?score=9"
    assert message["unsubscribe_url"] == message["landing_url"] + "/unsubscribe"
    assert sent["recipient"]["email"] == "ann@example.com"
    # Processing again at the same moment does nothing more.
    await invitation_service.process_due(session, due + timedelta(minutes=1), settings=settings)
    assert len(await events(tenant, "invitation.due")) == 1

    await invitation_service.process_due(session, due + timedelta(hours=48), settings=settings)
    (reminder,) = await events(tenant, "invitation.reminder_due")
    assert reminder["message"]["reminder"] == 1
    # max_reminders (1) reached: the next step is the expiry.
    await invitation_service.process_due(session, due + timedelta(hours=119), settings=settings)
    assert len(await events(tenant, "invitation.reminder_due")) == 1
    await invitation_service.process_due(session, due + timedelta(hours=120), settings=settings)
    (expired,) = await events(tenant, "invitation.expired")
    assert expired["status"] == "expired"
    assert expired["links"] is None


async def test_a_block_after_scheduling_suppresses_at_due_time(
    tenant: TenantHandle, settings: Settings
) -> None:
    await setup(tenant, delay_minutes=0)
    await tenant.patch("/v1/contact-rules", json={"frequency_days": 0})
    first = await invite(tenant)
    later = await invite(tenant, trigger_ref="t2", delay_seconds=3600)
    await invitation_service.process_due(tenant.session, parse(first["due_at"]), settings=settings)
    # The first message bounces: the address is dead, so the second is not sent.
    await tenant.post(f"/v1/invitations/{first['id']}/delivery", json={"status": "bounced"})
    await invitation_service.process_due(tenant.session, parse(later["due_at"]), settings=settings)
    got = (await tenant.get(f"/v1/invitations/{later['id']}")).json()
    assert (got["status"], got["suppression_reason"]) == ("suppressed", "bounced")
    (suppressed,) = await events(tenant, "invitation.suppressed")
    assert suppressed["id"] == later["id"]


async def test_bounce_blocks_the_channel_and_stops_reminders(
    tenant: TenantHandle, settings: Settings
) -> None:
    await setup(tenant, delay_minutes=0, reminder_after_hours=24)
    invitation = await invite(tenant)
    url = f"/v1/invitations/{invitation['id']}/delivery"
    assert_problem(await tenant.post(url, json={"status": "delivered"}), 409, "invitation_not_sent")
    due = parse(invitation["due_at"])
    await invitation_service.process_due(tenant.session, due, settings=settings)
    response = await tenant.post(url, json={"status": "bounced"})
    assert response.status_code == 200
    assert response.json()["delivery"] == "bounced"
    await invitation_service.process_due(
        tenant.session, due + timedelta(hours=25), settings=settings
    )
    assert await events(tenant, "invitation.reminder_due") == []
    later = await invite(tenant, trigger_ref="t2", delay_seconds=31 * 24 * 3600)
    assert later["suppression_reason"] == "bounced"
    assert_problem(await tenant.post(url, json={"status": "lost"}), 422, "validation_error")


async def test_reminders_respect_quiet_hours(tenant: TenantHandle, settings: Settings) -> None:
    await setup(
        tenant, quiet={"start": "21:00", "end": "09:00"}, delay_minutes=0, reminder_after_hours=13
    )
    await tenant.put("/v1/customers/c-ny", json={"timezone": "America/New_York"})
    new_york = ZoneInfo("America/New_York")
    tomorrow = (utcnow().astimezone(new_york) + timedelta(days=1)).date()
    ten_pm = datetime.combine(tomorrow, datetime.min.time(), tzinfo=new_york) + timedelta(hours=22)
    invitation = await invite(tenant, "c-ny", delay_seconds=seconds_until(ten_pm))
    due = parse(invitation["due_at"])
    assert due.astimezone(new_york).replace(tzinfo=None) == datetime.combine(
        tomorrow + timedelta(days=1), datetime.min.time()
    ) + timedelta(hours=9)
    await invitation_service.process_due(tenant.session, due, settings=settings)
    # 13 hours after 09:00 is 22:00, quiet: the reminder waits for 09:00 the next morning.
    await invitation_service.process_due(
        tenant.session, due + timedelta(hours=13), settings=settings
    )
    assert await events(tenant, "invitation.reminder_due") == []
    await invitation_service.process_due(
        tenant.session, due + timedelta(hours=24), settings=settings
    )
    (reminder,) = await events(tenant, "invitation.reminder_due")
    assert reminder["reminders_sent"] == 1


async def test_the_worker_sends_due_invitations(live: Live, settings: Settings) -> None:
    headers = live.headers
    await live.client.post("/v1/surveys", json={**SURVEY, "delay_minutes": 0}, headers=headers)
    await live.client.patch("/v1/contact-rules", json={"quiet_hours": None}, headers=headers)
    created = await live.client.post(
        "/v1/invitations", json={"customer": "c-1", "survey": "delivery-nps"}, headers=headers
    )
    assert created.status_code == 201
    # One tick of a real worker with its real tickers, no call into the service.
    await Worker(live.sessionmaker, settings, periodic=()).tick(force=True)
    got = await live.client.get(f"/v1/invitations/{created.json()['id']}", headers=headers)
    assert got.json()["status"] == "sent"
    assert got.json()["sent_at"] is not None


# --- exactly once with several workers ----------------------------------------------------


async def test_two_workers_send_each_invitation_exactly_once(
    live: Live, settings: Settings
) -> None:
    async def call(method: str, url: str, body: Any = None) -> dict[str, Any]:
        response = await live.client.request(method, url, json=body, headers=live.headers)
        assert response.status_code < 300, response.text
        result: dict[str, Any] = response.json()
        return result

    await call("POST", "/v1/surveys", {**SURVEY, "delay_minutes": 0})
    await call("PATCH", "/v1/contact-rules", {"quiet_hours": None})
    items = [{"customer": f"c-{n}", "survey": "delivery-nps"} for n in range(40)]
    batch = await call("POST", "/v1/invitations/batch", {"items": items})
    assert batch["scheduled"] == 40
    now = utcnow() + timedelta(minutes=1)

    async def worker() -> None:
        async with live.sessionmaker() as session:
            while (
                await invitation_service.process_due(session, now, limit=3, settings=settings) > 0
            ):
                await session.commit()

    await asyncio.gather(worker(), worker(), worker())
    async with live.sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT data->>'id', count(*) FROM events WHERE tenant_id = :t "
                    "AND type = 'invitation.due' GROUP BY 1"
                ),
                {"t": live.tenant_id},
            )
        ).all()
    assert len(rows) == 40
    assert {count for _, count in rows} == {1}
