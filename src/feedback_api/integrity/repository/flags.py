"""Flags, the responses they link, and the `excluded` column they decide."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import and_, delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import AuditLog, IntegrityFlag, IntegrityFlagResponse, Response

# The evidence of a flag an erasure split off for one of the erased customer's responses
# (integrity.service.erasure).
DETACHED = "detached"

# Whether a response counts as excluded, given its flags (the rule of docs/integrity.md).
EXCLUDES = """
EXISTS (SELECT 1 FROM integrity_flag_responses l
        JOIN integrity_flags f ON f.tenant_id = l.tenant_id AND f.id = l.flag_id
        WHERE l.tenant_id = r.tenant_id AND l.response_id = r.id
          AND (f.status = 'confirmed' OR (f.status = 'open' AND f.strength >= :threshold)))
"""

# A flag's link row to the response it flags.
_FLAGGED_RESPONSE = and_(
    Response.tenant_id == IntegrityFlagResponse.tenant_id,
    Response.id == IntegrityFlagResponse.response_id,
)


class FlagRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def flag(
        self, tenant_id: UUID, flag_id: UUID, *, lock: bool = False
    ) -> IntegrityFlag | None:
        stmt = select(IntegrityFlag).where(
            IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id == flag_id
        )
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def open_flag(
        self, tenant_id: UUID, type_: str, subject_type: str, subject_ref: str
    ) -> IntegrityFlag | None:
        stmt = select(IntegrityFlag).where(
            IntegrityFlag.tenant_id == tenant_id,
            IntegrityFlag.type == type_,
            IntegrityFlag.subject_type == subject_type,
            IntegrityFlag.subject_ref == subject_ref,
            IntegrityFlag.status == "open",
        )
        return (await self.session.scalars(stmt.limit(1))).first()

    async def flag_linking(
        self, tenant_id: UUID, type_: str, response_ids: Collection[UUID]
    ) -> IntegrityFlag | None:
        """The flag of this type that already holds one of these responses (never one an
        erasure split off: it stays about its one response)."""
        stmt = (
            select(IntegrityFlag)
            .join(
                IntegrityFlagResponse,
                and_(
                    IntegrityFlagResponse.tenant_id == IntegrityFlag.tenant_id,
                    IntegrityFlagResponse.flag_id == IntegrityFlag.id,
                ),
            )
            .where(
                IntegrityFlagResponse.tenant_id == tenant_id,
                IntegrityFlagResponse.type == type_,
                IntegrityFlagResponse.response_id.in_(response_ids),
                ~IntegrityFlag.evidence.has_key(DETACHED),
            )
            .order_by(IntegrityFlag.created_at)
            .limit(1)
        )
        return (await self.session.scalars(stmt)).first()

    async def flag_page(
        self,
        tenant_id: UUID,
        *,
        status: str | None,
        type_: str | None,
        subject_type: str | None,
        subject_ref: str | None,
        response_id: UUID | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> Sequence[IntegrityFlag]:
        """Newest first."""
        stmt = select(IntegrityFlag).where(IntegrityFlag.tenant_id == tenant_id)
        if status is not None:
            stmt = stmt.where(IntegrityFlag.status == status)
        if type_ is not None:
            stmt = stmt.where(IntegrityFlag.type == type_)
        if subject_type is not None:
            stmt = stmt.where(IntegrityFlag.subject_type == subject_type)
        if subject_ref is not None:
            stmt = stmt.where(IntegrityFlag.subject_ref == subject_ref)
        if response_id is not None:
            stmt = stmt.where(
                IntegrityFlag.id.in_(
                    select(IntegrityFlagResponse.flag_id).where(
                        IntegrityFlagResponse.tenant_id == tenant_id,
                        IntegrityFlagResponse.response_id == response_id,
                    )
                )
            )
        if after is not None:
            stmt = stmt.where(tuple_(IntegrityFlag.created_at, IntegrityFlag.id) < after)
        stmt = stmt.order_by(IntegrityFlag.created_at.desc(), IntegrityFlag.id.desc())
        return (await self.session.scalars(stmt.limit(limit))).all()

    async def decisions(self, tenant_id: UUID, flag_id: UUID) -> Sequence[AuditLog]:
        stmt = (
            select(AuditLog)
            .where(
                AuditLog.tenant_id == tenant_id,
                AuditLog.target_type == "integrity_flag",
                AuditLog.target_id == str(flag_id),
            )
            .order_by(AuditLog.created_at, AuditLog.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def linked_ids(
        self, tenant_id: UUID, flag_id: UUID, limit: int | None = None
    ) -> list[UUID]:
        stmt = (
            select(IntegrityFlagResponse.response_id)
            .where(
                IntegrityFlagResponse.tenant_id == tenant_id,
                IntegrityFlagResponse.flag_id == flag_id,
            )
            .order_by(IntegrityFlagResponse.response_id)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def response_counts(self, tenant_id: UUID, ids: Collection[UUID]) -> dict[UUID, int]:
        stmt = select(IntegrityFlag.id, IntegrityFlag.response_count).where(
            IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id.in_(ids)
        )
        return dict((await self.session.execute(stmt)).all())

    async def existing_responses(self, tenant_id: UUID, ids: Collection[UUID]) -> set[UUID]:
        stmt = select(Response.id).where(
            Response.tenant_id == tenant_id, Response.id.in_(ids), Response.deleted_at.is_(None)
        )
        return set((await self.session.scalars(stmt)).all())

    async def add_flag(self, flag: IntegrityFlag) -> None:
        self.session.add(flag)
        await self.session.flush()

    async def link(
        self, tenant_id: UUID, flag_id: UUID, type_: str, response_ids: Collection[UUID]
    ) -> list[UUID]:
        """Link responses not yet in a flag of this type; returns those linked now."""
        if not response_ids:
            return []
        stmt = (
            insert(IntegrityFlagResponse)
            .values(
                [
                    {"tenant_id": tenant_id, "flag_id": flag_id, "response_id": r, "type": type_}
                    for r in response_ids
                ]
            )
            .on_conflict_do_nothing()
            .returning(IntegrityFlagResponse.response_id)
        )
        linked = list((await self.session.scalars(stmt)).all())
        if linked:
            await self.session.execute(
                update(IntegrityFlag)
                .where(IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id == flag_id)
                .values(response_count=IntegrityFlag.response_count + len(linked))
                .execution_options(synchronize_session=False)
            )
        return linked

    # -- exclusion -------------------------------------------------------------------------

    async def apply_exclusion(
        self,
        tenant_id: UUID,
        threshold: float,
        response_ids: Collection[UUID] | None,
        *,
        flag_id: UUID | None = None,
    ) -> int:
        """Set `excluded` from the flags for these responses, or those of `flag_id` (neither:
        every flagged or excluded response of the tenant). Only rows that change are written,
        so the metrics' triggers move exactly those between the counted and excluded
        histograms."""
        if response_ids is not None:
            scope = "AND r.id = ANY(:ids)"
        elif flag_id is not None:
            scope = (
                "AND r.id IN (SELECT l.response_id FROM integrity_flag_responses l "
                "WHERE l.tenant_id = :tenant_id AND l.flag_id = :flag_id)"
            )
        else:
            scope = (
                "AND (r.excluded OR EXISTS (SELECT 1 FROM integrity_flag_responses l "
                "WHERE l.tenant_id = r.tenant_id AND l.response_id = r.id))"
            )
        sql = text(
            f"UPDATE responses r SET excluded = NOT r.excluded "
            f"WHERE r.tenant_id = :tenant_id {scope} AND r.deleted_at IS NULL "
            f"AND r.excluded IS DISTINCT FROM ({EXCLUDES})"
        )
        params: dict[str, Any] = {"tenant_id": tenant_id, "threshold": threshold}
        if flag_id is not None and response_ids is None:
            params["flag_id"] = flag_id
        if response_ids is not None:
            if not response_ids:
                return 0
            params["ids"] = list(response_ids)
        result = await self.session.execute(sql, params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- erasure ---------------------------------------------------------------------------

    async def detach(
        self, tenant_id: UUID, response_ids: Collection[UUID]
    ) -> tuple[list[IntegrityFlag], dict[UUID, UUID | None]]:
        """Take these responses out of every flag they are linked to, each into a flag of
        its own (same type, status and strength: it excludes exactly as before), which
        keeps the response's own time, never the erasure's. Returns the flags they left
        (locked, as they were) and each one's earliest remaining response (None: empty)."""
        links = (
            await self.session.execute(
                select(
                    IntegrityFlagResponse.flag_id,
                    IntegrityFlagResponse.response_id,
                    IntegrityFlagResponse.type,
                    Response.received_at,
                )
                .join(Response, _FLAGGED_RESPONSE)
                .where(
                    IntegrityFlagResponse.tenant_id == tenant_id,
                    IntegrityFlagResponse.response_id.in_(response_ids),
                )
            )
        ).all()
        if not links:
            return [], {}
        flag_ids = sorted({link.flag_id for link in links})
        flags = {
            f.id: f
            for f in await self.session.scalars(
                select(IntegrityFlag)
                .where(IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id.in_(flag_ids))
                .order_by(IntegrityFlag.id)
                .with_for_update()
            )
        }
        await self.session.execute(
            delete(IntegrityFlagResponse).where(
                IntegrityFlagResponse.tenant_id == tenant_id,
                IntegrityFlagResponse.response_id.in_(response_ids),
            )
        )
        await self._split_off(tenant_id, links, flags)
        remaining = await self._recount(tenant_id, flag_ids)
        for flag in flags.values():
            # What the caller gets is the flag as it was; the rows changed underneath.
            self.session.expunge(flag)
        return [flags[i] for i in flag_ids], remaining

    async def _split_off(
        self, tenant_id: UUID, links: Sequence[Any], flags: dict[UUID, IntegrityFlag]
    ) -> None:
        """A flag of its own for each (flag, response) link, as of the response's time."""
        copies, copy_links = [], []
        for link in links:
            flag = flags[link.flag_id]
            # Random, not time-ordered: a UUIDv7 would carry the erasure's time.
            copy_id = uuid4()
            copies.append(
                {
                    "id": copy_id,
                    "tenant_id": tenant_id,
                    "type": flag.type,
                    "subject_type": "response",
                    "subject_ref": str(link.response_id),
                    "strength": flag.strength,
                    "evidence": {DETACHED: True},
                    "status": flag.status,
                    "response_count": 1,
                    "created_at": link.received_at,
                    "updated_at": link.received_at,
                }
            )
            copy_links.append(
                {
                    "tenant_id": tenant_id,
                    "flag_id": copy_id,
                    "response_id": link.response_id,
                    "type": link.type,
                }
            )
        await self.session.execute(insert(IntegrityFlag).values(copies))
        await self.session.execute(insert(IntegrityFlagResponse).values(copy_links))

    async def _recount(self, tenant_id: UUID, flag_ids: Sequence[UUID]) -> dict[UUID, UUID | None]:
        """Set these flags' response counts from their links; returns each one's earliest
        remaining response (None: it has none left)."""
        ranked = (
            select(
                IntegrityFlagResponse.flag_id,
                IntegrityFlagResponse.response_id,
                func.count().over(partition_by=IntegrityFlagResponse.flag_id).label("n"),
                func.row_number()
                .over(
                    partition_by=IntegrityFlagResponse.flag_id,
                    order_by=(Response.occurred_at, Response.id),
                )
                .label("k"),
            )
            .join(Response, _FLAGGED_RESPONSE)
            .where(
                IntegrityFlagResponse.tenant_id == tenant_id,
                IntegrityFlagResponse.flag_id.in_(flag_ids),
            )
            .subquery()
        )
        rows = await self.session.execute(
            select(ranked.c.flag_id, ranked.c.response_id, ranked.c.n).where(ranked.c.k == 1)
        )
        remaining: dict[UUID, UUID | None] = dict.fromkeys(flag_ids)
        for flag_id, first, n in rows.all():
            remaining[flag_id] = first
            # Written as it is, so that the model's onupdate does not stamp the erasure time.
            await self.session.execute(
                update(IntegrityFlag)
                .where(IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id == flag_id)
                .values(response_count=n, updated_at=IntegrityFlag.updated_at)
                .execution_options(synchronize_session=False)
            )
        return remaining

    async def rewrite_flag(
        self, tenant_id: UUID, flag_id: UUID, subject_ref: str, evidence: dict[str, Any]
    ) -> None:
        await self.session.execute(
            update(IntegrityFlag)
            .where(IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id == flag_id)
            .values(subject_ref=subject_ref, evidence=evidence, updated_at=IntegrityFlag.updated_at)
            .execution_options(synchronize_session=False)
        )

    async def delete_flags(self, tenant_id: UUID, flag_ids: Collection[UUID]) -> None:
        if flag_ids:
            await self.session.execute(
                delete(IntegrityFlag)
                .where(IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id.in_(flag_ids))
                .execution_options(synchronize_session=False)
            )
