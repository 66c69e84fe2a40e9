"""The public feeds: a tenant's published reviews with its replies, and its public
improvement actions ("you said, we did"), for anyone to read (docs/public-feeds.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.actions.impact import impact
from feedback_api.actions.schemas import ActionMetric, ActionStatus, ImpactRead
from feedback_api.exceptions import FeedbackError, InvalidCursor, NotFound
from feedback_api.feeds import masking
from feedback_api.feeds.detail import is_detailed
from feedback_api.feeds.repository import FeedRepository, ReviewRow
from feedback_api.feeds.schemas import (
    CustomersSaid,
    FeedTenant,
    ImprovementFeed,
    Measurement,
    PublicImprovement,
    PublicReply,
    PublicReview,
    PublicTheme,
    Result,
    ReviewFeed,
    ReviewKind,
    Scale,
)
from feedback_api.feeds.tokens import (
    CursorInvalid,
    decode_cursor,
    encode_cursor,
    feed_key,
    public_id,
)
from feedback_api.integrity.service import integrity as integrity_service
from feedback_api.models import ImprovementAction, Tenant

REVIEWS, IMPROVEMENTS = "reviews", "improvements"
#: With `detailed=true`, rows are read in batches of this many, and at most MAX_SCAN per
#: request: a page may then hold fewer than `limit` items (and a next_cursor).
DETAIL_BATCH = 100
MAX_SCAN = 1000


class FeedNotFound(NotFound):
    """One answer for an unknown slug and for a tenant without the opt-in, so that the
    feeds cannot be used to find out which tenants exist."""


NOT_FOUND_DETAIL = "there is no public feed at this address"


@dataclass(frozen=True, slots=True)
class Feed:
    """An opened feed: the tenant, its key for ids and cursors, the page's language."""

    tenant: Tenant
    key: bytes
    zone: ZoneInfo
    region: str | None


def region_of(locale: str) -> str | None:
    """The phone-number region the tenant's locale suggests (`zh-CN` → CN, `de` → DE)."""
    parts = locale.replace("_", "-").split("-")
    for candidate in (*parts[1:], parts[0]):
        if candidate.upper() in phonenumbers.SUPPORTED_REGIONS and len(candidate) == 2:
            return candidate.upper()
    return None


def label(names: Mapping[str, Any], lang: str) -> str | None:
    for key in (lang, "en"):
        value = names.get(key)
        if isinstance(value, str) and value:
            return value
    for key, value in sorted(names.items()):
        if key.split("-")[0] == lang and isinstance(value, str):
            return value
    return next((v for _, v in sorted(names.items()) if isinstance(v, str) and v), None)


class FeedService:
    async def open(self, session: AsyncSession, slug: str) -> Feed:
        tenant = await FeedRepository(session).published_tenant(slug)
        if tenant is None:
            raise FeedNotFound(NOT_FOUND_DETAIL)
        secret = await integrity_service.salt(session, tenant.id)
        return Feed(tenant, feed_key(secret), ZoneInfo(tenant.timezone), region_of(tenant.locale))

    def _after(self, feed: Feed, name: str, cursor: str | None) -> tuple[datetime, UUID] | None:
        if cursor is None:
            return None
        try:
            return decode_cursor(feed.key, name, cursor)
        except CursorInvalid:
            raise InvalidCursor(
                "the cursor is not one this feed issued",
                errors=[
                    InvalidCursor.error(
                        ["query", "cursor"], "invalid_cursor", "not a cursor of this feed"
                    )
                ],
            ) from None

    async def _known_names(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        rows: Sequence[ReviewRow],
        staff: re.Pattern[str] | None,
    ) -> dict[UUID, tuple[re.Pattern[str] | None, ...]]:
        """By review: the names its text is masked with. Its own customer's, its agent's
        and its tickets' assignees', and the tenant's staff: never those of the other
        reviews on the page, or what one review shows would depend on its neighbours and
        give away their authors' names."""
        repo = FeedRepository(session)
        customers = sorted({r.customer_id for r in rows if r.customer_id is not None})
        names = await repo.customer_names(tenant_id, customers)
        assignees = await repo.assignees(tenant_id, [r.id for r in rows])
        known: dict[UUID, tuple[re.Pattern[str] | None, ...]] = {}
        for row in rows:
            own: list[str | None] = [row.agent_ref, *assignees.get(row.id, [])]
            if row.customer_id is not None:
                own += names.get(row.customer_id, [])
            known[row.id] = (masking.known_names_pattern(masking.name_tokens(own)), staff)
        return known

    async def _staff(self, session: AsyncSession, tenant_id: UUID) -> re.Pattern[str] | None:
        names = await FeedRepository(session).staff_names(tenant_id)
        return masking.known_names_pattern(masking.name_tokens(names))

    def _review(
        self, feed: Feed, row: ReviewRow, known: Sequence[re.Pattern[str] | None]
    ) -> PublicReview:
        def clean(text: str | None) -> str | None:
            return None if text is None else masking.mask(text, known=known, region=feed.region)

        reply = None
        if row.reply is not None and row.replied_at is not None:
            reply = PublicReply(
                body=clean(row.reply) or "", date=row.replied_at.astimezone(feed.zone).date()
            )
        return PublicReview(
            id=public_id(feed.key, "review", row.id),
            kind=ReviewKind(row.kind),
            score=row.score,
            scale=Scale(min=row.scale_min, max=row.scale_max),
            comment=clean(row.comment),
            touchpoint=clean(row.touchpoint),
            date=row.occurred_at.astimezone(feed.zone).date(),
            reply=reply,
        )

    async def reviews(
        self,
        session: AsyncSession,
        feed: Feed,
        *,
        kind: ReviewKind | None,
        detailed: bool,
        limit: int,
        cursor: str | None,
    ) -> ReviewFeed:
        position = self._after(feed, REVIEWS, cursor)
        repo = FeedRepository(session)
        tenant_id = feed.tenant.id
        items: list[PublicReview] = []
        batch = DETAIL_BATCH if detailed else limit + 1
        scanned = 0
        next_position: tuple[datetime, UUID] | None = None
        staff = await self._staff(session, tenant_id)
        while True:
            rows = await repo.reviews(
                tenant_id,
                kind=kind.value if kind else None,
                after=position,
                limit=batch,
                with_comment=detailed,
            )
            known = await self._known_names(session, tenant_id, rows, staff)
            full = False
            for row in rows:
                review = self._review(feed, row, known[row.id])
                if detailed and not is_detailed(review.comment):
                    position = (row.occurred_at, row.id)
                    scanned += 1
                    continue
                if len(items) == limit:
                    full = True
                    break
                items.append(review)
                position = (row.occurred_at, row.id)
                scanned += 1
            if full:
                next_position = position
                break
            if len(rows) < batch:
                break
            if scanned >= MAX_SCAN:
                next_position = position
                break
        return ReviewFeed(
            tenant=FeedTenant(name=feed.tenant.name, slug=feed.tenant.slug),
            items=items,
            next_cursor=None
            if next_position is None
            else encode_cursor(feed.key, REVIEWS, *next_position),
        )

    async def improvements(
        self, session: AsyncSession, feed: Feed, *, limit: int, cursor: str | None, lang: str
    ) -> ImprovementFeed:
        after = self._after(feed, IMPROVEMENTS, cursor)
        repo = FeedRepository(session)
        tenant_id = feed.tenant.id
        rows = await repo.improvements(tenant_id, after=after, limit=limit + 1)
        page = rows[:limit]
        themes = await repo.theme_names(tenant_id, sorted({a.theme for a in page if a.theme}))
        staff = await self._staff(session, tenant_id)
        items = [
            await self._improvement(
                session,
                feed,
                action,
                themes,
                (masking.known_names_pattern(masking.name_tokens([action.owner])), staff),
                lang,
            )
            for action in page
        ]
        last = page[-1] if len(rows) > limit else None
        return ImprovementFeed(
            tenant=FeedTenant(name=feed.tenant.name, slug=feed.tenant.slug),
            items=items,
            next_cursor=None
            if last is None
            else encode_cursor(feed.key, IMPROVEMENTS, last.created_at, last.id),
        )

    async def _improvement(
        self,
        session: AsyncSession,
        feed: Feed,
        action: ImprovementAction,
        themes: Mapping[str, Mapping[str, Any]],
        known: Sequence[re.Pattern[str] | None],
        lang: str,
    ) -> PublicImprovement:
        metric = ActionMetric(action.metric)
        base = action.baseline
        report: ImpactRead | None
        try:
            report = await impact(session, feed.tenant.id, action.id, None, None)
        except FeedbackError:
            report = None
        base_value = base.get("value")
        base_n = int(base.get("n") or 0)
        mentions = None
        if action.theme is not None:
            if metric is ActionMetric.THEME_SHARE:
                mentions = _count(base_value, base_n)
            elif report is not None and report.theme_share_before is not None:
                share = report.theme_share_before
                mentions = _count(share.value, share.n)
        result = None
        if report is not None:
            result = Result(
                after=Measurement(value=report.after.value, n=report.after.n),
                change=None if report.change is None else report.change.delta,
                interval=None if report.change is None else report.change.interval,
                verdict=report.verdict,
            )
        zone = feed.zone

        def day(value: Any, *, exclusive: bool = False) -> date:
            at = datetime.fromisoformat(str(value))
            if exclusive:
                at -= timedelta(microseconds=1)
            return at.astimezone(zone).date()

        def clean(text: str | None) -> str | None:
            return None if text is None else masking.mask(text, known=known, region=feed.region)

        return PublicImprovement(
            id=public_id(feed.key, "improvement", action.id),
            title=clean(action.title) or "",
            summary=clean(action.public_summary),
            status=ActionStatus(action.status),
            theme=None
            if action.theme is None
            else PublicTheme(key=action.theme, label=label(themes.get(action.theme, {}), lang)),
            customers_said=CustomersSaid(
                mentions=mentions,
                responses=base_n,
                period_from=day(base["from"]),
                period_to=day(base["to"], exclusive=True),
            ),
            metric=metric,
            baseline=Measurement(value=base_value, n=base_n),
            target=action.target,
            result=result,
            started_on=action.starts_on,
            completed_on=None
            if action.completed_at is None
            else action.completed_at.astimezone(zone).date(),
        )


def _count(share: float | None, n: int) -> int | None:
    """Mentions from a share in percent of n comments."""
    return None if share is None else round(share * n / 100)


feed = FeedService()
