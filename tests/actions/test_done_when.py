"""Issue 19's "done when", through the real API and worker processes: a manager turns the
rising theme into an improvement action, sees it placed among the quick wins, sees its
measured effect against a control, marks it done, and the CRM's webhook receives the
customers to tell; the public feeds show the review with its reply and the improvement
with its numbers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.fixtures.auth import bearer
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture
from tests.fixtures.receiver import Receiver
from tests.fixtures.waiting import until
from tests.insights.test_done_when import MIRROR, OTHER

NOW = datetime.now(UTC).replace(microsecond=0)
LIGHT = "fitting_room_light"


def visits(
    rng: random.Random,
    newest: datetime,
    span: timedelta,
    n: int,
    mirror_share: float,
    touchpoint: str,
) -> list[dict[str, Any]]:
    """n answers in (newest − span, newest], each from its own customer; a share of them
    complain about the fitting-room light (and score low)."""
    items = []
    for _ in range(n):
        mirror = rng.random() < mirror_share
        if mirror:
            comment, score = rng.choice(MIRROR), rng.randint(0, 5)
        else:
            comment, (low, high) = rng.choice(OTHER)
            score = rng.randint(low, high)
        items.append(
            {
                "kind": "nps",
                "score": score,
                "channel": "app",
                "touchpoint": touchpoint,
                "comment": comment,
                "customer": f"{touchpoint}-{rng.getrandbits(48):012x}",
                "occurred_at": (newest - span * rng.random()).isoformat(),
            }
        )
    return items


async def test_a_manager_turns_the_rising_theme_into_an_action_that_proves_itself(
    processes: Processes,
) -> None:
    admin = bearer(processes.tenant("Fashion"))
    base = f"http://127.0.0.1:{processes.serve()}"
    processes.start("worker", "worker")
    processes.wait_for("worker", "worker_started")
    crm = Receiver()
    await crm.start()
    rng = random.Random(19)
    month = timedelta(days=28)
    before = visits(rng, NOW - timedelta(days=32), month, 700, 0.04, "store")
    baseline = visits(rng, NOW - timedelta(days=2), month, 700, 0.16, "store")
    after = visits(rng, NOW - timedelta(minutes=5), timedelta(hours=20), 700, 0.03, "store")
    control = [
        *visits(rng, NOW - timedelta(days=2), month, 400, 0.0, "online"),
        *visits(rng, NOW - timedelta(minutes=5), timedelta(hours=20), 400, 0.0, "online"),
    ]
    try:
        async with httpx.AsyncClient(base_url=base, headers=admin, timeout=60) as api:
            # Flags of the worker's screen (these synthetic comments repeat word for word)
            # are for review only: only confirmed ones exclude.
            settings = await api.patch("/v1/integrity/settings", json={"exclude_threshold": 1})
            assert settings.status_code == 200, settings.text
            hook = await api.post(
                "/v1/webhook-endpoints",
                json={"url": crm.url, "event_types": ["action.completed"]},
            )
            assert hook.status_code == 201, hook.text
            put = await api.put(
                f"/v1/themes/{LIGHT}",
                json={
                    "names": {"zh": "试衣间灯光", "en": "Fitting-room light"},
                    "keywords": ["镜子", "太暗", "fitting room", "mirror", "dark"],
                },
            )
            assert put.status_code == 201, put.text
            items = before + baseline + control
            for first in range(0, len(items), 700):
                chunk = items[first : first + 700]
                stored = await api.post("/v1/responses/batch", json={"items": chunk})
                assert stored.json()["created"] == len(chunk), stored.text

            async def classified() -> bool:
                body = (await api.get("/v1/themes")).json()
                return bool(body["classification"]["up_to_date"])

            await until(classified, within=120, every=0.2)

            # 1. The rising theme, over the baseline month against the one before.
            period = {"from": (NOW - timedelta(days=30)).isoformat(), "to": NOW.isoformat()}
            rising = (await api.get("/v1/insights/themes/rising", params=period)).json()
            light = next(r for r in rising["items"] if r["key"] == LIGHT)
            assert light["rising"] is True, light

            # 2. ... becomes a SMART action on the store's comments, which was in place
            # yesterday; its baseline is the month before that.
            created = await api.post(
                "/v1/actions",
                json={
                    "title": "Brighter fitting-room lights",
                    "owner": "store operations",
                    "scope": {"theme": LIGHT, "touchpoint": "store"},
                    "metric": "theme_share",
                    "target": 6,
                    "deadline": (NOW + timedelta(days=60)).date().isoformat(),
                    "baseline_from": (NOW - timedelta(days=30)).isoformat(),
                    "baseline_to": (NOW - timedelta(days=2)).isoformat(),
                    "effort_days": 3,
                    "status": "in_progress",
                    "ends_on": (NOW - timedelta(days=1)).date().isoformat(),
                    "public": True,
                    "public_summary": "You told us the fitting rooms were too dark to see "
                    "the colours; we put in brighter lights.",
                },
            )
            assert created.status_code == 201, created.text
            action = created.json()
            assert 12 < action["baseline"]["value"] < 20

            # 3. Its low effort places the theme among the quick wins.
            matrix = (await api.get("/v1/insights/priorities", params=period)).json()
            placed = next(i for i in matrix["items"] if i["key"] == LIGHT)
            assert placed["quadrant"] == "quick_wins", placed

            # 4. The comments since the change; the measured effect against the control.
            stored = await api.post("/v1/responses/batch", json={"items": after})
            assert stored.json()["created"] == len(after), stored.text
            await until(classified, within=120, every=0.2)
            impact = (await api.get(f"/v1/actions/{action['id']}/impact")).json()
            assert impact["verdict"] == "improved", impact
            assert impact["control"], impact
            did = impact["difference_in_differences"]
            assert did["interval"]["high"] < 0  # fewer mentions, beyond what moved elsewhere
            assert impact["after"]["value"] < impact["before"]["value"]

            # 5. Done: the CRM receives whom to tell, less the customer who opted out.
            mentioned = {
                i["customer"]
                for i in baseline + after
                if i["comment"] in MIRROR and i["occurred_at"] >= period["from"]
            }
            opted_out = sorted(mentioned)[0]
            out = await api.post(f"/v1/customers/{opted_out}/unsubscribe", json={})
            assert out.status_code == 200, out.text
            done = await api.patch(f"/v1/actions/{action['id']}", json={"status": "done"})
            assert done.status_code == 200, done.text

            async def told() -> bool:
                return any(b'"action.completed"' in r.body for r in crm.received)

            await until(told, within=60)
            (notice,) = [r for r in crm.received if b'"action.completed"' in r.body]
            data = json.loads(notice.body)["data"]
            assert data["public_summary"] == action["public_summary"]
            assert {c["ref"] for c in data["customers"]} == mentioned - {opted_out}
            assert data["next_cursor"] is None

            # 6. The public feeds: the consented review with its reply, and the improvement
            # with its numbers; no personal data.
            opened = await api.patch("/v1/tenant", json={"public_feeds": True})
            assert opened.status_code == 200, opened.text
            slug = opened.json()["slug"]
            review = await api.post(
                "/v1/responses",
                json={
                    "kind": "nps",
                    "score": 1,
                    "channel": "app",
                    "touchpoint": "store",
                    "customer": "store-ann",
                    "comment": "Still too dark in there. Call me: 0171 2345678",
                    "publish_consent": True,
                },
            )
            assert review.status_code == 201, review.text
            reply = "Thank you: brighter lights are in every fitting room since Monday."
            replied = await api.post(
                f"/v1/responses/{review.json()['id']}/reply", json={"body": reply}
            )
            assert replied.status_code == 201, replied.text
            async with httpx.AsyncClient(base_url=base, timeout=60) as public:
                reviews = await public.get(f"/public/{slug}/reviews")
                assert reviews.status_code == 200, reviews.text
                [shown] = reviews.json()["items"]
                assert (shown["score"], shown["reply"]["body"]) == (1, reply)
                assert "2345678" not in reviews.text
                assert "store-ann" not in reviews.text
                improvements = (await public.get(f"/public/{slug}/improvements")).json()
                [improved] = improvements["items"]
                assert improved["title"] == "Brighter fitting-room lights"
                assert improved["status"] == "done"
                assert improved["theme"]["label"] == "Fitting-room light"
                assert improved["customers_said"]["mentions"] > 50
                assert improved["baseline"]["value"] == action["baseline"]["value"]
                assert improved["result"]["verdict"] == "improved"
                assert improved["result"]["after"]["value"] < improved["baseline"]["value"]
                page = await public.get(f"/public/{slug}/reviews", headers={"Accept": "text/html"})
                assert page.headers["content-type"].startswith("text/html")
                assert "brighter lights are in every fitting room" in page.text
    finally:
        await crm.stop()
    assert "Traceback" not in processes.log("worker")
