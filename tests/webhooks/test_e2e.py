"""The README's webhook walk-through with real processes: the API, a worker started late
and restarted, and the development receiver verifying signatures."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fixtures.auth import bearer
from tests.fixtures.processes import Processes, free_port
from tests.fixtures.processes import processes as processes  # the fixture


@dataclass
class Setup:
    base: str
    headers: dict[str, str]
    endpoint: dict[str, Any]


def start_api_and_receiver(
    processes: Processes, tenant_name: str, event_types: list[str], *, worker: bool
) -> Setup:
    """A tenant (by the CLI), the API, a webhook endpoint and the dev receiver behind it."""
    key = processes.tenant(tenant_name)
    receiver_port = free_port()
    api_port = processes.serve("--worker" if worker else "--no-worker")
    base = f"http://127.0.0.1:{api_port}"
    headers = bearer(key)
    endpoint = httpx.post(
        f"{base}/v1/webhook-endpoints",
        json={"url": f"http://127.0.0.1:{receiver_port}/", "event_types": event_types},
        headers=headers,
    ).json()
    processes.start(
        "receiver", "dev-receiver", "--secret", endpoint["secret"], "--port", str(receiver_port)
    )
    processes.wait_for("receiver", "receiving on")
    return Setup(base, headers, endpoint)


def test_webhook_walkthrough(processes: Processes) -> None:
    setup = start_api_and_receiver(processes, "Webhook demo", ["response.*"], worker=False)
    base, headers = setup.base, setup.headers

    # No worker yet: the response is stored and its delivery waits, durably.
    first = httpx.post(
        f"{base}/v1/responses", json={"kind": "nps", "score": 4, "channel": "crm"}, headers=headers
    )
    assert first.status_code == 201
    time.sleep(1)
    assert "verified" not in processes.log("receiver")

    worker = processes.start("worker", "worker")
    processes.wait_for("receiver", "verified")
    assert first.json()["id"] in processes.log("receiver")

    # Stop the worker, create more work, start it again: nothing is lost.
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    second = httpx.post(
        f"{base}/v1/responses", json={"kind": "csat", "score": 2, "channel": "crm"}, headers=headers
    )
    processes.start("worker2", "worker")
    deadline = time.monotonic() + 30
    while second.json()["id"] not in processes.log("receiver"):
        assert time.monotonic() < deadline, processes.log("receiver")
        time.sleep(0.1)
    assert "REJECTED" not in processes.log("receiver")


def test_closed_loop_walkthrough(processes: Processes) -> None:
    """The README's loop with real processes: a detractor's answer opens a ticket, the team
    replies and resolves, and the tenant's receiver gets each step, signed."""
    setup = start_api_and_receiver(processes, "Loop demo", ["ticket.*"], worker=True)
    base, headers, endpoint = setup.base, setup.headers, setup.endpoint

    detractor = httpx.post(
        f"{base}/v1/responses",
        json={
            "kind": "nps",
            "score": 2,
            "channel": "crm",
            "customer": "crm-7",
            "touchpoint": "delivery",
            "comment": "Parcel lost",
        },
        headers=headers,
    )
    assert detractor.status_code == 201
    (ticket,) = httpx.get(f"{base}/v1/tickets", headers=headers).json()["items"]
    assert ticket["response_id"] == detractor.json()["id"]
    processes.wait_for("receiver", '"ticket.created"')

    url = f"{base}/v1/tickets/{ticket['id']}"
    reply = httpx.post(f"{url}/replies", json={"body": "We are on it."}, headers=headers)
    assert reply.status_code == 201
    assert httpx.patch(url, json={"status": "in_progress"}, headers=headers).status_code == 200
    resolved = httpx.patch(
        url,
        json={
            "status": "resolved",
            "root_cause": "courier_lost_parcel",
            "resolution_summary": "A new parcel left today by express.",
        },
        headers=headers,
    )
    assert resolved.status_code == 200
    processes.wait_for("receiver", '"ticket.resolved"')
    assert "REJECTED" not in processes.log("receiver")
    events = httpx.get(f"{base}/v1/events", params={"type": "ticket.*"}, headers=headers).json()
    by_type = {e["type"]: e for e in events["items"]}
    assert list(by_type) == [
        "ticket.created",
        "ticket.replied",
        "ticket.updated",
        "ticket.resolved",
    ]
    # what the CRM needs to message the customer is in the events it received
    assert by_type["ticket.replied"]["data"]["entry"]["body"] == "We are on it."
    summary = by_type["ticket.resolved"]["data"]["resolution_summary"]
    assert summary == "A new parcel left today by express."
    # the receiver printed it before the worker recorded its answer: poll for the record
    deadline = time.monotonic() + 30
    while True:
        deliveries = httpx.get(
            f"{base}/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=headers
        ).json()["items"]
        delivered = {d["event_id"] for d in deliveries if d["status"] == "succeeded"}
        if by_type["ticket.resolved"]["id"] in delivered:
            break
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.1)


def test_invitation_walkthrough(processes: Processes) -> None:
    """The README's invitation walk-through with real processes: a survey, an invitation
    with a short delay, `invitation.due` at the receiver, the one-tap link, the verified
    response and the funnel."""
    setup = start_api_and_receiver(
        processes, "Invitation demo", ["invitation.*", "customer.*"], worker=True
    )
    base, headers = setup.base, setup.headers
    survey = {"key": "delivery-nps", "kind": "nps", "question": {"en": "Would you recommend us?"}}
    assert httpx.post(f"{base}/v1/surveys", json=survey, headers=headers).status_code == 201
    rules = httpx.patch(f"{base}/v1/contact-rules", json={"quiet_hours": None}, headers=headers)
    assert rules.status_code == 200
    invitation = httpx.post(
        f"{base}/v1/invitations",
        json={
            "customer": "crm-1002",
            "survey": "delivery-nps",
            "trigger_ref": "order-123",
            "delay_seconds": 2,
        },
        headers=headers,
    )
    assert invitation.status_code == 201
    assert invitation.json()["status"] == "scheduled"
    processes.wait_for("receiver", '"invitation.due"')
    assert "REJECTED" not in processes.log("receiver")
    events = httpx.get(f"{base}/v1/events", params={"type": "invitation.due"}, headers=headers)
    (due,) = events.json()["items"]
    nine = due["data"]["message"]["links"][9]["url"]
    path = nine[nine.index("/r/") :]

    page = httpx.get(f"{base}{path}")  # what a scanner or the customer's tap fetches
    assert page.status_code == 200
    assert "Would you recommend us?" in page.text
    landing = path.split("?")[0]
    thanks = httpx.post(
        f"{base}{landing}",
        content="score=9&comment=Quick+and+friendly",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert thanks.status_code == 200
    processes.wait_for("receiver", '"invitation.responded"')
    (response,) = httpx.get(f"{base}/v1/responses", headers=headers).json()["items"]
    assert (response["score"], response["verified"]) == (9, True)
    assert response["invitation_id"] == invitation.json()["id"]
    funnel = httpx.get(f"{base}/v1/invitations/stats", headers=headers).json()["total"]
    assert (funnel["scheduled"], funnel["sent"], funnel["responded"]) == (1, 1, 1)
