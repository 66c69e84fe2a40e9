from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.ids import new_id
from feedback_api.models import Job, JobSchedule

NOTIFY_CHANNEL = "feedback_jobs"


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        kind: str,
        tenant_id: UUID | None,
        payload: dict[str, Any],
        run_at: datetime | None,
        max_attempts: int,
    ) -> Job:
        job = Job(
            kind=kind,
            tenant_id=tenant_id,
            payload=payload,
            max_attempts=max_attempts,
            **({"run_at": run_at} if run_at is not None else {}),
        )
        self.session.add(job)
        await self.session.flush()
        return job

    async def add_many(
        self,
        *,
        kind: str,
        tenant_id: UUID | None,
        payloads: list[dict[str, Any]],
        max_attempts: int,
    ) -> None:
        await self.session.execute(
            insert(Job).values(
                [
                    {
                        "id": new_id(),
                        "kind": kind,
                        "tenant_id": tenant_id,
                        "payload": p,
                        "max_attempts": max_attempts,
                    }
                    for p in payloads
                ]
            )
        )

    async def notify(self) -> None:
        # Delivered at commit, so a waiting worker wakes when the job is visible.
        await self.session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))

    async def claim(self, worker: str, limit: int, lease: timedelta) -> list[Job]:
        """Due jobs, leased to `worker`. Each claim counts an attempt, so `(id, attempts)`
        names the claim: `renew`, `finish`, `fail` and `release` act only on their own.
        A job whose attempts are used up is never claimed again (see `bury_exhausted`)."""
        due = (
            select(Job.id)
            .where(
                Job.status == "queued",
                Job.run_at <= func.now(),
                (Job.locked_until.is_(None)) | (Job.locked_until < func.now()),
                Job.attempts < Job.max_attempts,
            )
            .order_by(Job.run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(Job)
            .where(Job.id.in_(due.scalar_subquery()))
            .values(
                locked_until=func.now() + lease,
                locked_by=worker,
                attempts=Job.attempts + 1,
            )
            .returning(Job)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    @staticmethod
    def _claimed(job_id: UUID, worker: str, attempt: int) -> ColumnElement[bool]:
        return and_(Job.id == job_id, Job.locked_by == worker, Job.attempts == attempt)

    async def renew(self, job_id: UUID, worker: str, attempt: int, lease: timedelta) -> bool:
        """Extend a running job's lease (its heartbeat); False if the claim is no longer
        ours."""
        result = await self.session.execute(
            update(Job)
            .where(self._claimed(job_id, worker, attempt))
            .values(locked_until=func.now() + lease)
            .returning(Job.id)
        )
        return result.first() is not None

    async def finish(self, job_id: UUID, worker: str, attempt: int) -> bool:
        """Delete a finished job, if this claim still holds it."""
        result = await self.session.execute(
            delete(Job).where(self._claimed(job_id, worker, attempt)).returning(Job.id)
        )
        return result.first() is not None

    async def fail(
        self, job_id: UUID, worker: str, attempt: int, *, error: str, retry_at: datetime | None
    ) -> bool:
        """Record a failed attempt: retry at `retry_at`, or dead when None. A stale claim
        changes nothing (False)."""
        values: dict[str, Any] = {
            "last_error": error[:2000],
            "locked_until": None,
            "locked_by": None,
        }
        values |= {"run_at": retry_at} if retry_at is not None else {"status": "dead"}
        result = await self.session.execute(
            update(Job)
            .where(self._claimed(job_id, worker, attempt))
            .values(**values)
            .returning(Job.id)
        )
        return result.first() is not None

    async def release(self, claims: list[tuple[UUID, int]], worker: str) -> None:
        """Give claimed jobs back at once (graceful shutdown), without counting the attempt."""
        for job_id, attempt in claims:
            await self.session.execute(
                update(Job)
                .where(self._claimed(job_id, worker, attempt))
                .values(locked_until=None, locked_by=None, attempts=Job.attempts - 1)
            )

    async def bury_exhausted(self) -> int:
        """Jobs whose last attempt's lease ran out without a result (the worker died: out
        of memory, killed) go dead, with what is known, instead of being claimed forever."""
        result = await self.session.execute(
            update(Job)
            .where(
                Job.status == "queued",
                Job.attempts >= Job.max_attempts,
                Job.locked_until < func.now(),
            )
            .values(
                status="dead",
                locked_by=None,
                locked_until=None,
                last_error=func.concat_ws(
                    " | ",
                    Job.last_error,
                    "the worker running its last attempt stopped before finishing it",
                ),
            )
            .returning(Job.id)
        )
        return len(result.all())

    async def ensure_schedules(self, names_due: dict[str, datetime]) -> None:
        stmt = insert(JobSchedule).values(
            [{"name": n, "next_run_at": t} for n, t in names_due.items()]
        )
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))

    async def advance_schedule(self, name: str, now: datetime, next_run_at: datetime) -> bool:
        """Move a due schedule forward; True for exactly one caller per due slot."""
        result = await self.session.execute(
            update(JobSchedule)
            .where(JobSchedule.name == name, JobSchedule.next_run_at <= now)
            .values(next_run_at=next_run_at)
            .returning(JobSchedule.name)
        )
        return result.first() is not None

    async def stats(self) -> tuple[int, float]:
        """Jobs due now, and how late the most overdue one is (seconds)."""
        row = (
            await self.session.execute(
                select(
                    func.count(),
                    func.coalesce(func.extract("epoch", func.now() - func.min(Job.run_at)), 0),
                ).where(Job.status == "queued", Job.run_at <= func.now())
            )
        ).one()
        return int(row[0]), float(row[1])
