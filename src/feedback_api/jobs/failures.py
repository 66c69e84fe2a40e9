"""Items background work set aside (table `work_failures`): what failed, where, and why."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import WorkFailure


class WorkFailureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self, tenant_id: UUID, source: str, subject_id: str, error_type: str, error: str
    ) -> None:
        """Set an item aside, or update the reason if it already is."""
        stmt = insert(WorkFailure).values(
            tenant_id=tenant_id,
            source=source,
            subject_id=subject_id,
            error_type=error_type,
            error=error,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "source", "subject_id"],
                set_={
                    "error_type": stmt.excluded.error_type,
                    "error": stmt.excluded.error,
                    "failed_at": func.now(),
                },
            )
        )

    async def clear(
        self, tenant_id: UUID, source: str, subject_ids: Collection[str] | None = None
    ) -> list[str]:
        """Forget set-aside items (all of the source's when `subject_ids` is None); returns
        the subjects forgotten."""
        stmt = delete(WorkFailure).where(
            WorkFailure.tenant_id == tenant_id, WorkFailure.source == source
        )
        if subject_ids is not None:
            stmt = stmt.where(WorkFailure.subject_id.in_(subject_ids))
        return list((await self.session.scalars(stmt.returning(WorkFailure.subject_id))).all())

    async def forget_subjects(self, tenant_id: UUID, subject_ids: Collection[str]) -> int:
        """Erasure: forget set-aside items whatever the source (an error message may quote
        the item's data)."""
        if not subject_ids:
            return 0
        result = await self.session.execute(
            delete(WorkFailure).where(
                WorkFailure.tenant_id == tenant_id, WorkFailure.subject_id.in_(subject_ids)
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def page(
        self, tenant_id: UUID, source: str, *, limit: int, after: tuple[datetime, UUID] | None
    ) -> list[WorkFailure]:
        stmt = select(WorkFailure).where(
            WorkFailure.tenant_id == tenant_id, WorkFailure.source == source
        )
        if after is not None:
            stmt = stmt.where(tuple_(WorkFailure.failed_at, WorkFailure.id) < tuple_(*after))
        stmt = stmt.order_by(WorkFailure.failed_at.desc(), WorkFailure.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())
