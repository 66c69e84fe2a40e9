"""Webhook delivery with a worker and a real receiver: signatures, retries, Retry-After,
disabling, rotation, manual retries, SSRF refusals at connect time, one chain per
delivery, and dispatch order."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from feedback_api.config import Settings
from feedback_api.kit.time import utcnow
from feedback_api.models import Event, Job, WebhookEndpoint
from feedback_api.webhooks import delivery as delivery_module
from feedback_api.webhooks import ssrf
from tests.fixtures.live import Live
from tests.fixtures.receiver import Answer, Receiver
from tests.fixtures.webhooks import (
    NPS,
    deliver_all,
    deliveries,
    events_settled,
    make_due,
    parse_time,
    register,
)


class TestDelivery:
    async def test_a_signed_delivery_arrives(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url, event_types=["response.*"])
        created = await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        await deliver_all(sessions, app_settings)
        (request,) = receiver.received
        payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert payload["type"] == "response.created"
        assert payload["data"] == created.json()
        (delivery,) = await deliveries(live, endpoint["id"])
        assert delivery["id"] == request.headers["webhook-id"]
        assert delivery["status"] == "succeeded"
        assert delivery["recent_attempts"][0]["status_code"] == 200

    async def test_filters_and_rolled_back_events_are_not_delivered(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        await register(live, receiver.url, event_types=["customer.erased"])
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        async with sessions() as session:  # an event whose transaction rolls back
            from feedback_api.events.catalogue import EventType
            from feedback_api.events.service import event as event_service

            await event_service.record(
                session, live.tenant_id, EventType.CUSTOMER_ERASED, {"external_ref": "ghost"}
            )
            await session.rollback()
        await deliver_all(sessions, app_settings)
        assert receiver.received == []

    async def test_retries_after_errors_and_timeouts(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        app_settings = app_settings.model_copy(update={"webhooks_timeout_seconds": 0.5})
        endpoint = await register(live, receiver.url)
        receiver.answers = [Answer(status=500), Answer(delay=2)]
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        await deliver_all(sessions, app_settings)
        (delivery,) = await deliveries(live, endpoint["id"])
        assert delivery["status"] == "pending"
        assert delivery["last_status_code"] == 500
        next_at = delivery["next_attempt_at"]
        assert 3 < (parse_time(next_at) - utcnow()).total_seconds() < 7  # 5 s ± jitter
        await make_due(sessions)
        await deliver_all(sessions, app_settings)
        (delivery,) = await deliveries(live, endpoint["id"])
        assert delivery["recent_attempts"][0]["error"] == "no complete answer within 0.5 s"
        await make_due(sessions)
        await deliver_all(sessions, app_settings)
        (delivery,) = await deliveries(live, endpoint["id"])
        assert delivery["status"] == "succeeded"
        assert delivery["attempt_count"] == 3
        ids = {r.headers["webhook-id"] for r in receiver.received}
        assert ids == {delivery["id"]}  # stable across retries

    async def test_honours_retry_after(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url)
        receiver.answers = [Answer(status=429, headers={"Retry-After": "120"})]
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        await deliver_all(sessions, app_settings)
        (delivery,) = await deliveries(live, endpoint["id"])
        wait = (parse_time(delivery["next_attempt_at"]) - utcnow()).total_seconds()
        assert 110 < wait <= 120

    async def test_410_disables_the_endpoint_and_says_so(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url, event_types=["response.created"])
        receiver.answers = [Answer(status=410)]
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        await deliver_all(sessions, app_settings)
        state = await live.client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}", headers=live.headers
        )
        assert state.json()["enabled"] is False
        assert "410" in state.json()["disabled_reason"]
        async with sessions() as session:
            types = (
                await session.scalars(select(Event.type).where(Event.tenant_id == live.tenant_id))
            ).all()
        assert "webhook_endpoint.disabled" in types
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        await deliver_all(sessions, app_settings)
        assert len(receiver.received) == 1

    async def test_failing_for_five_days_disables(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url)
        async with sessions() as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.tenant_id == live.tenant_id)
                .values(failing_since=utcnow() - delivery_module.DISABLE_AFTER)
            )
            await session.commit()
        receiver.answers = [Answer(status=500)]
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        await deliver_all(sessions, app_settings)
        state = await live.client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}", headers=live.headers
        )
        assert state.json()["enabled"] is False
        assert "5 days" in state.json()["disabled_reason"]

    async def test_both_secrets_sign_during_rotation(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url)
        rotated = await live.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=live.headers
        )
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        await deliver_all(sessions, app_settings)
        (request,) = receiver.received
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        for secret in (endpoint["secret"], rotated.json()["secret"]):
            Webhook(secret).verify(request.body, request.headers)

    async def test_test_and_manual_retry(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url)
        receiver.answers = [Answer(status=500)]
        sent = await live.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=live.headers
        )
        assert sent.status_code == 202
        await deliver_all(sessions, app_settings)
        retried = await live.client.post(
            f"/v1/webhook-deliveries/{sent.json()['id']}/retry", headers=live.headers
        )
        assert retried.status_code == 202
        await deliver_all(sessions, app_settings)
        assert [json.loads(r.body)["type"] for r in receiver.received] == ["webhook.test"] * 2
        (delivery,) = await deliveries(live, endpoint["id"])
        assert delivery["status"] == "succeeded"

    async def test_two_workers_deliver_each_event_once(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        await register(live, receiver.url)
        await asyncio.gather(
            *[live.client.post("/v1/responses", json=NPS, headers=live.headers) for _ in range(12)]
        )
        await deliver_all(sessions, app_settings, workers=2)
        ids = [r.headers["webhook-id"] for r in receiver.received]
        assert len(ids) == len(set(ids)) == 12


class TestSsrf:
    @pytest.mark.parametrize(
        ("host", "resolved"),
        [
            ("127.0.0.1", None),
            ("169.254.169.254", None),
            ("[::1]", None),
            ("hooks.internal.test", "10.0.0.7"),
        ],
    )
    async def test_refused_at_connect_time(
        self,
        live: Live,
        receiver: Receiver,
        sessions: Any,
        app_settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        host: str,
        resolved: str | None,
    ) -> None:
        if resolved is not None:
            real = ssrf.resolve

            async def fake(name: str, port: int) -> list[str]:
                return [resolved] if name == host else await real(name, port)

            monkeypatch.setattr(ssrf, "resolve", fake)
        endpoint = await register(live, f"http://{host}:{receiver.port}/hooks")
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        closed = app_settings.model_copy(update={"webhooks_allow_private": False})
        await deliver_all(sessions, closed)
        (delivery,) = await deliveries(live, endpoint["id"])
        assert "forbidden address" in delivery["recent_attempts"][0]["error"]
        assert receiver.received == []

    async def test_redirects_are_not_followed(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url)
        receiver.answers = [Answer(status=302, headers={"Location": "http://169.254.169.254/"})]
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        await deliver_all(sessions, app_settings)
        (delivery,) = await deliveries(live, endpoint["id"])
        assert delivery["last_status_code"] == 302
        assert delivery["status"] == "pending"  # a redirect is a failure, retried later
        assert len(receiver.received) == 1


class TestOneChain:
    async def test_a_manual_retry_replaces_the_scheduled_one(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url)
        receiver.answers = [Answer(status=500), Answer(status=500)]
        sent = await live.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=live.headers
        )
        await deliver_all(sessions, app_settings)
        (delivery,) = await deliveries(live, endpoint["id"])
        assert delivery["status"] == "pending"  # the next attempt is scheduled in ~5 s
        retried = await live.client.post(
            f"/v1/webhook-deliveries/{sent.json()['id']}/retry", headers=live.headers
        )
        assert retried.json()["next_attempt_at"] != delivery["next_attempt_at"]
        await make_due(sessions)  # the scheduled attempt's time comes as well
        await deliver_all(sessions, app_settings)
        assert len(receiver.received) == 2  # the manual one; the scheduled one did nothing
        (delivery,) = await deliveries(live, endpoint["id"])
        assert (delivery["status"], delivery["attempt_count"]) == ("pending", 2)
        wait = (parse_time(delivery["next_attempt_at"]) - utcnow()).total_seconds()
        assert 250 < wait < 350  # the retry schedule goes on from the manual attempt
        await make_due(sessions)
        await deliver_all(sessions, app_settings)
        assert len(receiver.received) == 3
        (delivery,) = await deliveries(live, endpoint["id"])
        assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 3)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Job)) == 0

    async def test_a_job_queued_before_jobs_carried_their_due_time_still_delivers(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        endpoint = await register(live, receiver.url)
        sent = await live.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=live.headers
        )
        async with sessions() as session:  # as an older version queued it
            await session.execute(update(Job).values(payload={"delivery_ids": [sent.json()["id"]]}))
            await session.commit()
        await deliver_all(sessions, app_settings)
        assert [r.headers["webhook-id"] for r in receiver.received] == [sent.json()["id"]]
        (delivery,) = await deliveries(live, endpoint["id"])
        assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 1)


class TestDispatch:
    async def test_endpoints_furthest_behind_are_served_first(
        self, live: Live, sessions: Any
    ) -> None:
        endpoints = [await register(live, f"https://example.com/{i}") for i in range(25)]
        calm = {"kind": "nps", "score": 9, "channel": "crm"}
        for _ in range(2):
            await live.client.post("/v1/responses", json=calm, headers=live.headers)
        await events_settled(sessions)
        behind = {UUID(e["id"]) for e in endpoints[20:]}
        async with sessions() as session:
            first = (
                await session.scalars(
                    select(Event)
                    .where(Event.tenant_id == live.tenant_id, Event.type == "response.created")
                    .order_by(Event.xid, Event.id)
                    .limit(1)
                )
            ).one()
            # 20 endpoints have dispatched the first response already; 5 have not
            for ids, event_id in (
                ({UUID(e["id"]) for e in endpoints[:20]}, first.id),
                (behind, UUID(int=0)),
            ):
                await session.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.tenant_id == live.tenant_id, WebhookEndpoint.id.in_(ids))
                    .values(cursor_xid=first.xid, cursor_event_id=event_id)
                )
            await session.commit()
        async with sessions() as session:  # one tick's worth: 20 endpoints
            await delivery_module.delivery.dispatch(session)
            await session.commit()
        for endpoint in endpoints[20:]:
            assert len(await deliveries(live, endpoint["id"])) == 2
