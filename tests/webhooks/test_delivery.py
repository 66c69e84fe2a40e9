from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from feedback_api.config import Settings
from feedback_api.kit.time import utcnow
from feedback_api.models import Event, Job, JobSchedule, WebhookEndpoint
from feedback_api.webhooks import delivery as delivery_module
from feedback_api.webhooks import sending, ssrf
from feedback_api.worker import Worker
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.live import Live, _live_tenant
from tests.fixtures.receiver import Answer, Receiver
from tests.fixtures.waiting import until

NPS: dict[str, Any] = {"kind": "nps", "score": 2, "channel": "crm", "comment": "late"}
# Sends in flight per endpoint and per tenant, per worker process (docs/webhooks.md).
ENDPOINT_SHARE, TENANT_SHARE = 4, 8


class TestEndpoints:
    async def test_create_shows_the_secret_once(self, tenant: TenantHandle) -> None:
        created = await tenant.post(
            "/v1/webhook-endpoints",
            json={
                "url": "https://example.com/hooks",
                "event_types": ["response.*"],
                "description": "CRM",
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_")
        listed = (await tenant.get("/v1/webhook-endpoints")).json()["items"]
        assert listed[0]["id"] == body["id"]
        assert "secret" not in listed[0]
        one = await tenant.get(f"/v1/webhook-endpoints/{body['id']}")
        assert "secret" not in one.json()

    @pytest.mark.parametrize(
        "url",
        [
            "http://example.com/hooks",
            "https://127.0.0.1/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hooks",
            "https://10.1.2.3/hooks",
            "https://localhost/hooks",
            "https://user:pass@example.com/hooks",
            "ftp://example.com/x",
            "not a url",
        ],
    )
    async def test_refuses_urls_it_must_not_call(self, tenant: TenantHandle, url: str) -> None:
        response = await tenant.post("/v1/webhook-endpoints", json={"url": url})
        assert_problem(response, 422, "validation_error")

    async def test_bad_filters_are_422(self, tenant: TenantHandle) -> None:
        response = await tenant.post(
            "/v1/webhook-endpoints",
            json={"url": "https://example.com/h", "event_types": ["everything"]},
        )
        assert_problem(response, 422, "validation_error")

    @pytest.mark.parametrize(
        ("body", "loc", "code"),
        [
            ({"description": "CRM\u0000"}, ["body", "description"], "nul_character"),
            ({"description": "d" * 501}, ["body", "description"], "string_too_long"),
            (
                {"event_types": ["ticket.\u0000"]},
                ["body", "event_types", 0],
                "string_pattern_mismatch",
            ),
            ({"enabled": "true"}, ["body", "enabled"], "bool_type"),
            ({"url": "https://example.com/" + "a" * 2100}, ["body", "url"], "url_too_long"),
            # pydantic accepts the emoji domain (IDNA 2003), the delivery client does not
            ({"url": "https://xn--ls8h.la/hooks"}, ["body", "url"], "url_invalid"),
            ({"url": "https://example.com:99999/"}, ["body", "url"], "url_invalid"),
            ({"url": "https://"}, ["body", "url"], "url_invalid"),
            # `format: uri` admits any scheme: the contract's pattern says http(s)
            ({"url": "urn:example:hooks"}, ["body", "url"], "url_scheme"),
            ({"url": " https://example.com/"}, ["body", "url"], "url_scheme"),
        ],
    )
    async def test_hostile_fields_are_422(
        self, tenant: TenantHandle, body: dict[str, Any], loc: list[str], code: str
    ) -> None:
        sent = {"url": "https://example.com/h", **body}
        problem = assert_problem(
            await tenant.post("/v1/webhook-endpoints", json=sent), 422, "validation_error"
        )
        assert [(e["loc"], e["code"]) for e in problem["errors"]] == [(loc, code)]

    async def test_an_uncallable_url_is_refused_on_update_too(self, tenant: TenantHandle) -> None:
        created = (
            await tenant.post("/v1/webhook-endpoints", json={"url": "https://example.com/a"})
        ).json()
        url = f"/v1/webhook-endpoints/{created['id']}"
        problem = assert_problem(
            await tenant.patch(url, json={"url": "https://xn--ls8h.la/"}), 422, "validation_error"
        )
        assert [e["code"] for e in problem["errors"]] == ["url_invalid"]
        assert (await tenant.get(url)).json()["url"] == "https://example.com/a"

    async def test_update_rotate_delete(self, tenant: TenantHandle) -> None:
        created = (
            await tenant.post("/v1/webhook-endpoints", json={"url": "https://example.com/a"})
        ).json()
        url = f"/v1/webhook-endpoints/{created['id']}"
        patched = await tenant.patch(url, json={"url": "https://example.com/b", "enabled": False})
        assert patched.json()["url"] == "https://example.com/b"
        assert patched.json()["enabled"] is False
        assert_problem(
            await tenant.patch(url, json={"url": "http://x.com"}), 422, "validation_error"
        )
        rotated = (await tenant.post(f"{url}/rotate-secret")).json()
        assert rotated["secret"].startswith("whsec_")
        assert rotated["secret"] != created["secret"]
        assert (await tenant.delete(url)).status_code == 204
        assert_problem(await tenant.get(url), 404, "not_found")

    async def test_another_tenants_endpoint_is_404_everywhere(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        theirs = (
            await other_tenant.post("/v1/webhook-endpoints", json={"url": "https://e.com/h"})
        ).json()
        url = f"/v1/webhook-endpoints/{theirs['id']}"
        test = await other_tenant.post(f"{url}/test")
        for response in (
            await tenant.get(url),
            await tenant.patch(url, json={"enabled": False}),
            await tenant.delete(url),
            await tenant.post(f"{url}/rotate-secret"),
            await tenant.post(f"{url}/test"),
            await tenant.get(f"{url}/deliveries"),
            await tenant.post(f"/v1/webhook-deliveries/{test.json()['id']}/retry"),
        ):
            assert_problem(response, 404, "not_found")
        assert (await tenant.get("/v1/webhook-endpoints")).json()["items"] == []
        assert (await other_tenant.get(url)).json()["enabled"] is True


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker() as session:
        await session.execute(delete(Job))
        await session.execute(delete(JobSchedule))
        await session.commit()
    return sessionmaker


def open_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_allow_http": True, "webhooks_allow_private": True})


async def register(live: Live, url: str, **extra: Any) -> dict[str, Any]:
    response = await live.client.post(
        "/v1/webhook-endpoints", json={"url": url, **extra}, headers=live.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


UNSETTLED = text("events.xid >= (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint")


async def events_settled(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Wait until every event is readable. An event settles once every writing transaction
    older than it has ended, on the whole server: other test workers' open transactions can
    hold events back for a moment."""
    while True:
        async with sessions() as session:
            unsettled = await session.scalar(
                select(func.count()).select_from(Event).where(UNSETTLED)
            )
        if not unsettled:
            return
        await asyncio.sleep(0.02)


async def deliver_all(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, workers: int = 1
) -> None:
    """Run workers until every due job is done (events settle, deliveries go out)."""
    pool = [Worker(sessions, settings, periodic=(), name=f"w{i}") for i in range(workers)]
    async with asyncio.timeout(30):
        await events_settled(sessions)
        for _ in range(2):  # deliveries can emit events (an endpoint disabled): twice
            await asyncio.gather(*[w.run_until_idle() for w in pool])
            await events_settled(sessions)


async def make_due(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await session.execute(update(Job).values(run_at=utcnow()))
        await session.commit()


async def deliveries(live: Live, endpoint_id: str) -> list[dict[str, Any]]:
    response = await live.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=live.headers
    )
    result: list[dict[str, Any]] = response.json()["items"]
    return result


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """What the live app runs with: http to 127.0.0.1 allowed (the receiver lives there)."""
    return open_settings(settings)


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
        assert 3 < (_parse(next_at) - utcnow()).total_seconds() < 7  # 5 s ± jitter
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
        wait = (_parse(delivery["next_attempt_at"]) - utcnow()).total_seconds()
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


@pytest.fixture
async def third_live(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Live]:
    async for handle in _live_tenant(engine, settings, "Third live"):
        yield handle


async def deliver_deferred(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, within: float = 30
) -> None:
    """Like `deliver_all`, and again as deferred deliveries fall due, until no delivery job
    is left (for tests whose receivers answer 2xx: a failure would schedule a retry)."""
    async with asyncio.timeout(within):
        while True:
            await deliver_all(sessions, settings)
            async with sessions() as session:
                left = await session.scalar(
                    select(func.count()).select_from(Job).where(Job.kind == delivery_module.DELIVER)
                )
            if not left:
                return
            await asyncio.sleep(0.2)


class TestFairShares:
    async def test_an_endpoint_and_a_tenant_get_their_share_and_the_rest_waits(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        receiver.default = Answer(delay=0.5)
        endpoints = [await register(live, f"{receiver.url}/{i}") for i in range(4)]
        tests = []

        async def send_tests(endpoint: dict[str, Any], count: int) -> None:
            for _ in range(count):  # a job each: the worker runs them all at once
                sent = await live.client.post(
                    f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=live.headers
                )
                tests.append(sent.json()["id"])

        await send_tests(endpoints[0], 6)  # one endpoint: 4 at a time
        await deliver_deferred(sessions, app_settings)
        assert receiver.most_in_flight["/hooks/0"] == ENDPOINT_SHARE
        for endpoint in endpoints[1:]:  # one tenant: 8 at a time
            await send_tests(endpoint, 4)
        await deliver_deferred(sessions, app_settings)
        assert receiver.most_in_flight_total == TENANT_SHARE
        assert max(receiver.most_in_flight.values()) == ENDPOINT_SHARE
        # what waited for its share was sent later, once, and counted once
        assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(tests)
        for endpoint in endpoints:
            for delivery in await deliveries(live, endpoint["id"]):
                assert delivery["status"] == "succeeded"
                assert delivery["attempt_count"] == 1
                assert len(delivery["recent_attempts"]) == 1

    async def test_a_batch_for_one_endpoint_goes_out_through_its_share(
        self, live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
    ) -> None:
        receiver.default = Answer(delay=0.3)
        endpoint = await register(live, receiver.url, event_types=["response.*"])
        await asyncio.gather(
            *[live.client.post("/v1/responses", json=NPS, headers=live.headers) for _ in range(10)]
        )
        await deliver_all(sessions, app_settings)  # no deferral: the batch's job sends it all
        assert receiver.most_in_flight["/hooks"] == ENDPOINT_SHARE
        sent = await deliveries(live, endpoint["id"])
        assert len({r.headers["webhook-id"] for r in receiver.received}) == len(sent) == 10
        assert {(d["status"], d["attempt_count"]) for d in sent} == {("succeeded", 1)}

    async def test_deliveries_are_signed_when_sent_not_when_due(
        self,
        live: Live,
        other_live: Live,
        third_live: Live,
        receiver: Receiver,
        sessions: Any,
        app_settings: Settings,
    ) -> None:
        # Two tenants' slow receivers take every send slot of the process (5 s each: long
        # enough that the third delivery waits over 2 s even when filling the slots and
        # registering its endpoint are slow on a loaded machine) ...
        receiver.default = Answer(delay=5)
        for tenant in (live, other_live):
            for name in ("a", "b"):
                await register(tenant, f"{receiver.url}/{name}", event_types=["response.*"])
            for _ in range(ENDPOINT_SHARE):
                await tenant.client.post("/v1/responses", json=NPS, headers=tenant.headers)
        fast = Receiver()
        await fast.start()
        stop = asyncio.Event()
        worker = Worker(sessions, app_settings, periodic=(), poll_seconds=0.05)
        running = asyncio.create_task(worker.run(stop))
        try:
            await until(lambda: receiver.most_in_flight_total == sending.SEND_CONCURRENCY)
            # ... so a third tenant's delivery, due now, waits for one.
            endpoint = await register(third_live, fast.url)
            due = time.time()
            sent = await third_live.client.post(
                f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=third_live.headers
            )
            assert sent.status_code == 202
            await until(lambda: len(fast.received) == 1)
        finally:
            stop.set()
            await running
            await fast.stop()
        (request,) = fast.received
        assert request.at - due > 2  # it did wait
        assert int(request.headers["webhook-timestamp"]) >= int(request.at) - 1
        Webhook(endpoint["secret"]).verify(request.body, request.headers)


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
        wait = (_parse(delivery["next_attempt_at"]) - utcnow()).total_seconds()
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


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)
