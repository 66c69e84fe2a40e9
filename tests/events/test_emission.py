"""Events are written in the transaction of the change they describe: one per stored
item, none for a replay or a conflict, and every event type documented."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import EventType
from feedback_api.models import Event
from tests.fixtures.auth import TenantHandle
from tests.fixtures.paths import ROOT

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


def test_every_event_type_is_documented() -> None:
    concepts = (ROOT / "docs" / "concepts.md").read_text()
    missing = [t.value for t in EventType if f"`{t.value}`" not in concepts]
    assert missing == []
