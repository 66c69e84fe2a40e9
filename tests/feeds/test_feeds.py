"""The public feeds as a reader and an integrator meet them, through the HTTP API: only
consented reviews, never a trace of who wrote them, negative ones kept, fakes and erased
ones gone, the tenant's replies, its improvements with their numbers; 404 unless the tenant
opted in; cursors, caching, rate limits and bad parameters."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from feedback_api.config import Settings
from feedback_api.models import (
    ImprovementAction,
    IntegrityFlag,
    IntegrityFlagResponse,
    Response,
    ResponseReply,
)
from feedback_api.ratelimits.policies import Limit, Policy
from tests.fixtures.app import build_app
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.insights.test_trends import store

NOW = datetime.now(UTC).replace(microsecond=0)
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

# Every secret a seeded comment or reply holds: none may appear in any feed output.
SECRETS = [
    "1234567",
    "555-0100",
    "(415)",
    "0171",
    "2345678",
    "anna.mueller",
    "example.com",
    "Smith",
    "Anna",
    "Müller",
    "王",
    "evil.test",
    "johnny_d",
    "4111",
    "Jonathan",
    "Keller",
]
SEEDED = [
    "Call me back on +49 30 1234567, the parcel was soaked and the box torn.",
    "From the US: (415) 555-0100 is my number, nobody called me back at all.",
    "Mobil 0171 2345678, der Fahrer kam drei Stunden zu spät und war unfreundlich.",
    "Write to anna.mueller@example.com about the refund you still owe me.",
    "Mr Smith at the counter was patient and explained the return rules clearly.",
    "Anna Müller helped me carry the heavy boxes to the car, very kind.",
    "王先生送货很准时，还帮我把箱子搬上了楼，非常感谢。",
    "Tracking at https://evil.test/track?id=99 never updated, follow @johnny_d for more.",
    "My card 4111 1111 1111 1111 was charged twice for one order.",
]


async def open_feeds(tenant: TenantHandle, on: bool = True) -> str:
    answer = await tenant.patch("/v1/tenant", json={"public_feeds": on})
    assert answer.status_code == 200, answer.text
    assert answer.json()["public_feeds"] is on
    return str(answer.json()["slug"])


async def post(tenant: TenantHandle, **fields: Any) -> UUID:
    body = {"kind": "nps", "score": 8, "channel": "web", **fields}
    answer = await tenant.post("/v1/responses", json=body)
    assert answer.status_code == 201, answer.text
    return UUID(answer.json()["id"])


async def consent(tenant: TenantHandle, *ids: UUID) -> None:
    """What the consent flow (another slice) will store: set here directly."""
    await tenant.session.execute(
        update(Response)
        .where(Response.tenant_id == tenant.id, Response.id.in_(ids))
        .values(publish_consent=True)
    )
    await tenant.session.commit()


async def publish(tenant: TenantHandle, **fields: Any) -> UUID:
    response_id = await post(tenant, **fields)
    await consent(tenant, response_id)
    return response_id


async def reply(tenant: TenantHandle, response_id: UUID, body: str) -> None:
    tenant.session.add(ResponseReply(tenant_id=tenant.id, response_id=response_id, body=body))
    await tenant.session.commit()


async def flag(tenant: TenantHandle, response_id: UUID, status: str) -> None:
    made = IntegrityFlag(
        tenant_id=tenant.id,
        type="manual",
        subject_type="response",
        subject_ref=str(response_id),
        strength=1.0,
        evidence={},
        status=status,
        response_count=1,
    )
    tenant.session.add(made)
    await tenant.session.flush()
    tenant.session.add(
        IntegrityFlagResponse(
            tenant_id=tenant.id, flag_id=made.id, response_id=response_id, type="manual"
        )
    )
    await tenant.session.commit()


async def reviews(tenant: TenantHandle, slug: str, **params: Any) -> dict[str, Any]:
    answer = await tenant.client.get(f"/public/{slug}/reviews", params=params, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    return body


def comments(feed: dict[str, Any]) -> list[str | None]:
    return [item["comment"] for item in feed["items"]]


async def test_reviews_show_consented_feedback_and_nothing_personal(
    tenant: TenantHandle,
) -> None:
    await tenant.put(
        "/v1/customers/c-1",
        json={"name": "Jonathan Keller", "email": "jk@example.com", "attributes": {"tier": "g"}},
    )
    slug = await open_feeds(tenant)
    ids = []
    for i, text in enumerate(SEEDED):
        ids.append(
            await publish(
                tenant,
                comment=text,
                customer="c-1",
                agent_ref="agent-7",
                touchpoint="delivery",
                occurred_at=(NOW - timedelta(hours=i)).isoformat(),
            )
        )
    # The customer's own name, known to the tenant, in their own comment.
    await publish(
        tenant, comment="Jonathan from the Keller family was served first.", customer="c-1"
    )
    await reply(tenant, ids[0], "Dear Mr Smith, call us on +49 30 1234567 or anna.mueller@x.de")
    hidden = await post(tenant, comment="Not consented: please do not publish this one")

    feed = await reviews(tenant, slug, limit=100)
    html = (await tenant.client.get(f"/public/{slug}/reviews?limit=100", headers=BROWSER)).text
    assert len(feed["items"]) == len(SEEDED) + 1
    for output in (str(feed), html):
        for secret in SECRETS:
            assert secret not in output, secret
        assert "c-1" not in output
        assert "agent-7" not in output
        assert "tier" not in output
        assert str(hidden) not in output
        assert "Not consented" not in output
        for response_id in ids:  # no internal id, in any spelling
            assert str(response_id) not in output
            assert response_id.hex not in output
    # newest first, with the reply beside its review
    first = feed["items"][0]
    assert first["comment"] == ("[name] from the [name] family was served first."), (
        "the customer's known name is masked wherever it appears"
    )
    soaked = next(i for i in feed["items"] if "soaked" in (i["comment"] or ""))
    assert soaked["comment"].startswith("Call me back on [phone], the parcel was soaked")
    assert soaked["reply"]["body"] == "Dear Mr [name], call us on [phone] or [email]"
    assert soaked["reply"]["date"] == datetime.now(UTC).date().isoformat()
    assert soaked["kind"] == "nps"
    assert soaked["score"] == 8
    assert soaked["scale"] == {"min": 0, "max": 10}
    assert soaked["touchpoint"] == "delivery"
    assert soaked["date"] == NOW.date().isoformat()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", soaked["id"])
    assert set(soaked) == {"id", "kind", "score", "scale", "comment", "touchpoint", "date", "reply"}
    assert "王先生" not in html
    assert "[name]先生送货很准时" in html
    # the same review keeps its id
    again = await reviews(tenant, slug, limit=100)
    assert [i["id"] for i in again["items"]] == [i["id"] for i in feed["items"]]


async def test_a_negative_review_stays_unless_a_flag_is_confirmed(tenant: TenantHandle) -> None:
    slug = await open_feeds(tenant)
    harsh = "Worst delivery ever. Rude driver, broken glass, never again."
    negative = await publish(tenant, score=0, comment=harsh)
    assert comments(await reviews(tenant, slug)) == [harsh]
    await flag(tenant, negative, "open")  # suspected, not decided: still shown
    assert comments(await reviews(tenant, slug)) == [harsh]
    fake = await publish(tenant, score=10, comment="Best shop in the world, five stars!")
    await flag(tenant, fake, "dismissed")
    shown = comments(await reviews(tenant, slug))
    assert harsh in shown
    assert "Best shop in the world, five stars!" in shown
    bought = await publish(tenant, score=10, comment="Paid review: amazing, amazing, amazing")
    await flag(tenant, bought, "confirmed")
    shown = comments(await reviews(tenant, slug))
    assert "Paid review: amazing, amazing, amazing" not in shown
    assert harsh in shown


async def test_deleted_and_erased_reviews_are_gone(tenant: TenantHandle) -> None:
    slug = await open_feeds(tenant)
    await tenant.put("/v1/customers/leaving", json={"name": "Leaving Customer"})
    erased = await publish(tenant, comment="I want to be forgotten later on", customer="leaving")
    deleted = await publish(tenant, comment="This one will be deleted by the tenant")
    kept = await publish(tenant, comment="This one stays in the feed for everyone")
    assert len((await reviews(tenant, slug))["items"]) == 3
    # No route deletes a response yet; the column is what the feed reads.
    await tenant.session.execute(
        update(Response).where(Response.id == deleted).values(deleted_at=datetime.now(UTC))
    )
    await tenant.session.commit()
    assert (await tenant.delete("/v1/customers/leaving")).status_code == 204
    feed = await reviews(tenant, slug)
    assert comments(feed) == ["This one stays in the feed for everyone"]
    assert erased != kept


async def test_off_is_the_same_404_as_an_unknown_slug(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    slug = await open_feeds(tenant, on=False)
    await publish(tenant, comment="Consented, but the tenant has not opted in")
    for path in ("reviews", "improvements"):
        for headers in (JSON, BROWSER):
            closed = await tenant.client.get(f"/public/{slug}/{path}", headers=headers)
            unknown = await tenant.client.get(f"/public/no-such-tenant/{path}", headers=headers)
            assert closed.status_code == unknown.status_code == 404
            assert closed.headers["content-type"] == unknown.headers["content-type"]
            strip = re.compile(r'"request_id": ?"[^"]*"')
            assert strip.sub("", closed.text) == strip.sub("", unknown.text)
            assert "Consented" not in closed.text
        assert_problem(
            await tenant.client.get(f"/public/{slug}/{path}", headers=JSON), 404, "not_found"
        )
    # turning it on publishes; the other tenant's feed stays closed
    await open_feeds(tenant)
    assert len((await reviews(tenant, slug))["items"]) == 1
    other_slug = (await other_tenant.get("/v1/tenant")).json()["slug"]
    closed = await tenant.client.get(f"/public/{other_slug}/reviews", headers=JSON)
    assert closed.status_code == 404


async def test_a_tenants_feed_shows_only_its_own(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    slug = await open_feeds(tenant)
    other_slug = await open_feeds(other_tenant)
    await publish(tenant, comment="Acme's own review, about Acme's delivery")
    await publish(other_tenant, comment="Globex review, about the Globex shop")
    assert comments(await reviews(tenant, slug)) == ["Acme's own review, about Acme's delivery"]
    assert comments(await reviews(other_tenant, other_slug)) == [
        "Globex review, about the Globex shop"
    ]
    # a cursor of one tenant's feed is not accepted by the other's
    for i in range(3):
        await publish(tenant, comment=f"Acme review number {i}")
    page = await reviews(tenant, slug, limit=1)
    stolen = await tenant.client.get(
        f"/public/{other_slug}/reviews", params={"cursor": page["next_cursor"]}, headers=JSON
    )
    assert_problem(stolen, 422, "invalid_cursor")


async def test_the_cursor_walks_every_review_once_while_new_ones_arrive(
    tenant: TenantHandle,
) -> None:
    slug = await open_feeds(tenant)
    for i in range(25):
        await publish(
            tenant,
            comment=f"review {i:02d}",
            # ties on the time, broken by an order the client never sees
            occurred_at=(NOW - timedelta(hours=i // 3)).isoformat(),
        )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = await reviews(tenant, slug, **params)
        seen += [i["comment"] for i in page["items"]]
        pages += 1
        # new reviews arrive while the reader pages: newer than the first page, not walked
        await publish(tenant, comment=f"arrived during page {pages}")
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(cursor) < 100
        assert not re.search(r"[0-9a-f]{8}-", cursor)
    assert sorted(seen) == [f"review {i:02d}" for i in range(25)]
    assert len(seen) == len(set(seen)) == 25
    assert pages == 7


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": "A" * 71}, "invalid_cursor"),
        ({"cursor": "a\x00b"}, "validation_error"),
        ({"limit": "0"}, "validation_error"),
        ({"limit": "101"}, "validation_error"),
        ({"limit": "9" * 40}, "validation_error"),
        ({"limit": "NaN"}, "validation_error"),
        ({"kind": "stars"}, "validation_error"),
        ({"detailed": "maybe"}, "validation_error"),
        ({"lang": "9999-12-31"}, "validation_error"),
    ],
)
async def test_bad_parameters_are_422_problems(
    tenant: TenantHandle, params: dict[str, str], code: str
) -> None:
    slug = await open_feeds(tenant)
    for path in ("reviews", "improvements"):
        if path == "improvements" and set(params) & {"kind", "detailed"}:
            continue
        answer = await tenant.client.get(f"/public/{slug}/{path}", params=params, headers=JSON)
        assert_problem(answer, 422, code)
        page = await tenant.client.get(f"/public/{slug}/{path}", params=params, headers=BROWSER)
        assert page.status_code == 422
        assert page.headers["content-type"].startswith("text/html")
        assert "This page address is not valid." in page.text


async def test_a_cursor_cannot_be_altered(tenant: TenantHandle) -> None:
    slug = await open_feeds(tenant)
    for i in range(3):
        await publish(tenant, comment=f"review {i}")
    cursor = (await reviews(tenant, slug, limit=1))["next_cursor"]
    flipped = cursor[:30] + ("A" if cursor[30] != "A" else "B") + cursor[31:]
    answer = await tenant.client.get(
        f"/public/{slug}/reviews", params={"cursor": flipped}, headers=JSON
    )
    assert_problem(answer, 422, "invalid_cursor")
    # an improvements cursor is not a reviews cursor, and the other way round
    other = await tenant.client.get(
        f"/public/{slug}/improvements", params={"cursor": cursor}, headers=JSON
    )
    assert_problem(other, 422, "invalid_cursor")


async def test_etag_and_304(tenant: TenantHandle) -> None:
    slug = await open_feeds(tenant)
    await publish(tenant, comment="The first review of the shop")
    for headers in (JSON, BROWSER):
        url = f"/public/{slug}/reviews"
        first = await tenant.client.get(url, headers=headers)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, max-age=60"
        assert "Accept" in first.headers["vary"]
        assert "Accept-Language" in first.headers["vary"]
        etag = first.headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
        same = await tenant.client.get(url, headers={**headers, "If-None-Match": etag})
        assert same.status_code == 304
        assert same.content == b""
        assert same.headers["etag"] == etag
        weak = await tenant.client.get(url, headers={**headers, "If-None-Match": f"W/{etag}"})
        assert weak.status_code == 304
    await publish(tenant, comment="A second review changes the feed")
    changed = await tenant.client.get(
        f"/public/{slug}/reviews", headers={**JSON, "If-None-Match": etag}
    )
    assert changed.status_code == 200


@pytest.fixture
def make_app(
    settings: Settings, engine: AsyncEngine, session: AsyncSession
) -> Callable[..., FastAPI]:
    def make(**changes: object) -> FastAPI:
        return build_app(settings.model_copy(update=changes), engine, session)

    return make


async def test_over_the_limit_a_client_gets_429(
    tenant: TenantHandle, make_app: Callable[..., FastAPI]
) -> None:
    slug = await open_feeds(tenant)
    app = make_app(rate_limits={Policy.PUBLIC_FEED: Limit(quota=3, window_seconds=60)})

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 5000))
        return httpx.AsyncClient(transport=transport, base_url="http://test")

    async with client("203.0.113.9") as reader, client("203.0.113.10") as neighbour:
        for path in ("reviews", "improvements", "reviews"):
            assert (await reader.get(f"/public/{slug}/{path}", headers=JSON)).status_code == 200
        limited = await reader.get(f"/public/{slug}/reviews", headers=JSON)
        assert_problem(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # counted before the slug is known: guessing slugs is slowed down too
        assert (await reader.get("/public/nobody/reviews", headers=JSON)).status_code == 429
        page = await reader.get(f"/public/{slug}/reviews", headers=BROWSER)
        assert page.status_code == 429
        assert "Too many tries" in page.text
        assert "Retry-After" in page.headers
        # another address has its own counter
        assert (await neighbour.get(f"/public/{slug}/reviews", headers=JSON)).status_code == 200


async def test_kind_and_detailed_filters(tenant: TenantHandle) -> None:
    slug = await open_feeds(tenant)
    specific = "The driver called ahead, carried the heavy parcel upstairs and waited"
    await publish(tenant, kind="csat", score=5, comment="Good service, very good, thanks!")
    await publish(tenant, kind="csat", score=4, comment=specific)
    await publish(tenant, kind="nps", score=9, comment="Great, great, great. Thank you!")
    await publish(tenant, kind="ces", score=2, comment=None)
    assert len((await reviews(tenant, slug))["items"]) == 4
    assert [i["kind"] for i in (await reviews(tenant, slug, kind="csat"))["items"]] == [
        "csat",
        "csat",
    ]
    assert comments(await reviews(tenant, slug, detailed="true")) == [specific]
    assert comments(await reviews(tenant, slug, detailed="true", kind="nps")) == []


async def test_detailed_pages_through_many_generic_comments(tenant: TenantHandle) -> None:
    slug = await open_feeds(tenant)
    specific = [
        f"Order {i}: the courier rang twice, left a note and redelivered the next morning"
        for i in range(3)
    ]
    items = []
    for i in range(150):
        text = specific[i // 50] if i % 50 == 0 else "Good service, very good, thanks a lot!"
        items.append(
            {
                "kind": "nps",
                "score": 9,
                "channel": "web",
                "comment": text,
                "occurred_at": (NOW - timedelta(minutes=i)).isoformat(),
            }
        )
    await store(tenant, items)
    await tenant.session.execute(
        update(Response).where(Response.tenant_id == tenant.id).values(publish_consent=True)
    )
    await tenant.session.commit()
    seen: list[str | None] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"detailed": "true", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await reviews(tenant, slug, **params)
        seen += comments(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == specific


async def create_action(tenant: TenantHandle, **fields: Any) -> UUID:
    """An action row as the actions API stores it, with a baseline measured earlier."""
    values: dict[str, Any] = {
        "title": "Call customers before delivery",
        "metric": "nps",
        "baseline": {
            "from": (NOW - timedelta(days=120)).isoformat(),
            "to": (NOW - timedelta(days=30)).isoformat(),
            "value": 10.0,
            "interval": None,
            "n": 40,
            "needed_n": 30,
        },
        "target": 30.0,
        "deadline": (NOW + timedelta(days=60)).date(),
        "status": "in_progress",
        "public": True,
        "public_summary": None,
        **fields,
    }
    action = ImprovementAction(tenant_id=tenant.id, **values)
    tenant.session.add(action)
    await tenant.session.commit()
    return action.id


async def test_improvements_show_public_actions_with_their_numbers(
    tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    slug = await open_feeds(tenant)
    await open_feeds(other_tenant)
    theme = await tenant.put(
        "/v1/themes/late", json={"keywords": ["late"], "names": {"en": "Late delivery"}}
    )
    assert theme.status_code == 201, theme.text
    items = []
    for i in range(90):  # baseline: 30 of 90 comments say late
        late = i % 3 == 0
        items.append(
            {
                "kind": "nps",
                "score": 2 if late else 9,
                "channel": "web",
                "comment": "the parcel came late" if late else "fine",
                "occurred_at": (NOW - timedelta(days=40 + i)).isoformat(),
            }
        )
    for i in range(50):  # after the change: fewer say late, scores rise
        items.append(
            {
                "kind": "nps",
                "score": 10 if i % 10 else 3,
                "channel": "web",
                "comment": "fine" if i % 10 else "a bit late",
                "occurred_at": (NOW - timedelta(days=1 + i / 5)).isoformat(),
            }
        )
    await store(tenant, items)
    made = await tenant.post(
        "/v1/actions",
        json={
            "title": "Call ahead when a parcel will be late",
            "scope": {"theme": "late"},
            "metric": "theme_share",
            "target": 10,
            "deadline": (NOW + timedelta(days=60)).date().isoformat(),
            "baseline_from": (NOW - timedelta(days=140)).date().isoformat(),
            "baseline_to": (NOW - timedelta(days=35)).date().isoformat(),
            "starts_on": (NOW - timedelta(days=12)).date().isoformat(),
            "ends_on": (NOW - timedelta(days=11)).date().isoformat(),
            "status": "in_progress",
            "public": True,
            "public_summary": "You told us parcels came late. Mr Smith (+49 30 1234567) "
            "now calls every customer whose parcel is delayed.",
        },
    )
    assert made.status_code == 201, made.text
    done = await tenant.patch(f"/v1/actions/{made.json()['id']}", json={"status": "done"})
    assert done.status_code == 200, done.text
    await create_action(tenant, title="Internal: renegotiate the courier contract", public=False)
    await create_action(tenant, title="Abandoned idea", status="abandoned")
    await create_action(other_tenant, title="Globex's own improvement")

    answer = await tenant.client.get(f"/public/{slug}/improvements", headers=JSON)
    assert answer.status_code == 200, answer.text
    feed = answer.json()
    assert [i["title"] for i in feed["items"]] == ["Call ahead when a parcel will be late"]
    item = feed["items"][0]
    assert item["status"] == "done"
    assert item["completed_on"] == datetime.now(UTC).date().isoformat()
    assert item["theme"] == {"key": "late", "label": "Late delivery"}
    assert item["customers_said"]["mentions"] == 30
    assert item["customers_said"]["responses"] == 90
    assert item["metric"] == "theme_share"
    assert item["baseline"]["n"] == 90
    assert round(item["baseline"]["value"], 1) == 33.3
    assert item["target"] == 10
    assert item["result"]["after"]["n"] >= 40
    assert item["result"]["after"]["value"] < 15
    assert item["result"]["change"] < -15
    assert item["result"]["verdict"] in ("improved", "too_early", "no_detectable_change")
    assert "Smith" not in item["summary"]
    assert "1234567" not in item["summary"]
    assert "Mr [name] ([phone]) now calls" in item["summary"]
    assert str(made.json()["id"]) not in answer.text
    page = await tenant.client.get(f"/public/{slug}/improvements", headers=BROWSER)
    assert page.status_code == 200
    assert "Late delivery" in page.text
    assert "Internal" not in page.text
    assert "Globex" not in page.text


async def test_improvements_page_with_a_cursor(tenant: TenantHandle) -> None:
    slug = await open_feeds(tenant)
    for i in range(5):
        await create_action(tenant, title=f"Improvement {i}")
    titles: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        answer = await tenant.client.get(
            f"/public/{slug}/improvements", params=params, headers=JSON
        )
        assert answer.status_code == 200, answer.text
        titles += [i["title"] for i in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(titles) == [f"Improvement {i}" for i in range(5)]
    assert len(titles) == 5


async def test_staff_names_from_tickets_are_masked(tenant: TenantHandle) -> None:
    slug = await open_feeds(tenant)
    unhappy = await publish(tenant, score=2, comment="Nobody answered for a week, useless")
    ticket = await tenant.post(
        "/v1/tickets", json={"subject": "No answer", "assignee": "Zephyrine Okonkwo"}
    )
    assert ticket.status_code == 201, ticket.text
    await reply(tenant, unhappy, "Zephyrine from our team will call you today.")
    await publish(tenant, comment="zephyrine okonkwo sorted it out in ten minutes flat")
    feed = await reviews(tenant, slug)
    assert "ephyrine" not in str(feed).lower()
    assert "okonkwo" not in str(feed).lower()
    assert "[name] [name] sorted it out in ten minutes flat" in comments(feed)
    assert "[name] from our team will call you today." in [
        i["reply"]["body"] for i in feed["items"] if i["reply"]
    ]
