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
from uuid import UUID

import asyncpg
import structlog
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedback_api import assembly
from feedback_api.compat.delighted import autopilot as delighted_autopilot
from feedback_api.config import Settings
from feedback_api.events.tasks import purge_expired_events
from feedback_api.idempotency.tasks import purge_expired_keys
from feedback_api.insights import tasks as insight_tasks
from feedback_api.integrity import tasks as integrity_tasks
from feedback_api.invitations import tasks as invitation_tasks
from feedback_api.jobs.errors import GiveUp, RetryLater
from feedback_api.jobs.repository import NOTIFY_CHANNEL, JobRepository
from feedback_api.kit.poison import WORK_FAILURES
from feedback_api.kit.time import utcnow
from feedback_api.metrics import tasks as metric_tasks
from feedback_api.models import Job
from feedback_api.privacy import tasks as privacy_tasks
from feedback_api.responses import tasks as response_tasks
from feedback_api.responses.hooks import REPLAY_JOB
from feedback_api.tickets import tasks as ticket_tasks
from feedback_api.webhooks import tasks as webhook_tasks
from feedback_api.worker_context import JobContext, LostClaim, Task

logger = structlog.get_logger("feedback_api.worker")

JOBS = Counter("feedback_jobs_total", "Jobs run, by kind and outcome.", ["kind", "outcome"])
JOB_SECONDS = Histogram("feedback_job_duration_seconds", "Time to run a job.", ["kind"])
QUEUE_DEPTH = Gauge("feedback_jobs_due", "Jobs due and not yet done.")
QUEUE_LAG = Gauge("feedback_jobs_lag_seconds", "How overdue the oldest due job is.")

# How long a claimed job is ours without news from us. A running job renews it every third
# of it (the heartbeat), so a job may run for as long as it needs; after a crash, its jobs
# run again once this has passed. FEEDBACK_WORKER_LEASE_SECONDS sets it.
LEASE = timedelta(seconds=60)

TASKS: dict[str, Task] = {
    "events.purge": purge_expired_events,
    "idempotency.purge": purge_expired_keys,
    "insights.reclassify": insight_tasks.reclassify,
    "insights.rising": insight_tasks.rising,
    "integrity.patterns": integrity_tasks.patterns,
    "metrics.rebuild": metric_tasks.rebuild,
    "privacy.forget_notice": privacy_tasks.forget_notice,
    REPLAY_JOB: response_tasks.replay_hook,
    "tickets.check_sla": ticket_tasks.check_sla,
    "webhooks.deliver": webhook_tasks.deliver,
}
# Run on ticks (at most every TICK_SECONDS), each in its own transaction; they return how
# much work they created.
TICK_SECONDS = 0.05
# A ticker gets the worker's settings, as a task gets them in its JobContext.
Ticker = Callable[[AsyncSession, Settings], Awaitable[int]]
TICKERS: tuple[Ticker, ...] = (
    invitation_tasks.process_due,
    delighted_autopilot.schedule_due,
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
    Periodic("insights.rising", "insights.rising", timedelta(hours=1)),
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
        lease: timedelta | None = None,
        poll_seconds: float = 1.0,
        grace_seconds: float = 20.0,
        name: str | None = None,
    ) -> None:
        assembly.connect()  # a job stores responses too (answers, imports): same reactions
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.listen_dsn = listen_dsn
        self.concurrency = concurrency or settings.worker_concurrency
        self.tasks = tasks
        self.periodic = periodic
        self.tickers = tickers
        self.lease = lease or timedelta(seconds=settings.worker_lease_seconds)
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
                await self._run_ticker(ticker)
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

    async def _run_ticker(self, ticker: Ticker) -> None:
        name = ticker.__qualname__
        try:
            async with self.sessionmaker() as session:
                await ticker(session, self.settings)
                await session.commit()
        except Exception as exc:
            # The tick's transaction rolled back and its work is still pending: the next
            # tick retries it. Tickers set poisoned items aside themselves (kit.poison), so
            # what lands here is a run that failed as a whole (the database went away, a
            # tenant was deleted under it, a bug outside the per-item work): a bug in one
            # ticker must not stop the worker, and the log has the traceback.
            WORK_FAILURES.labels(name, "run").inc()
            logger.exception("ticker_failed", ticker=name, error_type=type(exc).__name__)

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
        claim = (job.id, self.name, job.attempts)
        started = time.perf_counter()
        outcome = "done"
        lost = asyncio.Event()
        stop_heartbeat = asyncio.Event()
        running: list[asyncio.Task[None]] = []

        def on_lost() -> None:
            lost.set()
            for work in running:
                work.cancel()

        async def checkpoint(session: AsyncSession) -> None:
            if lost.is_set() or not await JobRepository(session).renew(*claim, self.lease):
                raise LostClaim(f"job {job.id} attempt {job.attempts} is no longer ours")
            await session.commit()

        heartbeat = asyncio.create_task(self._heartbeat(claim, on_lost, stop_heartbeat))
        try:
            if task is None:
                raise GiveUp(f"no task for kind {job.kind!r}")
            async with self.sessionmaker() as session:
                ctx = JobContext(
                    job=job, session=session, settings=self.settings, checkpoint_fn=checkpoint
                )
                running.append(asyncio.ensure_future(task(ctx)))
                try:
                    await running[0]
                finally:
                    stop_heartbeat.set()
                    await heartbeat
                if not lost.is_set() and await JobRepository(session).finish(*claim):
                    await session.commit()
                else:  # another worker owns the job now: nothing of this run may stay
                    await session.rollback()
                    outcome = "lost_lease"
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not lost.is_set() or (current is not None and current.cancelling()):
                raise  # shutdown
            outcome = "lost_lease"  # the heartbeat stopped the work
        except LostClaim:
            outcome = "lost_lease"
        except Exception as exc:
            outcome = await self._record_failure(job, claim, exc)
        finally:
            stop_heartbeat.set()
            if not heartbeat.done():
                heartbeat.cancel()
            if outcome == "lost_lease":
                logger.warning("job_lost_lease", kind=job.kind, job_id=str(job.id))
            JOBS.labels(job.kind, outcome).inc()
            JOB_SECONDS.labels(job.kind).observe(time.perf_counter() - started)

    async def _heartbeat(
        self, claim: tuple[UUID, str, int], on_lost: Callable[[], None], stop: asyncio.Event
    ) -> None:
        """Renew a running job's lease every third of it, so a long job is never taken for a
        dead one. If the claim is gone (we could not renew in time and another worker took
        the job), stop the job: its work could not commit anyway."""
        interval = self.lease.total_seconds() / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                return
            try:
                async with self.sessionmaker() as session:
                    ours = await JobRepository(session).renew(*claim, self.lease)
                    await session.commit()
            except Exception as exc:  # the database is away: try again at the next beat
                logger.warning(
                    "job_heartbeat_failed", job_id=str(claim[0]), error_type=type(exc).__name__
                )
                continue
            if not ours:
                on_lost()
                return

    async def _record_failure(self, job: Job, claim: tuple[UUID, str, int], exc: Exception) -> str:
        if isinstance(exc, GiveUp) or job.attempts >= job.max_attempts:
            retry_at = None
        else:
            delay = exc.delay_seconds if isinstance(exc, RetryLater) else retry_delay(job.attempts)
            retry_at = utcnow() + timedelta(seconds=delay)
        error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, RetryLater):  # RetryLater is a task's schedule, not a fault
            WORK_FAILURES.labels(job.kind, "run").inc()
            logger.exception(
                "job_failed",
                kind=job.kind,
                job_id=str(job.id),
                attempts=job.attempts,
                error_type=type(exc).__name__,
                retry_at=retry_at.isoformat() if retry_at else None,
            )
        async with self.sessionmaker() as session:
            recorded = await JobRepository(session).fail(*claim, error=error, retry_at=retry_at)
            await session.commit()
        if not recorded:
            return "lost_lease"
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
                await JobRepository(session).release(
                    [(j.id, j.attempts) for j in unfinished], self.name
                )
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
        """Housekeeping, about once a second: enqueue due periodic jobs, bury jobs whose
        final attempt died with its worker, and update the queue gauges."""
        now = utcnow()
        async with self.sessionmaker() as session:
            repo = JobRepository(session)
            for periodic in self.periodic:
                if await repo.advance_schedule(periodic.name, now, _next_slot(now, periodic)):
                    await repo.add(
                        kind=periodic.kind, tenant_id=None, payload={}, run_at=None, max_attempts=3
                    )
            buried = await repo.bury_exhausted()
            depth, lag = await repo.stats()
            await session.commit()
        QUEUE_DEPTH.set(depth)
        QUEUE_LAG.set(lag)
        if buried:
            WORK_FAILURES.labels("jobs", "dead").inc(buried)
            logger.error("jobs_dead_after_lost_final_attempt", count=buried)

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
