"""The integrity report: how much of a period's feedback is verified, excluded and why, the
skewed groups, and how in-person feedback compares with the rest."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.integrity import solicitation
from feedback_api.integrity.repository import PatternRepository, ReportRepository
from feedback_api.integrity.schemas import Report, SkewRow, TrendRow, Uplift
from feedback_api.integrity.service.patterns import patterns as pattern_service
from feedback_api.integrity.service.settings import params_of
from feedback_api.integrity.service.settings import settings as settings_service
from feedback_api.metrics import measures
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.schemas import Bounds, Period


def skew_row(skew: solicitation.Skew) -> SkewRow:
    return SkewRow(
        dimension=skew.group.dimension,
        ref=skew.group.ref,
        kind=skew.group.kind,
        touchpoint=skew.group.touchpoint,
        n=skew.group.n,
        positive_share=round(skew.share, 4),
        peer_n=skew.peer_n,
        peer_positive_share=round(skew.peer_share, 4),
        uplift=round(skew.uplift, 4),
        z=round(skew.z, 3),
        p_value=skew.p_value,
        q_value=skew.q_value,
        in_person_share=round(skew.in_person_share, 4),
        flagged=skew.flagged,
    )


def uplift(in_person: Histogram, other: Histogram) -> Uplift:
    """NPS of in-person responses against the others'."""
    raw = measures.compare("nps", other, in_person)
    return Uplift(
        in_person_n=in_person.n,
        other_n=other.n,
        in_person_nps=measures.measure("nps", in_person, 0.95).value,
        other_nps=measures.measure("nps", other, 0.95).value,
        difference=None if raw is None else round(raw.delta, 3),
        interval=None
        if raw is None or raw.interval is None
        else Bounds(low=raw.interval.low, high=raw.interval.high),
        p_value=None if raw is None else raw.p_value,
    )


class ReportService:
    async def report(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        start: datetime,
        end: datetime,
        period: Period,
    ) -> Report:
        repo = ReportRepository(session)
        settings = await settings_service.load(session, tenant_id)
        params = params_of(settings)
        n, verified, excluded = await repo.totals(tenant_id, start, end)
        skews = await pattern_service.skews(
            PatternRepository(session), tenant_id, params, start, end
        )
        skewed = sorted((skew_row(k) for k in skews if k.skewed), key=lambda row: row.q_value)
        in_person, other = Histogram(0, 10), Histogram(0, 10)
        for is_in_person, score, count in await repo.nps_by_in_person(tenant_id, start, end):
            (in_person if is_in_person else other).add(score, count)
        in_person_uplift = uplift(in_person, other)
        trend = await self._trend(repo, tenant_id, start, end, period.timezone)
        return Report(
            period=period,
            responses=n,
            verified=verified,
            verified_share=round(verified / n, 4) if n else None,
            excluded=excluded,
            excluded_by_type=await repo.excluded_by_type(
                tenant_id, start, end, settings.exclude_threshold
            ),
            flags_by_type=await repo.flags_by_type(tenant_id, start, end),
            skewed=skewed,
            in_person_uplift=in_person_uplift,
            trend=trend,
        )

    async def _trend(
        self, repo: ReportRepository, tenant_id: UUID, start: datetime, end: datetime, zone: str
    ) -> list[TrendRow]:
        return [
            TrendRow(
                start=week.replace(tzinfo=ZoneInfo(zone)) if week.tzinfo is None else week,
                responses=a,
                verified=b,
                excluded=c,
                flags_created=d,
            )
            for week, a, b, c, d in await repo.weekly(tenant_id, start, end, zone)
        ]


report = ReportService()
