"""The worker: claims due jobs and runs them; schedules periodic jobs.

Delivery is at-least-once: a job's database effects and its completion commit together, so a
job whose worker died mid-way (its lease ran out) runs again and, for database work, leaves no
trace of the first try. Tasks with outside effects (HTTP calls) must tolerate a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedback_api.config import Settings
from feedback_api.events.tasks import purge_expired_events
from feedback_api.idempotency.tasks import purge_expired_keys
from feedback_api.integrity import tasks as integrity_tasks
from feedback_api.invitations import tasks as invitation_tasks
from feedback_api.jobs.errors import GiveUp, RetryLater
from feedback_api.jobs.repository import NOTIFY_CHANNEL, JobRepository
from feedback_api.kit.time import utcnow
from feedback_api.metrics import tasks as metric_tasks
from feedback_api.models import Job
from feedback_api.tickets import tasks as ticket_tasks
from feedback_api.webhooks import tasks as webhook_tasks
from feedback_api.worker_context import JobContext, Task

logger = structlog.get_logger("feedback_api.worker")

JOBS = Counter("feedback_jobs_total", "Jobs run, by kind and outcome.", ["kind", "outcome"])
JOB_SECONDS = Histogram("feedback_job_duration_seconds", "Time to run a job.", ["kind"])
QUEUE_DEPTH = Gauge("feedback_jobs_due", "Jobs due and not yet done.")
QUEUE_LAG = Gauge("feedback_jobs_lag_seconds", "How overdue the oldest due job is.")

# How long a claimed job is ours. Tasks are short (a webhook call times out after 15 s);
# after a crash, its jobs run again once this has passed.
LEASE = timedelta(seconds=60)

TASKS: dict[str, Task] = {
    "events.purge": purge_expired_events,
    "idempotency.purge": purge_expired_keys,
    "integrity.patterns": integrity_tasks.patterns,
    "metrics.rebuild": metric_tasks.rebuild,
    "tickets.check_sla": ticket_tasks.check_sla,
    "webhooks.deliver": webhook_tasks.deliver,
}
# Run on ticks (at most every TICK_SECONDS), each in its own transaction; they return how
# much work they created.
TICK_SECONDS = 0.05
Ticker = Callable[[AsyncSession], Awaitable[int]]
TICKERS: tuple[Ticker, ...] = (
    invitation_tasks.process_due,
    webhook_tasks.dispatch,
    integrity_tasks.screen,
    metric_tasks.fold,
)


@dataclass(frozen=True, slots=True)
class Periodic:
    name: str
    kind: str
    every: timedelta


PERIODIC: tuple[Periodic, ...] = (
    Periodic("events.purge", "events.purge", timedelta(hours=1)),
    Periodic("idempotency.purge", "idempotency.purge", timedelta(hours=1)),
    Periodic("integrity.patterns", "integrity.patterns", timedelta(minutes=15)),
    Periodic("tickets.check_sla", "tickets.check_sla", timedelta(minutes=1)),
)


def retry_delay(attempts: int) -> float:
    """Exponential backoff with ±20 % jitter: 10 s, 20 s, 40 s … capped at one hour."""
    base: float = min(10 * 2 ** max(attempts - 1, 0), 3600)
    return base * random.uniform(0.8, 1.2)


class Worker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        listen_dsn: str | None = None,
        concurrency: int | None = None,
        tasks: Mapping[str, Task] = TASKS,
        periodic: Sequence[Periodic] = PERIODIC,
        tickers: Sequence[Ticker] = TICKERS,
        lease: timedelta = LEASE,
        poll_seconds: float = 1.0,
        grace_seconds: float = 20.0,
        name: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.listen_dsn = listen_dsn
        self.concurrency = concurrency or settings.worker_concurrency
        self.tasks = tasks
        self.periodic = periodic
        self.tickers = tickers
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]
        self._wake = asyncio.Event()
        self._last_periodic = 0.0
        self._last_ticks = 0.0
        self._ticks_deferred = False
        self._running: dict[asyncio.Task[None], Job] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then finish in-flight jobs (or give them back)."""
        listener = asyncio.create_task(self._listen(stop)) if self.listen_dsn else None
        await self._ensure_schedules()
        logger.info("worker_started", worker=self.name, concurrency=self.concurrency)
        try:
            while not stop.is_set():
                await self.tick()
                self._wake.clear()
                waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
                await asyncio.wait(
                    [*waiters, *self._running],
                    # A deferred tick (rate limit) must still run soon, wake-up or not.
                    timeout=TICK_SECONDS if self._ticks_deferred else self.poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for waiter in waiters:
                    waiter.cancel()
        finally:
            await self._drain()
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            logger.info("worker_stopped", worker=self.name)

    async def tick(self, *, force: bool = False) -> int:
        """Schedule due periodic jobs, run the tickers, and start as many due jobs as there
        is room for."""
        now = time.monotonic()
        # Ticks run on every wake-up (a job finished, a NOTIFY came): under load that is
        # hundreds of times a second, so the housekeeping in them is rate-limited.
        if force or now - self._last_periodic >= 1.0:
            self._last_periodic = now
            await self._schedule_periodic()
        self._ticks_deferred = not force and now - self._last_ticks < TICK_SECONDS
        if not self._ticks_deferred:
            self._last_ticks = now
            for ticker in self.tickers:
                try:
                    async with self.sessionmaker() as session:
                        await ticker(session)
                        await session.commit()
                except (asyncpg.PostgresError, SQLAlchemyError) as exc:
                    # A ticker's transaction rolled back (e.g. its tenant was deleted under
                    # it): its work is still pending and the next tick retries it.
                    logger.warning(
                        "ticker_failed", ticker=ticker.__qualname__, error_type=type(exc).__name__
                    )
                except Exception:
                    # A bug in one ticker must not stop the worker: jobs and the other
                    # tickers go on, and the log has the traceback.
                    logger.exception("ticker_crashed", ticker=ticker.__qualname__)
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        async with self.sessionmaker() as session:
            jobs = await JobRepository(session).claim(self.name, free, self.lease)
            await session.commit()
        for job in jobs:
            task = asyncio.create_task(self._run_job(job))
            self._running[task] = job
            task.add_done_callback(self._running.pop)
        return len(jobs)

    async def run_until_idle(self) -> None:
        """Run due jobs until none are left or running (tests, one-off runs); bound it with
        `asyncio.timeout`."""
        while True:
            started = await self.tick(force=True)
            if self._running:
                await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)
            elif not started:
                return

    async def _run_job(self, job: Job) -> None:
        task = self.tasks.get(job.kind)
        started = time.perf_counter()
        outcome = "done"
        try:
            if task is None:
                raise GiveUp(f"no task for kind {job.kind!r}")
            async with self.sessionmaker() as session:
                await task(JobContext(job=job, session=session, settings=self.settings))
                if await JobRepository(session).finish(job.id, self.name):
                    await session.commit()
                else:  # our lease lapsed and another worker owns the job now
                    await session.rollback()
                    outcome = "lost_lease"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = await self._record_failure(job, exc)
        finally:
            JOBS.labels(job.kind, outcome).inc()
            JOB_SECONDS.labels(job.kind).observe(time.perf_counter() - started)

    async def _record_failure(self, job: Job, exc: Exception) -> str:
        if isinstance(exc, GiveUp) or job.attempts >= job.max_attempts:
            retry_at = None
        else:
            delay = exc.delay_seconds if isinstance(exc, RetryLater) else retry_delay(job.attempts)
            retry_at = utcnow() + timedelta(seconds=delay)
        error = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "job_failed",
            kind=job.kind,
            job_id=str(job.id),
            attempts=job.attempts,
            error_type=type(exc).__name__,
            retry_at=retry_at.isoformat() if retry_at else None,
        )
        async with self.sessionmaker() as session:
            await JobRepository(session).fail(job.id, self.name, error=error, retry_at=retry_at)
            await session.commit()
        return "retry" if retry_at else "dead"

    async def _drain(self) -> None:
        if not self._running:
            return
        _, pending = await asyncio.wait(list(self._running), timeout=self.grace_seconds)
        unfinished = [self._running[t] for t in pending if t in self._running]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if unfinished:
            async with self.sessionmaker() as session:
                await JobRepository(session).release([j.id for j in unfinished], self.name)
                await session.commit()
            logger.info("jobs_released", count=len(unfinished))

    async def _ensure_schedules(self) -> None:
        if not self.periodic:
            return
        async with self.sessionmaker() as session:
            now = utcnow()
            await JobRepository(session).ensure_schedules({p.name: now for p in self.periodic})
            await session.commit()

    async def _schedule_periodic(self) -> None:
        if not self.periodic:
            return
        now = utcnow()
        async with self.sessionmaker() as session:
            repo = JobRepository(session)
            for periodic in self.periodic:
                if await repo.advance_schedule(periodic.name, now, _next_slot(now, periodic)):
                    await repo.add(
                        kind=periodic.kind, tenant_id=None, payload={}, run_at=None, max_attempts=3
                    )
            depth, lag = await repo.stats()
            await session.commit()
        QUEUE_DEPTH.set(depth)
        QUEUE_LAG.set(lag)

    async def _listen(self, stop: asyncio.Event) -> None:
        """Wake up on NOTIFY (sent when a job is enqueued) instead of waiting for the next
        poll; reconnects with backoff, and polling covers the gaps."""
        delay = 1.0
        while not stop.is_set():
            try:
                conn: Any = await asyncpg.connect(self.listen_dsn)
                try:
                    await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
                    delay = 1.0
                    while not stop.is_set() and not conn.is_closed():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=1)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError) as exc:
                logger.warning("worker_listen_failed", error_type=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)


def _next_slot(now: datetime, periodic: Periodic) -> datetime:
    """The next multiple of `every` since the epoch: all workers agree on slot boundaries."""
    step = periodic.every.total_seconds()
    epoch = now.timestamp()
    return datetime.fromtimestamp((epoch // step + 1) * step, tz=now.tzinfo)
