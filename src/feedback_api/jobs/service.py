from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.jobs.failures import WorkFailureRepository
from feedback_api.jobs.repository import JobRepository
from feedback_api.models import Job


class JobService:
    async def enqueue(
        self,
        session: AsyncSession,
        kind: str,
        *,
        tenant_id: UUID | None = None,
        payload: dict[str, Any] | None = None,
        run_at: datetime | None = None,
        max_attempts: int = 10,
    ) -> Job:
        """Schedule work in the caller's transaction: it exists only if the caller commits,
        and survives any crash after that. Workers are woken at commit."""
        repo = JobRepository(session)
        job = await repo.add(
            kind=kind,
            tenant_id=tenant_id,
            payload=payload or {},
            run_at=run_at,
            max_attempts=max_attempts,
        )
        await repo.notify()
        return job

    async def enqueue_many(
        self,
        session: AsyncSession,
        kind: str,
        *,
        tenant_id: UUID | None,
        payloads: list[dict[str, Any]],
        max_attempts: int = 10,
    ) -> None:
        """Like `enqueue`, for many jobs of one kind in one statement."""
        if not payloads:
            return
        repo = JobRepository(session)
        await repo.add_many(
            kind=kind, tenant_id=tenant_id, payloads=payloads, max_attempts=max_attempts
        )
        await repo.notify()

    async def forget_failures(
        self, session: AsyncSession, tenant_id: UUID, subject_ids: Collection[UUID]
    ) -> int:
        """Erasure: forget what background work set aside about these items."""
        return await WorkFailureRepository(session).forget_subjects(
            tenant_id, [str(i) for i in subject_ids]
        )


job = JobService()
