"""`GET /v1/events`: pages oldest first, resumes from its cursor, never skips an event
committed late nor shows one rolled back, and filters by type."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.db import asyncpg_dsn
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.kit.time import utcnow
from feedback_api.privacy.schemas import CustomerErased
from tests.fixtures.auth import assert_problem
from tests.fixtures.database import database_url
from tests.fixtures.live import Live

NPS: dict[str, Any] = {"kind": "nps", "score": 3, "channel": "crm"}


async def _poll(live: Live, query: str = "") -> dict[str, Any]:
    response = await live.client.get(f"/v1/events{query}", headers=live.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _poll_until(live: Live, count: int, query: str = "") -> dict[str, Any]:
    """Poll until `count` events show. An event shows once every transaction of this
    database that started before it has ended (`events.repository.HORIZON`): other test
    workers' transactions, in databases of their own, do not hold it back."""
    for _ in range(200):
        result = await _poll(live, query)
        if len(result["items"]) >= count:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(result['items'])} of {count} events showed: {result}")


async def _emit_in_own_transaction(live: Live, commit: bool) -> tuple[AsyncSession, str]:
    """Open a transaction that writes an event and leave it open (caller ends it)."""
    session = live.sessionmaker()
    marker = f"m-{utcnow().timestamp()}"
    await event_service.emit(
        session,
        live.tenant_id,
        EventType.CUSTOMER_ERASED,
        [CustomerErased(external_ref=marker, erased_at=utcnow())],
    )
    if commit:
        await session.commit()
    return session, marker


class TestPolling:
    async def test_pages_oldest_first_and_resumes_from_the_cursor(self, live: Live) -> None:
        for score in range(5):
            await live.client.post(
                "/v1/responses", json={**NPS, "score": score}, headers=live.headers
            )
        await _poll_until(live, 5)
        first = await _poll(live, "?limit=3")
        assert [e["data"]["score"] for e in first["items"]] == [0, 1, 2]
        assert first["has_more"] is True
        rest = await _poll(live, f"?limit=3&after={first['next_cursor']}")
        assert [e["data"]["score"] for e in rest["items"]] == [3, 4]
        assert rest["has_more"] is False
        idle = await _poll(live, f"?after={rest['next_cursor']}")
        assert idle["items"] == []
        assert idle["next_cursor"] == rest["next_cursor"]

    async def test_filters_by_type_or_family(self, live: Live) -> None:
        created = await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        url = f"/v1/responses/{created.json()['id']}"
        await live.client.patch(url, json={"tags": ["x"]}, headers=live.headers)
        await _poll_until(live, 2)
        exact = await _poll(live, "?type=response.updated")
        assert [e["type"] for e in exact["items"]] == ["response.updated"]
        family = await _poll(live, "?type=response.*")
        assert [e["type"] for e in family["items"]] == ["response.created", "response.updated"]
        bad = await live.client.get("/v1/events?type=response", headers=live.headers)
        assert_problem(bad, 422, "validation_error")

    async def test_an_event_committed_late_is_not_skipped(self, live: Live) -> None:
        slow, slow_marker = await _emit_in_own_transaction(live, commit=False)
        try:
            fast, fast_marker = await _emit_in_own_transaction(live, commit=True)
            await fast.close()
            # The slow transaction started first and is still open: nothing after it shows.
            early = await _poll(live)
            assert early["items"] == []
            await slow.commit()
        finally:
            await slow.close()
        late = await _poll_until(
            live, 2, f"?after={early['next_cursor']}" if early["next_cursor"] else ""
        )
        refs = [e["data"]["external_ref"] for e in late["items"]]
        assert refs == [slow_marker, fast_marker]

    async def test_a_long_write_in_another_database_holds_nothing_back(self, live: Live) -> None:
        # A reporting job or another service on the same server: its transaction has an
        # xid older than our event, and our database cannot receive a row from it.
        elsewhere = await asyncpg.connect(asyncpg_dsn(database_url("postgres")))
        try:
            async with elsewhere.transaction():
                await elsewhere.fetchval("SELECT pg_current_xact_id()")
                await live.client.post("/v1/responses", json=NPS, headers=live.headers)
                shown = await _poll_until(live, 1)
                assert [e["type"] for e in shown["items"]] == ["response.created"]
        finally:
            await elsewhere.close()

    async def test_an_event_of_a_rolled_back_transaction_never_appears(self, live: Live) -> None:
        session, _ = await _emit_in_own_transaction(live, commit=False)
        await session.rollback()
        await session.close()
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        assert [e["type"] for e in (await _poll_until(live, 1))["items"]] == ["response.created"]

    async def test_get_one(self, live: Live) -> None:
        await live.client.post("/v1/responses", json=NPS, headers=live.headers)
        listed = (await _poll_until(live, 1))["items"][0]
        one = await live.client.get(f"/v1/events/{listed['id']}", headers=live.headers)
        assert one.json() == listed

    async def test_tenants_never_see_each_others_events(self, live: Live, other_live: Live) -> None:
        await other_live.client.post("/v1/responses", json=NPS, headers=other_live.headers)
        theirs = (await _poll_until(other_live, 1))["items"][0]
        assert (await _poll(live))["items"] == []
        response = await live.client.get(f"/v1/events/{theirs['id']}", headers=live.headers)
        assert_problem(response, 404, "not_found")

    async def test_bad_cursor_is_422(self, live: Live) -> None:
        response = await live.client.get("/v1/events?after=nope", headers=live.headers)
        assert_problem(response, 422, "invalid_cursor")
        for query in ("after=%00", "after=a%2Fb", "after=" + "a" * 513, "type=response.%00"):
            response = await live.client.get(f"/v1/events?{query}", headers=live.headers)
            assert_problem(response, 422, "validation_error")


async def test_concurrent_writers_appear_in_commit_safe_order(live: Live) -> None:
    """Many concurrent requests: a poller following the cursor sees each event once."""
    await asyncio.gather(
        *[
            live.client.post("/v1/responses", json={**NPS, "score": i % 11}, headers=live.headers)
            for i in range(30)
        ]
    )
    await _poll_until(live, 30, "?limit=200")
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await _poll(live, f"?limit=7&after={cursor}" if cursor else "?limit=7")
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen)) == 30
