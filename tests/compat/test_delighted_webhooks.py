"""Webhooks in Delighted's shape, through the worker to a real receiver: the three event
types it had, the person expanded, the signature a receiver written for Delighted checks."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from standardwebhooks.webhooks import Webhook

from feedback_api.config import Settings
from tests.compat.test_delighted_transport import basic
from tests.fixtures.live import Live
from tests.fixtures.receiver import Receiver
from tests.fixtures.webhooks import app_settings as app_settings  # the fixture
from tests.fixtures.webhooks import deliver_all, register
from tests.fixtures.webhooks import sessions as sessions  # the fixture

BASE = "/compat/delighted/v1"


def delighted_signature(secret: str, body: bytes) -> str:
    """As Delighted's own receiver examples computed it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def as_delighted(live: Live, method: str, path: str, **kw: Any) -> Any:
    key = live.headers["Authorization"].removeprefix("Bearer ")
    answer = await live.client.request(method, BASE + path, headers=basic(key, colon=True), **kw)
    assert answer.status_code < 300, answer.text
    return answer.json()


async def test_a_delighted_receiver_gets_its_events_signed_as_it_expects(
    live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
) -> None:
    ours = await register(live, receiver.url + "/ours", event_types=["response.*"])
    theirs = await register(live, receiver.url + "/delighted", format="delighted")
    assert theirs["format"] == "delighted"
    assert sorted(theirs["event_types"]) == [
        "customer.unsubscribed",
        "response.created",
        "response.updated",
    ]
    person = await as_delighted(
        live, "POST", "/people", json={"email": "ann@example.com", "name": "Ann", "send": False}
    )
    created = await as_delighted(
        live,
        "POST",
        "/survey_responses",
        json={"person": person["id"], "score": 3, "comment": "Löng wait", "person_properties": {}},
    )
    await as_delighted(live, "PUT", f"/survey_responses/{created['id']}", json={"tags": ["slow"]})
    # An opt-out of SMS alone was never one of Delighted's unsubscribes; of e-mail it is.
    await live.client.post(
        "/v1/customers/ann@example.com/unsubscribe", json={"channel": "sms"}, headers=live.headers
    )
    await as_delighted(live, "POST", "/unsubscribes", json={"person_email": "ann@example.com"})
    await deliver_all(sessions, app_settings)

    # Sent concurrently: in any order.
    delivered = sorted(
        (r for r in receiver.received if r.path.endswith("/delighted")),
        key=lambda r: str(json.loads(r.body)["event_type"]),
    )
    assert [json.loads(r.body)["event_type"] for r in delivered] == [
        "survey_response.created",
        "survey_response.updated",
        "unsubscribe.created",
    ]
    for request in delivered:
        assert request.headers["x-delighted-webhook-signature"] == delighted_signature(
            theirs["secret"], request.body
        )
        assert "webhook-signature" not in request.headers
    first, second, unsubscribed = (json.loads(r.body) for r in delivered)
    assert first["event_id"] != second["event_id"]
    data = first["event_data"]
    assert (data["id"], data["score"], data["comment"]) == (created["id"], 3, "Löng wait")
    assert data["person"]["email"] == "ann@example.com"  # expanded
    assert data["person"]["name"] == "Ann"
    assert isinstance(data["created_at"], int)
    assert second["event_data"]["tags"] == ["slow"]
    assert unsubscribed["event_data"]["person_id"] == person["id"]
    assert unsubscribed["event_data"]["email"] == "ann@example.com"
    assert isinstance(unsubscribed["event_data"]["unsubscribed_at"], int)
    # The Standard Webhooks endpoint beside it is unchanged.
    standard = [r for r in receiver.received if r.path.endswith("/ours")]
    verified = {Webhook(ours["secret"]).verify(r.body, r.headers)["type"] for r in standard}
    assert verified == {"response.created", "response.updated"}


async def test_a_delighted_endpoint_takes_only_what_the_format_carries(live: Live) -> None:
    url = "/v1/webhook-endpoints"
    refused = await live.client.post(
        url,
        json={
            "url": "https://hooks.example.com/d",
            "format": "delighted",
            "event_types": ["ticket.created"],
        },
        headers=live.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "event_type_not_in_format"
    made = await live.client.post(
        url,
        json={"url": "https://hooks.example.com/s", "event_types": ["ticket.*"]},
        headers=live.headers,
    )
    switch = await live.client.patch(
        f"{url}/{made.json()['id']}", json={"format": "delighted"}, headers=live.headers
    )
    assert switch.status_code == 422  # its ticket filter cannot go with the format
    both = await live.client.patch(
        f"{url}/{made.json()['id']}",
        json={"format": "delighted", "event_types": []},
        headers=live.headers,
    )
    assert both.status_code == 200, both.text
    assert len(both.json()["event_types"]) == 3
    unknown = await live.client.post(
        url, json={"url": "https://hooks.example.com/u", "format": "zapier"}, headers=live.headers
    )
    assert unknown.status_code == 422
