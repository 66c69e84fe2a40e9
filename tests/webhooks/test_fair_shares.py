"""The fair shares of the send slots, in process: per endpoint, per tenant, and a delivery
that waited for a slot is signed when it leaves."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from standardwebhooks.webhooks import Webhook

from feedback_api.config import Settings
from feedback_api.webhooks import sending
from feedback_api.worker import Worker
from tests.fixtures.live import Live
from tests.fixtures.receiver import Answer, Receiver
from tests.fixtures.waiting import until
from tests.fixtures.webhooks import (
    NPS,
    deliver_all,
    deliver_deferred,
    deliveries,
    register,
)

# Sends in flight per endpoint and per tenant, per worker process (docs/webhooks.md).
ENDPOINT_SHARE, TENANT_SHARE = 4, 8


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
