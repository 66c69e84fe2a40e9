"""The integrity report's aggregates over a period."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import IntegrityFlag, Response


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def totals(self, tenant_id: UUID, start: datetime, end: datetime) -> tuple[int, int, int]:
        """(responses, verified, excluded) that occurred in [start, end)."""
        stmt = select(
            func.count(),
            func.count().filter(Response.verified),
            func.count().filter(Response.excluded),
        ).where(
            Response.tenant_id == tenant_id,
            Response.deleted_at.is_(None),
            Response.occurred_at >= start,
            Response.occurred_at < end,
        )
        n, verified, excluded = (await self.session.execute(stmt)).one()
        return int(n), int(verified), int(excluded)

    async def excluded_by_type(
        self, tenant_id: UUID, start: datetime, end: datetime, threshold: float
    ) -> dict[str, int]:
        sql = text(
            """
            SELECT f.type, count(DISTINCT r.id)
            FROM responses r
            JOIN integrity_flag_responses l ON l.tenant_id = r.tenant_id AND l.response_id = r.id
            JOIN integrity_flags f ON f.tenant_id = l.tenant_id AND f.id = l.flag_id
            WHERE r.tenant_id = :tenant_id AND r.deleted_at IS NULL AND r.excluded
              AND r.occurred_at >= :start AND r.occurred_at < :end
              AND (f.status = 'confirmed' OR (f.status = 'open' AND f.strength >= :threshold))
            GROUP BY f.type
            """
        )
        rows = await self.session.execute(
            sql, {"tenant_id": tenant_id, "start": start, "end": end, "threshold": threshold}
        )
        return {t: int(n) for t, n in rows.all()}

    async def flags_by_type(
        self, tenant_id: UUID, start: datetime, end: datetime
    ) -> dict[str, dict[str, int]]:
        stmt = (
            select(IntegrityFlag.type, IntegrityFlag.status, func.count())
            .where(
                IntegrityFlag.tenant_id == tenant_id,
                IntegrityFlag.created_at >= start,
                IntegrityFlag.created_at < end,
            )
            .group_by(IntegrityFlag.type, IntegrityFlag.status)
        )
        out: dict[str, dict[str, int]] = {}
        for type_, status, n in (await self.session.execute(stmt)).all():
            out.setdefault(type_, {})[status] = int(n)
        return out

    async def nps_by_in_person(
        self, tenant_id: UUID, start: datetime, end: datetime
    ) -> list[tuple[bool, int, int]]:
        """(in person, score, count) of counted NPS responses in [start, end)."""
        in_person = Response.channel == "in_person"
        stmt = (
            select(in_person, Response.score, func.count())
            .where(
                Response.tenant_id == tenant_id,
                Response.deleted_at.is_(None),
                Response.kind == "nps",
                Response.excluded.is_(False),
                Response.occurred_at >= start,
                Response.occurred_at < end,
            )
            .group_by(in_person, Response.score)
        )
        return [(bool(a), int(s), int(n)) for a, s, n in (await self.session.execute(stmt)).all()]

    async def weekly(
        self, tenant_id: UUID, start: datetime, end: datetime, timezone: str
    ) -> list[tuple[datetime, int, int, int, int]]:
        """(local week start, responses, verified, excluded, flags created) per week."""
        sql = text(
            """
            WITH r AS (
                SELECT date_trunc('week', occurred_at AT TIME ZONE :tz) AS week,
                       count(*) AS n, count(*) FILTER (WHERE verified) AS verified,
                       count(*) FILTER (WHERE excluded) AS excluded
                FROM responses
                WHERE tenant_id = :tenant_id AND deleted_at IS NULL
                  AND occurred_at >= :start AND occurred_at < :end
                GROUP BY 1
            ), f AS (
                SELECT date_trunc('week', created_at AT TIME ZONE :tz) AS week, count(*) AS n
                FROM integrity_flags
                WHERE tenant_id = :tenant_id AND created_at >= :start AND created_at < :end
                GROUP BY 1
            )
            SELECT coalesce(r.week, f.week) AT TIME ZONE :tz, coalesce(r.n, 0),
                   coalesce(r.verified, 0), coalesce(r.excluded, 0), coalesce(f.n, 0)
            FROM r FULL JOIN f ON f.week = r.week
            ORDER BY 1
            """
        )
        rows = await self.session.execute(
            sql, {"tenant_id": tenant_id, "start": start, "end": end, "tz": timezone}
        )
        return [(w, int(a), int(b), int(c), int(d)) for w, a, b, c, d in rows.all()]
