"""`events.purge` in batches, each committed, against real committed events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.events import tasks as event_tasks
from feedback_api.models import Job
from feedback_api.worker import TASKS, Worker
from feedback_api.worker_context import JobContext
from tests.fixtures.live import Live

Checkpoint = Callable[[AsyncSession], Awaitable[None]]


@pytest.fixture
async def no_jobs(live: Live) -> AsyncIterator[None]:
    async def clean() -> None:
        async with live.sessionmaker() as session:
            await session.execute(delete(Job))
            await session.commit()

    await clean()
    yield
    await clean()


async def add_events(live: Live, count: int, age: timedelta) -> set[UUID]:
    """`count` events created `age` ago (a second apart, so the oldest go first)."""
    async with live.sessionmaker() as session:
        ids = (
            await session.scalars(
                text(
                    "INSERT INTO events (tenant_id, id, type, occurred_at, data, created_at) "
                    "SELECT :t, gen_random_uuid(), 'response.created', now(), '{}', "
                    "now() - (:age - n * interval '1 second') "
                    "FROM generate_series(1, :count) AS n RETURNING id"
                ),
                {"t": live.tenant_id, "age": age, "count": count},
            )
        ).all()
        await session.commit()
    return set(ids)


async def events_left(live: Live) -> set[UUID]:
    async with live.sessionmaker() as session:
        ids = await session.scalars(
            text("SELECT id FROM events WHERE tenant_id = :t"), {"t": live.tenant_id}
        )
        return set(ids.all())


async def run_purge(live: Live, settings: Settings, checkpoint: Checkpoint | None = None) -> None:
    job = Job(kind="events.purge", tenant_id=None, payload={})
    async with live.sessionmaker() as session:
        ctx = JobContext(job=job, session=session, settings=settings)
        if checkpoint is not None:
            ctx = JobContext(job=job, session=session, settings=settings, checkpoint_fn=checkpoint)
        await TASKS["events.purge"](ctx)
        await session.commit()


async def test_purge_deletes_in_committed_batches_and_keeps_unexpired_events(
    live: Live, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_tasks, "PURGE_BATCH", 10, raising=False)
    expired = await add_events(live, 25, timedelta(days=31))
    kept = await add_events(live, 3, timedelta(days=29)) | await add_events(
        live, 2, timedelta(minutes=1)
    )
    seen: list[int] = []

    async def checkpoint(session: AsyncSession) -> None:
        await session.commit()
        # from another connection: the batch is committed, the rest still there
        seen.append(len(await events_left(live) & expired))

    await run_purge(live, settings, checkpoint)
    assert seen == [15, 5]
    assert await events_left(live) == kept


@pytest.mark.usefixtures("no_jobs")
async def test_a_backlog_beyond_one_run_is_left_to_a_follow_up_job(
    live: Live, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_tasks, "PURGE_BATCH", 10, raising=False)
    monkeypatch.setattr(event_tasks, "PURGE_BATCHES_PER_RUN", 2, raising=False)
    expired = await add_events(live, 25, timedelta(days=40))
    kept = await add_events(live, 4, timedelta(days=2))
    await run_purge(live, settings)
    assert len(await events_left(live) & expired) == 5
    async with live.sessionmaker() as session:
        follow_up = await session.scalar(
            text("SELECT count(*) FROM jobs WHERE kind = 'events.purge'")
        )
    assert follow_up == 1
    worker = Worker(live.sessionmaker, settings, tasks=TASKS, periodic=(), tickers=())
    await worker.run_until_idle()
    assert await events_left(live) == kept


async def test_nothing_expired_is_one_short_statement(live: Live, settings: Settings) -> None:
    kept = await add_events(live, 3, timedelta(days=10))
    calls: list[int] = []

    async def checkpoint(session: AsyncSession) -> None:
        calls.append(1)
        await session.commit()

    await run_purge(live, settings, checkpoint)
    assert calls == []
    assert await events_left(live) == kept
