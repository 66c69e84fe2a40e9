"""The screen's queue (responses not yet screened), the records the detectors read, and the
near-duplicate detector's text bands."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Uuid, and_, delete, or_, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.integrity.records import Record
from feedback_api.kit.rawsql import driver_connection
from feedback_api.models import ApiKey, IntegrityTextBand, Response, Survey

# A candidate near-duplicate shares at least this many of 16 LSH bands: texts with 3-gram
# Jaccard 0.8 (well below edit similarity 0.9) do with probability 0.99, templated but
# different texts (Jaccard 0.5) with 0.08, which keeps the exact comparisons few.
MIN_SHARED_BANDS = 3
# A band hash shared by very many texts (a quick-reply phrase everyone taps) says little:
# only its most recent texts are candidates, which bounds the work per comment.
PER_BAND = 50


def _records() -> Any:  # Select of Record's fields
    return select(
        Response.id,
        Response.kind,
        Response.score,
        Response.scale_max,
        Response.occurred_at,
        Response.channel,
        Response.customer_id,
        Response.touchpoint,
        Response.survey,
        Response.agent_ref,
        Response.location_ref,
        Response.ip_hash,
        Response.ua_hash,
        ApiKey.id.label("publishable_key_id"),
        Response.comment,
    ).outerjoin(
        ApiKey,
        and_(
            ApiKey.id == Response.api_key_id,
            ApiKey.tenant_id == Response.tenant_id,
            ApiKey.kind == "publishable",
        ),
    )


class QueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_unscreened(
        self, limit: int, tenant_id: UUID | None = None
    ) -> Sequence[tuple[UUID, UUID]]:
        stmt = (
            select(Response.tenant_id, Response.id)
            .where(Response.screened_at.is_(None))
            .where(Response.tenant_id == tenant_id if tenant_id else true())
            .order_by(Response.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [(t, i) for t, i in (await self.session.execute(stmt)).all()]

    async def mark_screened(self, tenant_id: UUID, ids: Collection[UUID], now: datetime) -> None:
        await self.session.execute(
            update(Response)
            .where(Response.tenant_id == tenant_id, Response.id.in_(ids))
            .values(screened_at=now)
            .execution_options(synchronize_session=False)
        )

    async def mark_unscreened(self, tenant_id: UUID, ids: Collection[UUID]) -> None:
        if ids:
            await self.session.execute(
                update(Response)
                .where(Response.tenant_id == tenant_id, Response.id.in_(ids))
                .values(screened_at=None)
                .execution_options(synchronize_session=False)
            )

    async def records(self, tenant_id: UUID, ids: Collection[UUID]) -> list[Record]:
        stmt = _records().where(
            Response.tenant_id == tenant_id, Response.id.in_(ids), Response.deleted_at.is_(None)
        )
        return [Record(*row) for row in (await self.session.execute(stmt)).all()]

    async def context(
        self,
        tenant_id: UUID,
        start: datetime,
        end: datetime,
        *,
        customer_ids: Collection[UUID],
        ip_hashes: Collection[str],
        key_ids: Collection[UUID],
    ) -> list[Record]:
        """Responses in [start, end] by any of these customers, IP hashes or keys."""
        who = []
        if customer_ids:
            who.append(Response.customer_id.in_(customer_ids))
        if ip_hashes:
            who.append(Response.ip_hash.in_(ip_hashes))
        if key_ids:
            who.append(Response.api_key_id.in_(key_ids))
        if not who:
            return []
        stmt = _records().where(
            Response.tenant_id == tenant_id,
            Response.deleted_at.is_(None),
            Response.occurred_at.between(start, end),
            or_(*who),
        )
        return [Record(*row) for row in (await self.session.execute(stmt)).all()]

    async def surveys_with_texts(self, tenant_id: UUID, keys: Collection[str]) -> Sequence[Survey]:
        if not keys:
            return []
        stmt = select(Survey).where(Survey.tenant_id == tenant_id, Survey.key.in_(keys))
        return (await self.session.scalars(stmt)).all()

    # -- text bands ------------------------------------------------------------------------

    async def add_bands(
        self, tenant_id: UUID, rows: Sequence[tuple[UUID, int, int, datetime]]
    ) -> None:
        """One statement of arrays on asyncpg (see kit.rawsql): 16 rows per comment."""
        if not rows:
            return
        conn = await driver_connection(self.session)
        ids, bands, hashes, times = (list(c) for c in zip(*rows, strict=True))
        await conn.execute(
            "INSERT INTO integrity_text_bands (tenant_id, response_id, band, hash, occurred_at) "
            "SELECT $1, * FROM unnest($2::uuid[], $3::int2[], $4::int8[], $5::timestamptz[]) "
            "ON CONFLICT DO NOTHING",
            tenant_id,
            ids,
            bands,
            hashes,
            times,
        )

    async def band_candidates(
        self,
        tenant_id: UUID,
        bands: Collection[tuple[int, int]],
        start: datetime,
        end: datetime,
        limit: int,
    ) -> list[Record]:
        """Responses in [start, end] sharing at least MIN_SHARED_BANDS of these (band, hash)
        pairs, most recent first."""
        if not bands:
            return []
        ids = text(
            "SELECT b.response_id "
            "FROM unnest(CAST(:bands AS int2[]), CAST(:hashes AS int8[])) AS w(band, hash) "
            "CROSS JOIN LATERAL (SELECT x.response_id, x.occurred_at "
            "  FROM integrity_text_bands x WHERE x.tenant_id = :tenant_id "
            "  AND x.band = w.band AND x.hash = w.hash "
            "  AND x.occurred_at BETWEEN :start AND :end "
            "  ORDER BY x.occurred_at DESC LIMIT :per_band) b "
            "GROUP BY b.response_id HAVING count(*) >= :shared "
            "ORDER BY max(b.occurred_at) DESC LIMIT :limit"
        ).bindparams(
            bands=[b for b, _ in bands],
            hashes=[h for _, h in bands],
            tenant_id=tenant_id,
            start=start,
            end=end,
            limit=limit,
            shared=MIN_SHARED_BANDS,
            per_band=PER_BAND,
        )
        stmt = _records().where(
            Response.tenant_id == tenant_id,
            Response.deleted_at.is_(None),
            Response.id.in_(ids.columns(response_id=Uuid)),
        )
        return [Record(*row) for row in (await self.session.execute(stmt)).all()]

    async def forget_texts(self, tenant_id: UUID, response_ids: Collection[UUID]) -> None:
        if response_ids:
            await self.session.execute(
                delete(IntegrityTextBand).where(
                    IntegrityTextBand.tenant_id == tenant_id,
                    IntegrityTextBand.response_id.in_(response_ids),
                )
            )
