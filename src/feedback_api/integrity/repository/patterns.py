"""What the pattern detectors (solicitation, spikes) read: counts per location or agent."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import case, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.integrity.records import POSITIVE_FROM
from feedback_api.models import Response

POSITIVE_SQL = (
    "CASE r.kind "
    + " ".join(f"WHEN '{k}' THEN {v}" for k, v in POSITIVE_FROM.items())
    + " ELSE r.scale_max END"
)


def positive_clause() -> Any:
    """SQL for Record.positive."""
    return Response.score >= case(
        *[(Response.kind == kind, low) for kind, low in POSITIVE_FROM.items()],
        else_=Response.scale_max,
    )


def _dimension(dimension: str) -> Any:
    """The column of a pattern detector's group: location or agent."""
    return Response.location_ref if dimension == "location" else Response.agent_ref


class PatternRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_tenants(self, since: datetime) -> list[UUID]:
        stmt = select(Response.tenant_id).where(Response.received_at >= since).distinct()
        return list((await self.session.scalars(stmt)).all())

    async def group_counts(
        self, tenant_id: UUID, start: datetime, end: datetime, dimension: str
    ) -> list[tuple[str | None, str, str | None, int, int, int]]:
        """(ref, kind, touchpoint, n, positive, in-person positive) per location or agent
        and kind and touchpoint, plus a total row (ref None) per kind and touchpoint. Counts
        responses in the metrics, and those only a solicitation flag keeps out (so that a
        flagged group stays visible); ratings (mixed scales) are not compared."""
        column = "location_ref" if dimension == "location" else "agent_ref"
        sql = text(
            f"""
            SELECT CASE WHEN grouping(r.{column}) = 0 THEN coalesce(r.{column}, '') END,
                   r.kind, r.touchpoint, count(*),
                   count(*) FILTER (WHERE r.score >= {POSITIVE_SQL}),
                   count(*) FILTER (WHERE r.channel = 'in_person' AND r.score >= {POSITIVE_SQL})
            FROM responses r
            WHERE r.tenant_id = :tenant_id AND r.deleted_at IS NULL AND r.kind <> 'rating'
              AND r.occurred_at >= :start AND r.occurred_at < :end
              AND (NOT r.excluded OR EXISTS (
                  SELECT 1 FROM integrity_flag_responses l WHERE l.tenant_id = r.tenant_id
                  AND l.response_id = r.id AND l.type = 'solicitation'))
            GROUP BY GROUPING SETS ((r.{column}, r.kind, r.touchpoint), (r.kind, r.touchpoint))
            """
        )
        rows = await self.session.execute(sql, {"tenant_id": tenant_id, "start": start, "end": end})
        return [
            (ref, kind, touchpoint, n, pos, ip)
            for ref, kind, touchpoint, n, pos, ip in rows.all()
            if ref != ""
        ]

    async def in_person_positive(
        self,
        tenant_id: UUID,
        dimension: str,
        ref: str,
        kind: str,
        touchpoint: str | None,
        start: datetime,
        end: datetime,
    ) -> list[UUID]:
        column = _dimension(dimension)
        stmt = select(Response.id).where(
            Response.tenant_id == tenant_id,
            Response.deleted_at.is_(None),
            column == ref,
            Response.kind == kind,
            Response.touchpoint.is_(None)
            if touchpoint is None
            else Response.touchpoint == touchpoint,
            Response.channel == "in_person",
            positive_clause(),
            Response.occurred_at >= start,
            Response.occurred_at < end,
        )
        return list((await self.session.scalars(stmt)).all())

    async def top_buckets(
        self, tenant_id: UUID, dimension: str, start: datetime, end: datetime, hours: int
    ) -> list[tuple[str, datetime, int]]:
        """(ref, bucket start, top scores) per location or agent per bucket of `hours`,
        aligned to the Unix epoch, for buckets with any top score."""
        column = "location_ref" if dimension == "location" else "agent_ref"
        sql = text(
            f"""
            SELECT r.{column}, date_bin(make_interval(hours => :hours), r.occurred_at,
                   TIMESTAMPTZ 'epoch') AS bucket, count(*)
            FROM responses r
            WHERE r.tenant_id = :tenant_id AND r.deleted_at IS NULL AND r.{column} IS NOT NULL
              AND r.occurred_at >= :start AND r.occurred_at < :end AND r.score = r.scale_max
            GROUP BY 1, 2
            """
        )
        rows = await self.session.execute(
            sql, {"tenant_id": tenant_id, "start": start, "end": end, "hours": hours}
        )
        return [(ref, bucket, n) for ref, bucket, n in rows.all()]

    async def top_ids(
        self, tenant_id: UUID, dimension: str, ref: str, start: datetime, end: datetime
    ) -> list[UUID]:
        column = _dimension(dimension)
        stmt = select(Response.id).where(
            Response.tenant_id == tenant_id,
            Response.deleted_at.is_(None),
            column == ref,
            Response.score == Response.scale_max,
            Response.occurred_at >= start,
            Response.occurred_at < end,
        )
        return list((await self.session.scalars(stmt)).all())
