from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.kit.time import utcnow
from feedback_api.models import Event
from feedback_api.privacy.schemas import CustomerErased
from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.live import Live

NPS: dict[str, Any] = {"kind": "nps", "score": 3, "channel": "crm"}


async def events_of(session: AsyncSession, tenant_id: UUID) -> list[Event]:
    stmt = select(Event).where(Event.tenant_id == tenant_id).order_by(Event.xid, Event.id)
    return list((await session.scalars(stmt)).all())


class TestEmission:
    """Events are written in the request's own transaction."""

    async def test_created_carries_the_response_as_the_api_shows_it(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        created = await tenant.post("/v1/responses", json={**NPS, "comment": "late"})
        (event,) = await events_of(session, tenant.id)
        assert event.type == "response.created"
        assert event.schema_version == 1
        assert event.data == created.json()

    async def test_batch_emits_one_per_stored_item_only(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        items = [{**NPS, "external_id": "a"}, {**NPS, "external_id": "a"}, {"kind": "nps"}, NPS]
        body = (await tenant.post("/v1/responses/batch", json={"items": items})).json()
        assert [i["status"] for i in body["items"]] == [201, 200, 422, 201]
        events = await events_of(session, tenant.id)
        assert [e.type for e in events] == ["response.created"] * 2
        assert {e.data["id"] for e in events} == {body["items"][0]["id"], body["items"][3]["id"]}

    async def test_a_retry_emits_nothing(self, tenant: TenantHandle, session: AsyncSession) -> None:
        await tenant.post("/v1/responses", json={**NPS, "external_id": "x"})
        await tenant.post("/v1/responses", json={**NPS, "external_id": "x"})
        assert len(await events_of(session, tenant.id)) == 1

    async def test_update_and_delete(self, tenant: TenantHandle, session: AsyncSession) -> None:
        created = (await tenant.post("/v1/responses", json=NPS)).json()
        url = f"/v1/responses/{created['id']}"
        patched = (await tenant.patch(url, json={"tags": ["late"]})).json()
        events = await events_of(session, tenant.id)
        assert [e.type for e in events] == ["response.created", "response.updated"]
        assert events[1].data == patched

    async def test_a_failed_request_emits_nothing(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await tenant.post("/v1/responses", json={**NPS, "external_id": "x"})
        conflict = await tenant.post("/v1/responses", json={**NPS, "score": 9, "external_id": "x"})
        assert conflict.status_code == 409
        assert len(await events_of(session, tenant.id)) == 1

    async def test_erasure_scrubs_past_payloads_and_is_announced(
        self, tenant: TenantHandle, other_tenant: TenantHandle, session: AsyncSession
    ) -> None:
        body = {
            **NPS,
            "customer": "crm-9",
            "comment": "call me on 138",
            "external_id": "e-1",
            "attributes": {"order": "A1"},
            "language": "zh-CN",
        }
        await tenant.post("/v1/responses", json=body)
        await other_tenant.post("/v1/responses", json=body)  # same ref, another tenant
        await tenant.delete("/v1/customers/crm-9")

        # The detractor also opened a ticket, whose event carried the comment too.
        created, ticket, erased = await events_of(session, tenant.id)
        for field in ("customer", "comment", "external_id", "language"):
            assert created.data[field] is None
        assert created.data["attributes"] == {}
        assert created.data["score"] == 3
        assert ticket.type == "ticket.created"
        for field in ("customer", "description", "entry"):
            assert ticket.data[field] is None
        assert ticket.data["priority"] == "high"
        assert erased.type == "customer.erased"
        assert set(erased.data) == {"external_ref", "erased_at"}
        theirs, their_ticket = await events_of(session, other_tenant.id)
        assert theirs.data["comment"] == "call me on 138"
        assert their_ticket.data["description"] == "call me on 138"


async def _poll(live: Live, query: str = "") -> dict[str, Any]:
    response = await live.client.get(f"/v1/events{query}", headers=live.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _poll_until(live: Live, count: int, query: str = "") -> dict[str, Any]:
    """Poll until `count` events show. An event shows once every transaction that started
    before it has ended, in any database of the server: other test workers' open
    transactions delay it for a moment, as a long transaction would in production."""
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


def test_every_event_type_is_documented() -> None:
    concepts = (Path(__file__).resolve().parents[2] / "docs" / "concepts.md").read_text()
    missing = [t.value for t in EventType if f"`{t.value}`" not in concepts]
    assert missing == []
