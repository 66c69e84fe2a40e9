"""The worker against real, committed jobs (it works in its own transactions)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from feedback_api.config import Settings
from feedback_api.db import asyncpg_dsn
from feedback_api.jobs.errors import GiveUp, RetryLater
from feedback_api.jobs.repository import JobRepository
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.time import utcnow
from feedback_api.models import Event, IdempotencyKey, Job, JobSchedule, Ticket
from feedback_api.worker import Periodic, Worker
from feedback_api.worker_context import JobContext, Task
from tests.fixtures.database import fetch_value
from tests.fixtures.live import Live
from tests.fixtures.processes import Processes

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[Sessions]:
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)

    async def clean() -> None:
        async with sessionmaker() as session:
            await session.execute(delete(Job))
            await session.execute(delete(JobSchedule))
            await session.commit()

    await clean()
    yield sessionmaker
    await clean()


async def enqueue(sessions: Sessions, kind: str, n: int = 1, **payload: object) -> list[UUID]:
    async with sessions() as session:
        jobs = [
            await job_service.enqueue(session, kind, payload={**payload, "n": i}) for i in range(n)
        ]
        await session.commit()
    return [j.id for j in jobs]


async def jobs_left(sessions: Sessions) -> list[Job]:
    async with sessions() as session:
        return list((await session.scalars(select(Job).order_by(Job.created_at))).all())


def worker(sessions: Sessions, settings: Settings, tasks: dict[str, Task], **kw: object) -> Worker:
    # No tickers: these tests are about jobs, and tickers only slow each tick down.
    return Worker(sessions, settings, tasks=tasks, periodic=(), tickers=(), **kw)  # type: ignore[arg-type]


class TestRunningJobs:
    async def test_runs_a_committed_job_once_and_removes_it(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        seen: list[int] = []

        async def record(ctx: JobContext) -> None:
            seen.append(ctx.job.payload["n"])

        await enqueue(sessions, "test.record", 3)
        async with asyncio.timeout(10):
            await worker(sessions, settings, {"test.record": record}).run_until_idle()
        assert sorted(seen) == [0, 1, 2]
        assert await jobs_left(sessions) == []

    async def test_a_job_of_a_rolled_back_transaction_never_runs(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        async with sessions() as session:
            await job_service.enqueue(session, "test.record")
            await session.rollback()
        seen: list[JobContext] = []

        async def record(ctx: JobContext) -> None:
            seen.append(ctx)

        await worker(sessions, settings, {"test.record": record}).run_until_idle()
        assert seen == []

    async def test_two_workers_run_each_job_exactly_once(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        runs: list[tuple[str, int]] = []

        def recorder(name: str) -> Task:
            async def record(ctx: JobContext) -> None:
                await asyncio.sleep(0.01)
                runs.append((name, ctx.job.payload["n"]))

            return record

        await enqueue(sessions, "test.record", 40)
        a = worker(sessions, settings, {"test.record": recorder("a")}, concurrency=4, name="a")
        b = worker(sessions, settings, {"test.record": recorder("b")}, concurrency=4, name="b")
        async with asyncio.timeout(20):
            await asyncio.gather(a.run_until_idle(), b.run_until_idle())
        assert sorted(n for _, n in runs) == list(range(40))
        assert {name for name, _ in runs} == {"a", "b"}

    async def test_a_crashed_workers_job_runs_again_after_its_lease(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        (job_id,) = await enqueue(sessions, "test.record")
        async with sessions() as session:  # worker "dead" claims it, then dies
            (claimed,) = await JobRepository(session).claim("dead", 1, timedelta(minutes=5))
            await session.commit()
        seen: list[int] = []

        async def record(ctx: JobContext) -> None:
            seen.append(ctx.job.attempts)

        alive = worker(sessions, settings, {"test.record": record}, name="alive")
        await alive.run_until_idle()
        assert seen == []  # still leased
        async with sessions() as session:  # the lease runs out
            await session.execute(
                update(Job).where(Job.id == job_id).values(locked_until=func.now())
            )
            await session.commit()
        await alive.run_until_idle()
        assert seen == [2]
        async with sessions() as session:  # the dead worker cannot complete it any more
            assert await JobRepository(session).finish(claimed.id, "dead", 1) is False

    async def test_failures_are_retried_with_backoff_then_given_up(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        async def boom(ctx: JobContext) -> None:
            raise RuntimeError("receiver down")

        async with sessions() as session:
            await job_service.enqueue(session, "test.boom", max_attempts=2)
            await session.commit()
        w = worker(sessions, settings, {"test.boom": boom})
        await w.run_until_idle()
        (job,) = await jobs_left(sessions)
        assert job.attempts == 1
        assert job.status == "queued"
        assert job.last_error == "RuntimeError: receiver down"
        assert job.run_at > utcnow() + timedelta(seconds=5)
        async with sessions() as session:
            await session.execute(update(Job).values(run_at=func.now()))
            await session.commit()
        await w.run_until_idle()
        (job,) = await jobs_left(sessions)
        assert job.status == "dead"
        assert job.attempts == 2

    async def test_tasks_choose_their_retry_delay_or_give_up(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        async def later(ctx: JobContext) -> None:
            raise RetryLater("429", delay_seconds=120)

        async def never(ctx: JobContext) -> None:
            raise GiveUp("410 Gone")

        await enqueue(sessions, "test.later")
        await enqueue(sessions, "test.never")
        await worker(
            sessions, settings, {"test.later": later, "test.never": never}
        ).run_until_idle()
        by_kind = {j.kind: j for j in await jobs_left(sessions)}
        delay = (by_kind["test.later"].run_at - utcnow()).total_seconds()
        assert 100 < delay <= 120
        assert by_kind["test.never"].status == "dead"

    async def test_a_job_and_its_database_effects_commit_together(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        async def write_then_fail(ctx: JobContext) -> None:
            await job_service.enqueue(ctx.session, "test.follow-up")
            raise RuntimeError("after writing")

        await enqueue(sessions, "test.write")
        await worker(sessions, settings, {"test.write": write_then_fail}).run_until_idle()
        assert [j.kind for j in await jobs_left(sessions)] == ["test.write"]


class TestLeases:
    """A job may run longer than its lease (it renews it), a stale run can neither finish
    nor fail a newer claim, and a job whose every attempt killed its worker goes dead."""

    async def test_a_job_longer_than_its_lease_runs_once_and_commits(
        self, sessions: Sessions, settings: Settings, live: Live
    ) -> None:
        runs: list[str] = []
        wrote = asyncio.Event()

        def sleeper(name: str) -> Task:
            async def sleep_then_write(ctx: JobContext) -> None:
                runs.append(name)
                await asyncio.sleep(5)  # more than twice the 2 s lease
                await job_service.enqueue(ctx.session, "test.follow-up", tenant_id=live.tenant_id)
                wrote.set()

            return sleep_then_write

        (job_id,) = await enqueue(sessions, "test.sleep")
        lease = timedelta(seconds=2)
        a = worker(sessions, settings, {"test.sleep": sleeper("a")}, lease=lease, name="a")
        b = worker(sessions, settings, {"test.sleep": sleeper("b")}, lease=lease, name="b")
        stop = asyncio.Event()
        running = [asyncio.create_task(w.run(stop)) for w in (a, b)]
        async with asyncio.timeout(30):
            await wrote.wait()
            await asyncio.sleep(3)  # the commit, and a stale re-run would have started by now
            stop.set()
            await asyncio.gather(*running)
        assert len(runs) == 1
        left = await jobs_left(sessions)
        assert [j.kind for j in left] == ["test.follow-up"]  # committed, and the job is gone
        assert job_id not in {j.id for j in left}

    async def test_a_stale_run_cannot_finish_or_fail_the_newer_claim(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        (job_id,) = await enqueue(sessions, "test.record")
        async with sessions() as session:
            repo = JobRepository(session)
            (first,) = await repo.claim("w1", 1, timedelta(seconds=-1))  # lapses at once
            first_attempt = first.attempts
            (second,) = await repo.claim("w1", 1, timedelta(minutes=5))  # same worker again
            await session.commit()
        assert (first_attempt, second.attempts) == (1, 2)
        async with sessions() as session:
            repo = JobRepository(session)
            stale_fail = await repo.fail(job_id, "w1", 1, error="late", retry_at=None)
            stale_finish = await repo.finish(job_id, "w1", 1)
            stale_renew = await repo.renew(job_id, "w1", 1, timedelta(minutes=5))
            await session.commit()
        assert (stale_fail, stale_finish, stale_renew) == (False, False, False)
        (job,) = await jobs_left(sessions)
        assert (job.status, job.locked_by, job.attempts, job.last_error) == (
            "queued",
            "w1",
            2,
            None,
        )

    async def test_a_job_that_kills_its_worker_goes_dead_after_max_attempts(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        async with sessions() as session:
            await job_service.enqueue(session, "test.oom", max_attempts=3)
            await session.commit()
        ran: list[int] = []

        async def record(ctx: JobContext) -> None:
            ran.append(ctx.job.attempts)

        for attempt in range(1, 4):  # three workers each die running it
            async with sessions() as session:
                (claimed,) = await JobRepository(session).claim(
                    f"doomed-{attempt}", 1, timedelta(minutes=5)
                )
                await session.commit()
            assert claimed.attempts == attempt
            async with sessions() as session:  # ... and their leases run out
                await session.execute(update(Job).values(locked_until=func.now()))
                await session.commit()
        alive = Worker(sessions, settings, tasks={"test.oom": record}, periodic=(), tickers=())
        await alive.run_until_idle()
        await alive._schedule_periodic()  # the housekeeping that buries it
        await alive.run_until_idle()
        assert ran == []  # never claimed a fourth time
        (job,) = await jobs_left(sessions)
        assert job.status == "dead"
        assert job.last_error is not None
        assert "stopped before finishing" in job.last_error

    def test_a_real_worker_process_keeps_a_long_job_past_its_lease(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """The worker command, with a 2 s lease, runs a rebuild that is slower than that
        (a lock held elsewhere makes it wait) exactly once: a second worker process does
        not take it over."""
        env = {
            **os.environ,
            "FEEDBACK_DATABASE_URL": database_url,
            "FEEDBACK_WORKER_LEASE_SECONDS": "2",
        }
        processes = Processes(env, tmp_path)
        try:
            blocker = _LockHolder(database_url)
            blocker.hold_seconds(6)  # the job's first query waits for this lock
            _insert_job(database_url, "events.purge")
            processes.start("w1", "worker")
            processes.start("w2", "worker")
            processes.wait_for("w1", "worker_started")
            processes.wait_for("w2", "worker_started")
            deadline = time.monotonic() + 30
            while _count_jobs(database_url, "events.purge"):
                assert time.monotonic() < deadline, processes.log("w1") + processes.log("w2")
                time.sleep(0.2)
            blocker.join()
        finally:
            processes.stop_all()
        logs = processes.log("w1") + processes.log("w2")
        assert "job_lost_lease" not in logs
        assert "job_failed" not in logs


class TestShutdown:
    async def test_unfinished_jobs_are_given_back(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        started = asyncio.Event()

        async def slow(ctx: JobContext) -> None:
            started.set()
            await asyncio.sleep(60)

        await enqueue(sessions, "test.slow")
        w = worker(sessions, settings, {"test.slow": slow}, grace_seconds=0.2, poll_seconds=0.05)
        stop = asyncio.Event()
        running = asyncio.create_task(w.run(stop))
        async with asyncio.timeout(10):
            await started.wait()
            stop.set()
            await running
        (job,) = await jobs_left(sessions)
        assert job.locked_by is None
        assert job.attempts == 0

    def test_the_worker_command_stops_on_sigterm(self, database_url: str) -> None:
        env = {**os.environ, "FEEDBACK_DATABASE_URL": database_url}
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedback_api", "worker", "--concurrency", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # wait until it is really working
                if b"worker_started" in line:
                    break
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, output.decode()
        assert b"worker_stopped" in output


class TestPeriodic:
    async def test_one_job_per_slot_however_many_workers(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        periodic = (Periodic("test.tick", "test.tick", timedelta(hours=1)),)
        ticks: list[int] = []

        async def tick(ctx: JobContext) -> None:
            ticks.append(1)

        workers = [
            Worker(sessions, settings, tasks={"test.tick": tick}, periodic=periodic, name=f"w{i}")
            for i in range(3)
        ]
        for w in workers:
            await w._ensure_schedules()
        await asyncio.gather(*[w.run_until_idle() for w in workers])
        await asyncio.gather(*[w.run_until_idle() for w in workers])
        assert ticks == [1]
        async with sessions() as session:
            (schedule,) = (await session.scalars(select(JobSchedule))).all()
        assert schedule.next_run_at > utcnow()


class TestRetention:
    async def test_old_events_and_expired_idempotency_keys_are_purged(
        self, sessions: Sessions, settings: Settings, live: Live
    ) -> None:
        from feedback_api.worker import TASKS

        await live.client.post(
            "/v1/responses",
            json={"kind": "nps", "score": 1, "channel": "crm"},
            headers={**live.headers, "Idempotency-Key": "k1"},
        )
        await live.client.post(
            "/v1/responses",
            json={"kind": "nps", "score": 2, "channel": "crm"},
            headers={**live.headers, "Idempotency-Key": "k2"},
        )
        async with sessions() as session:
            first = (
                await session.scalars(
                    select(Event).where(Event.tenant_id == live.tenant_id).order_by(Event.xid)
                )
            ).first()
            assert first is not None
            await session.execute(
                update(Event)
                .where(Event.id == first.id)
                .values(created_at=utcnow() - timedelta(days=31))
            )
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == "k1")
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        await enqueue(sessions, "events.purge")
        await enqueue(sessions, "idempotency.purge")
        await Worker(sessions, settings, tasks=TASKS, periodic=()).run_until_idle()
        async with sessions() as session:
            events = (
                await session.scalars(select(Event).where(Event.tenant_id == live.tenant_id))
            ).all()
            keys = (
                await session.scalars(
                    select(IdempotencyKey.key).where(IdempotencyKey.tenant_id == live.tenant_id)
                )
            ).all()
        assert [e.data["score"] for e in events] == [2]
        assert list(keys) == ["k2"]


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.ForeignKeyViolationError("tenant deleted meanwhile"),
        RuntimeError("a bug in the ticker"),
    ],
)
async def test_a_failing_ticker_does_not_stop_the_worker(
    sessions: Sessions, settings: Settings, error: Exception
) -> None:
    ticks: list[int] = []

    async def broken(session: AsyncSession, _settings: Settings) -> int:
        ticks.append(1)
        raise error

    seen: list[int] = []

    async def record(ctx: JobContext) -> None:
        seen.append(ctx.job.payload["n"])

    await enqueue(sessions, "test.record", 2)
    w = Worker(sessions, settings, tasks={"test.record": record}, periodic=(), tickers=(broken,))
    async with asyncio.timeout(10):
        await w.run_until_idle()
    assert sorted(seen) == [0, 1]
    assert ticks  # it ran, failed, and the jobs still ran


async def test_the_sla_job_breaches_overdue_tickets(
    sessions: Sessions, settings: Settings, live: Live
) -> None:
    from feedback_api.worker import PERIODIC, TASKS

    assert "tickets.check_sla" in {p.kind for p in PERIODIC}
    created = await live.client.post(
        "/v1/responses",
        json={"kind": "nps", "score": 1, "channel": "crm", "customer": "c-1"},
        headers=live.headers,
    )
    assert created.status_code == 201
    async with sessions() as session:
        # As if the ticket had opened a day ago and nobody had looked since.
        ago = utcnow() - timedelta(days=1)
        await session.execute(
            update(Ticket)
            .where(Ticket.tenant_id == live.tenant_id)
            .values(
                first_response_due_at=ago,
                first_response_warn_at=ago,
                next_sla_check_at=ago,
            )
        )
        await session.commit()
    await enqueue(sessions, "tickets.check_sla")
    await Worker(sessions, settings, tasks=TASKS, periodic=(), tickers=()).run_until_idle()
    async with sessions() as session:
        ticket = (
            await session.scalars(select(Ticket).where(Ticket.tenant_id == live.tenant_id))
        ).one()
        types = (
            await session.scalars(
                select(Event.type)
                .where(Event.tenant_id == live.tenant_id, Event.type.startswith("ticket."))
                .order_by(Event.xid, Event.id)
            )
        ).all()
    assert ticket.first_response_breached_at is not None
    assert ticket.priority == "urgent"
    assert ticket.next_sla_check_at is not None  # the resolution clock still runs
    assert list(types) == [
        "ticket.created",
        "ticket.sla_warning",
        "ticket.sla_breached",
        "ticket.escalated",
    ]


def _insert_job(database_url: str, kind: str) -> None:
    fetch_value(
        database_url,
        "INSERT INTO jobs (id, kind, max_attempts) VALUES (gen_random_uuid(), $1, 3)",
        kind,
    )


def _count_jobs(database_url: str, kind: str) -> int:
    return int(str(fetch_value(database_url, "SELECT count(*) FROM jobs WHERE kind = $1", kind)))


class _LockHolder:
    """Holds a row lock on an expired event in another thread, so that the purge's DELETE
    waits for it: a job that takes as long as we say, in a real worker process."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._thread: threading.Thread | None = None
        self._locked = threading.Event()

    def hold_seconds(self, seconds: float) -> None:
        async def hold() -> None:
            conn = await asyncpg.connect(asyncpg_dsn(self.database_url))
            try:
                tenant = await conn.fetchval(
                    "INSERT INTO tenants (id, name, slug) VALUES "
                    "(gen_random_uuid(), 'Lease test', 'lease-' || gen_random_uuid()) "
                    "RETURNING id"
                )
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO events (tenant_id, id, type, occurred_at, data, created_at) "
                        "VALUES ($1, gen_random_uuid(), 'test.old', now(), '{}', "
                        "now() - interval '400 days')",
                        tenant,
                    )
                async with conn.transaction():
                    await conn.execute("SELECT 1 FROM events WHERE type = 'test.old' FOR UPDATE")
                    self._locked.set()
                    await asyncio.sleep(seconds)
                await conn.execute("DELETE FROM tenants WHERE id = $1", tenant)
            finally:
                await conn.close()

        self._thread = threading.Thread(target=lambda: asyncio.run(hold()))
        self._thread.start()
        assert self._locked.wait(10)

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(30)
