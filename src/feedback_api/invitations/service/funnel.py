"""The funnel: of the invitations created in a period, how many were scheduled,
suppressed (by reason), sent, delivered, bounced and answered, and how fast."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.invitations.repository import InvitationRepository
from feedback_api.invitations.schemas import FunnelRow, FunnelStats
from feedback_api.kit.periods import PeriodBound
from feedback_api.metrics.service import metric as metric_service


class FunnelService:
    async def funnel(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        lo: PeriodBound,
        hi: PeriodBound,
        by: str | None,
    ) -> FunnelStats:
        """Over invitations created in the period."""
        start, end, _ = await metric_service.period(session, tenant_id, lo, hi)
        repo = InvitationRepository(session)
        rows = await repo.funnel(tenant_id, start, end, by)
        medians: dict[str | None, float | None] = {
            r.grp: r.median for r in await repo.response_minutes(tenant_id, start, end, by)
        }
        if by is not None:
            overall = await repo.response_minutes(tenant_id, start, end, None)
            medians[None] = overall[0].median if overall else None
        groups: dict[str | None, FunnelRow] = {}
        for r in rows:
            row = groups.setdefault(r.grp, _empty_row(r.grp))
            _add(row, r)
        total = _empty_row(None)
        for r in rows:
            _add(total, r)
        for key, row in groups.items():
            _finish(row, medians.get(key) if by is not None else None)
        _finish(total, medians.get(None))
        ordered = sorted(groups.values(), key=lambda g: (-g.created, g.group or ""))
        return FunnelStats(start=start, end=end, total=total, groups=ordered if by else [])


def _empty_row(group: str | None) -> FunnelRow:
    return FunnelRow(
        group=group,
        created=0,
        scheduled=0,
        suppressed=0,
        suppressed_by_reason={},
        sent=0,
        delivered=0,
        bounced=0,
        responded=0,
        response_rate=None,
        median_minutes_to_respond=None,
    )


def _add(row: FunnelRow, r: Any) -> None:
    row.created += r.created
    row.scheduled += r.scheduled
    row.suppressed += r.created - r.scheduled
    if r.suppression_reason is not None:
        reasons = row.suppressed_by_reason
        reasons[r.suppression_reason] = (
            reasons.get(r.suppression_reason, 0) + r.created - r.scheduled
        )
    row.sent += r.sent
    row.delivered += r.delivered
    row.bounced += r.bounced
    row.responded += r.responded


def _finish(row: FunnelRow, median: float | None) -> None:
    row.response_rate = row.responded / row.sent if row.sent else None
    row.median_minutes_to_respond = round(median, 2) if median is not None else None


funnel = FunnelService()
