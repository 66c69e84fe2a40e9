"""Classification at ingest against a concurrent change of the dictionary, in really
committed transactions: an ingest that read the old version and commits late must not keep
its old classification, and neither side waits on the other."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select, update

from feedback_api.insights import service as insight_module
from feedback_api.insights.repository import ThemeRepository
from feedback_api.insights.service import theme as theme_service
from feedback_api.jobs.errors import RetryLater
from feedback_api.models import Response
from feedback_api.responses.hooks import StoredResponse
from tests.fixtures.live import Live

COMMENT = "the mirror is far too dark"


async def respond(live: Live, **extra: Any) -> UUID:
    body = {"kind": "nps", "score": 3, "channel": "app", **extra}
    answer = await live.client.post("/v1/responses", json=body, headers=live.headers)
    assert answer.status_code == 201, answer.text
    return UUID(answer.json()["id"])


async def put_theme(live: Live) -> None:
    answer = await live.client.put(
        "/v1/themes/light", json={"keywords": ["mirror"]}, headers=live.headers
    )
    assert answer.status_code == 201, answer.text


async def reclassify(live: Live) -> None:
    async with live.sessionmaker() as session:
        while not await theme_service.reclassify_step(session, live.tenant_id):
            await session.commit()
        await session.commit()


async def mentions(live: Live, response_id: UUID) -> list[str]:
    async with live.sessionmaker() as session:
        return await ThemeRepository(session).mentions_of(live.tenant_id, response_id)


async def test_a_late_commit_with_the_old_dictionary_is_reclassified(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insight_module, "SETTLE_SECONDS", 0.3)
    response_id = await respond(live)
    async with live.sessionmaker() as ingest:
        # An ingest transaction (an edited comment) that classifies before the change ...
        row = (await ingest.scalars(select(Response).where(Response.id == response_id))).one()
        await ingest.execute(
            update(Response).where(Response.id == response_id).values(comment=COMMENT)
        )
        stored = StoredResponse.of(row, None)
        stored = StoredResponse(**{**_fields(stored), "comment": COMMENT, "replaced": True})
        await insight_module.on_stored(ingest, live.tenant_id, [stored])

        # ... the change does not wait for it (a lock here would hang the request) ...
        await asyncio.wait_for(put_theme(live), timeout=5)

        # ... and the pass does not start while it may still commit its old classification.
        with pytest.raises(RetryLater):
            await reclassify(live)
        await ingest.commit()

    assert await mentions(live, response_id) == []  # classified with the old (empty) one
    await reclassify(live)
    assert await mentions(live, response_id) == ["light"]


async def test_a_pass_waits_only_for_the_transactions_open_when_it_started(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest that goes on during the wait reads the new version; the pass waits for the
    ones it found, not for a stream of new ones (no starvation under load)."""
    await put_theme(live)
    first = await respond(live, comment=COMMENT)
    monkeypatch.setattr(insight_module, "SETTLE_SECONDS", 10.0)
    stop = asyncio.Event()
    ingested: list[UUID] = []

    async def ingest() -> None:
        while not stop.is_set():
            ingested.append(await respond(live, comment=COMMENT))

    writers = [asyncio.create_task(ingest()) for _ in range(4)]
    try:
        await asyncio.sleep(0.2)
        await put_theme_again(live)
        await asyncio.wait_for(reclassify(live), timeout=8)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert ingested
    for response_id in [first, *ingested]:
        assert await mentions(live, response_id) == ["dark", "light"]


async def put_theme_again(live: Live) -> None:
    answer = await live.client.put(
        "/v1/themes/dark", json={"keywords": ["too dark"]}, headers=live.headers
    )
    assert answer.status_code == 201, answer.text


def _fields(stored: StoredResponse) -> dict[str, Any]:
    return {name: getattr(stored, name) for name in StoredResponse.__slots__}


async def test_a_second_job_leaves_the_pass_to_the_one_holding_it(live: Live) -> None:
    """One job per change of the dictionary: while one job's step holds the dictionary's
    row, another job of the tenant stops at once instead of queueing behind it, and the
    holder's job finishes the pass with the latest version."""
    response_id = await respond(live, comment=COMMENT)
    await put_theme(live)
    async with live.sessionmaker() as holder:
        assert await ThemeRepository(holder).state(live.tenant_id, lock=True) is not None
        async with live.sessionmaker() as second:
            stopped = await asyncio.wait_for(
                theme_service.reclassify_step(second, live.tenant_id), timeout=5
            )
            await second.commit()
        assert stopped is True
        assert await mentions(live, response_id) == []  # nothing done by the second job
        await holder.commit()
    await reclassify(live)  # the holder's job carries on
    assert await mentions(live, response_id) == ["light"]
