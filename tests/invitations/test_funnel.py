"""The funnel (`GET /v1/invitations/stats`) against a brute-force count."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta
from typing import Any

import pytest

from feedback_api.config import Settings
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.time import utcnow
from tests.fixtures.auth import TenantHandle
from tests.fixtures.invitations import (
    SURVEY,
    parse,
    setup,
)

# --- the funnel ---------------------------------------------------------------------------


async def test_funnel_against_brute_force(tenant: TenantHandle, settings: Settings) -> None:
    rng = random.Random(7)
    await setup(tenant, delay_minutes=0)
    other = {**SURVEY, "key": "support-csat", "kind": "csat", "delay_minutes": 0}
    assert (await tenant.post("/v1/surveys", json=other)).status_code == 201
    for n in range(6):
        await tenant.post(f"/v1/customers/u-{n}/unsubscribe", json={})
    items = [
        {
            "customer": f"{'u' if rng.random() < 0.1 else 'c'}-{rng.randrange(40)}",
            "survey": rng.choice(["delivery-nps", "support-csat"]),
            "channel": rng.choice(["email", "sms", "app"]),
            "trigger_ref": f"o-{n}",
        }
        for n in range(80)
    ]
    await tenant.post("/v1/invitations/batch", json={"items": items})
    await invitation_service.process_due(
        tenant.session, utcnow() + timedelta(minutes=1), settings=settings
    )
    invitations = (await tenant.get("/v1/invitations", params={"limit": 200})).json()["items"]
    for inv in invitations:
        if inv["status"] != "sent":
            continue
        roll = rng.random()
        if roll < 0.3:
            await tenant.post(f"/v1/invitations/{inv['id']}/delivery", json={"status": "delivered"})
        elif roll < 0.4:
            await tenant.post(f"/v1/invitations/{inv['id']}/delivery", json={"status": "bounced"})
        if rng.random() < 0.5:
            survey_max = 10 if inv["survey"] == "delivery-nps" else 5
            await tenant.client.post(
                f"/r/{inv['links']['token']}", json={"score": rng.randint(1, survey_max)}
            )
    invitations = (await tenant.get("/v1/invitations", params={"limit": 200})).json()["items"]

    def expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
        sent = [r for r in rows if r["sent_at"]]
        responded = [r for r in rows if r["responded_at"]]
        reasons: dict[str, int] = {}
        for r in rows:
            if r["status"] == "suppressed":
                reasons[r["suppression_reason"]] = reasons.get(r["suppression_reason"], 0) + 1
        minutes = [
            (parse(r["responded_at"]) - parse(r["sent_at"])).total_seconds() / 60 for r in responded
        ]
        return {
            "created": len(rows),
            "scheduled": sum(r["status"] != "suppressed" for r in rows),
            "suppressed": sum(r["status"] == "suppressed" for r in rows),
            "suppressed_by_reason": reasons,
            "sent": len(sent),
            "delivered": sum(r["delivery"] == "delivered" for r in rows),
            "bounced": sum(r["delivery"] == "bounced" for r in rows),
            "responded": len(responded),
            "response_rate": len(responded) / len(sent) if sent else None,
            "median_minutes_to_respond": round(statistics.median(minutes), 2) if minutes else None,
        }

    def shown(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k != "group"}

    stats = (await tenant.get("/v1/invitations/stats")).json()
    assert stats["groups"] == []
    want = expected(invitations)
    assert want["suppressed"] > 0
    assert want["responded"] > 0
    assert want["bounced"] > 0
    got = shown(stats["total"])
    assert got.pop("median_minutes_to_respond") == pytest.approx(
        want.pop("median_minutes_to_respond"), abs=0.01
    )
    assert got == want
    for by, field in (("survey", "survey"), ("channel", "channel")):
        grouped = (await tenant.get("/v1/invitations/stats", params={"by": by})).json()
        keys = {r[field] for r in invitations}
        assert {g["group"] for g in grouped["groups"]} == keys
        for group in grouped["groups"]:
            rows = [r for r in invitations if r[field] == group["group"]]
            want = expected(rows)
            got = shown(group)
            assert got.pop("median_minutes_to_respond") == pytest.approx(
                want.pop("median_minutes_to_respond"), abs=0.01
            )
            assert got == want, group["group"]
