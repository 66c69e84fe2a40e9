"""The worker's look for rising themes (job `insights.rising`, hourly): for each tenant with a
theme dictionary, last complete week (Monday to Monday in the tenant's time zone) against
the week before, NPS, CSAT and CES responses in turn, with the test of
`GET /v1/insights/themes/rising`. A `theme.rising` event for each theme found, at most once
per theme and week (the first kind that shows it), remembered in `theme_rising_notices`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.insights.schemas import RisingTheme, RisingThemes
from feedback_api.insights.trends import rising
from feedback_api.kit.periods import local_date, local_midnight
from feedback_api.metrics.schemas import MetricKind
from feedback_api.metrics.selection import Selection
from feedback_api.metrics.service import MetricQuery, scale_for
from feedback_api.models import RisingNotice, Tenant, ThemeDictionary

FDR = 0.05
KINDS = (MetricKind.NPS, MetricKind.CSAT, MetricKind.CES)


class RisingPayload(BaseModel):
    key: str
    kind: MetricKind
    period: dict[str, Any]  # as the API shows a Period: from, to, timezone
    previous_period: dict[str, Any]
    mentions: int
    previous_mentions: int | None
    share: float | None
    previous_share: float | None
    ratio: float | None
    q_value: float | None


async def watched_tenants(session: AsyncSession) -> list[tuple[UUID, str]]:
    """Tenants that have (or had) a theme dictionary, with their time zones."""
    stmt = (
        select(Tenant.id, Tenant.timezone)
        .join(ThemeDictionary, ThemeDictionary.tenant_id == Tenant.id)
        .where(ThemeDictionary.version > 0)
        .order_by(Tenant.id)
    )
    return [(row[0], str(row[1])) for row in await session.execute(stmt)]


def last_week(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The last complete local week, Monday 00:00 to Monday 00:00."""
    today = local_date(now, zone)
    monday = today - timedelta(days=today.weekday())
    return local_midnight(monday - timedelta(days=7), zone), local_midnight(monday, zone)


async def watch(session: AsyncSession, tenant_id: UUID, zone: ZoneInfo, now: datetime) -> int:
    """Send `theme.rising` for the tenant's themes rising last week; returns how many."""
    start, end = last_week(now, zone)
    sent = 0
    for kind in KINDS:
        low, high = scale_for(kind, None, None)
        selection = Selection(tenant_id=tenant_id, kind=kind.value, scale_min=low, scale_max=high)
        report = await rising(session, kind, MetricQuery(selection, start, end), FDR)
        found = [item for item in report.items if item.rising]
        for item in found:
            if await _first_notice(session, tenant_id, item, start, kind):
                await event_service.emit(
                    session, tenant_id, EventType.THEME_RISING, [_payload(item, kind, report)]
                )
                sent += 1
    return sent


async def _first_notice(
    session: AsyncSession, tenant_id: UUID, item: RisingTheme, start: datetime, kind: MetricKind
) -> bool:
    stmt = (
        insert(RisingNotice)
        .values(tenant_id=tenant_id, theme_key=item.key, period_start=start, kind=kind.value)
        .on_conflict_do_nothing()
        .returning(RisingNotice.theme_key)
    )
    return (await session.execute(stmt)).first() is not None


def _payload(item: RisingTheme, kind: MetricKind, report: RisingThemes) -> RisingPayload:
    return RisingPayload(
        key=item.key,
        kind=kind,
        period=report.period.model_dump(mode="json", by_alias=True),
        previous_period=report.previous_period.model_dump(mode="json", by_alias=True),
        mentions=item.mentions,
        previous_mentions=item.previous_mentions,
        share=item.share.value,
        previous_share=item.previous_share.value if item.previous_share else None,
        ratio=item.ratio,
        q_value=item.q_value,
    )
