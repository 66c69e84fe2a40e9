"""One poisoned item must not stop a batch, a job or another tenant: real committed data,
a real worker, failures injected in the database as a bug or bad data would raise them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from feedback_api.config import Settings
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.poison import is_transient, isolate
from feedback_api.kit.time import utcnow
from feedback_api.models import Job, JobSchedule, Ticket, WorkFailure
from feedback_api.worker import TASKS, Worker
from tests.fixtures.live import Live

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[Sessions]:
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker() as session:
        await session.execute(delete(Job))
        await session.execute(delete(JobSchedule))
        await session.commit()
    yield sessionmaker
    async with sessionmaker() as session:
        await session.execute(delete(Job))
        await session.commit()


class TestIsolate:
    async def test_finds_the_poisoned_items_and_does_the_rest(self, session: AsyncSession) -> None:
        await session.execute(text("CREATE TEMP TABLE done (n int CHECK (n % 7 <> 3))"))
        aside: list[int] = []

        async def work(part: Sequence[int]) -> None:
            for n in part:
                await session.execute(text("INSERT INTO done VALUES (:n)"), {"n": n})

        async def set_aside(n: int, exc: Exception) -> None:
            assert isinstance(exc, DBAPIError)
            aside.append(n)

        count = await isolate(session, "test", list(range(40)), work, set_aside)
        done = (await session.scalars(text("SELECT n FROM done ORDER BY n"))).all()
        assert aside == [3, 10, 17, 24, 31, 38]
        assert count == 6
        assert list(done) == [n for n in range(40) if n % 7 != 3]

    async def test_a_broken_connection_is_not_poison(self, session: AsyncSession) -> None:
        async def work(part: Sequence[int]) -> None:
            raise ConnectionResetError("the database went away")

        async def set_aside(n: int, exc: Exception) -> None:
            raise AssertionError("nothing may be set aside for a transient failure")

        with pytest.raises(ConnectionResetError):
            await isolate(session, "test", [1, 2, 3], work, set_aside)
        assert is_transient(ConnectionResetError())
        assert not is_transient(ValueError())


INJECT = """
CREATE FUNCTION test_poison_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tenant_id = '{tenant}'::uuid THEN RAISE EXCEPTION 'injected SLA poison'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_poison_ticket BEFORE INSERT ON ticket_entries
    FOR EACH ROW EXECUTE FUNCTION test_poison_ticket();
"""
REMOVE = "DROP TRIGGER test_poison_ticket ON ticket_entries; DROP FUNCTION test_poison_ticket();"


async def test_one_tenants_poisoned_ticket_does_not_stop_the_sla_job(
    sessions: Sessions, settings: Settings, live: Live, other_live: Live
) -> None:
    for handle in (live, other_live):
        created = await handle.client.post(
            "/v1/responses",
            json={"kind": "nps", "score": 1, "channel": "crm", "customer": "c-1"},
            headers=handle.headers,
        )
        assert created.status_code == 201
    ago = utcnow() - timedelta(days=1)
    async with sessions() as session:
        await session.execute(
            update(Ticket)
            .where(Ticket.tenant_id.in_([live.tenant_id, other_live.tenant_id]))
            .values(first_response_due_at=ago, first_response_warn_at=ago, next_sla_check_at=ago)
        )
        for statement in INJECT.format(tenant=live.tenant_id).split(";\nCREATE TRIGGER"):
            if not statement.startswith("\nCREATE FUNCTION"):
                statement = "CREATE TRIGGER" + statement
            await session.execute(text(statement))
        await session.commit()
    try:
        async with sessions() as session:
            await job_service.enqueue(session, "tickets.check_sla")
            await session.commit()
        async with asyncio.timeout(30):
            await Worker(sessions, settings, tasks=TASKS, periodic=(), tickers=()).run_until_idle()
    finally:
        async with sessions() as session:
            for statement in REMOVE.split("; "):
                await session.execute(text(statement))
            await session.commit()
    async with sessions() as session:
        tickets = {
            t.tenant_id: t
            for t in await session.scalars(
                select(Ticket).where(Ticket.tenant_id.in_([live.tenant_id, other_live.tenant_id]))
            )
        }
        failures = (
            await session.scalars(
                select(WorkFailure).where(WorkFailure.tenant_id == live.tenant_id)
            )
        ).all()
        jobs = (await session.scalars(select(Job))).all()
    healthy, poisoned = tickets[other_live.tenant_id], tickets[live.tenant_id]
    assert healthy.first_response_breached_at is not None  # the other tenant's loop goes on
    assert poisoned.first_response_breached_at is None
    assert poisoned.next_sla_check_at is not None
    assert poisoned.next_sla_check_at > utcnow() + timedelta(minutes=50)  # set aside an hour
    (failure,) = failures
    assert (failure.source, failure.subject_id) == ("tickets.check_sla", str(poisoned.id))
    assert "injected SLA poison" in failure.error
    assert list(jobs) == []  # the job itself succeeded
