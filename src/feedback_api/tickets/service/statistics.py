"""`GET /v1/tickets/stats`: how fast and how well tickets were handled, per group."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.periods import PeriodBound
from feedback_api.metrics.service import metric as metric_service
from feedback_api.tickets.repository import TicketRepository
from feedback_api.tickets.schemas import StatsBy, TicketStats, TicketStatsGroup

SHOWN_WHEN_SUPPRESSED = frozenset({"key", "other", "suppressed", "opened"})


class StatisticsService:
    async def stats(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        start: PeriodBound,
        end: PeriodBound,
        by: StatsBy | None,
    ) -> TicketStats:
        lo, hi, period = await metric_service.period(session, tenant_id, start, end)
        repo = TicketRepository(session)
        settings = await repo.settings(tenant_id)
        assert settings is not None  # the period lookup found the tenant
        min_n = settings.min_cell_n if by is StatsBy.AGENT_REF else None
        rows = await repo.stats(tenant_id, lo, hi, group=by.value if by else None, pool_below=min_n)
        return TicketStats(
            period=period, by=by, min_n=min_n, groups=[_stats_group(r, min_n) for r in rows]
        )


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _stats_group(row: dict[str, Any], min_n: int | None) -> TicketStatsGroup:
    pooled = bool(row["pooled"])
    if pooled and min_n is not None and row["opened"] < min_n:
        withheld = dict.fromkeys(set(TicketStatsGroup.model_fields) - SHOWN_WHEN_SUPPRESSED)
        return TicketStatsGroup.model_validate(
            {**withheld, "key": None, "other": True, "suppressed": True, "opened": row["opened"]}
        )
    return TicketStatsGroup(
        key=row["key"],
        other=pooled,
        opened=row["opened"],
        resolved=row["resolved"],
        first_response_median_seconds=_seconds(row["fr_median"]),
        first_response_p90_seconds=_seconds(row["fr_p90"]),
        resolution_median_seconds=_seconds(row["res_median"]),
        resolution_p90_seconds=_seconds(row["res_p90"]),
        first_response_within_sla_pct=_pct(row["fr_met"], row["fr_decided"]),
        resolution_within_sla_pct=_pct(row["res_met"], row["res_decided"]),
        breached=row["breached"],
        repeat_complaint_pct=_pct(row["repeats"], row["ever_resolved"]),
        contacted_pct=_pct(row["contacted"], row["from_responses"]),
        follow_up_solved_pct=_pct(row["solved"], row["followed_up"]),
    )


statistics = StatisticsService()
