from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    Uuid,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import NotFound
from feedback_api.integrity.records import POSITIVE_FROM, Record
from feedback_api.integrity.schemas import RewardEligible
from feedback_api.kit.rawsql import driver_connection
from feedback_api.models import (
    ApiKey,
    AuditLog,
    Customer,
    IntegrityFlag,
    IntegrityFlagResponse,
    IntegritySettings,
    IntegrityTextBand,
    Response,
    RewardGrant,
    Survey,
)

# The evidence of a flag an erasure split off for one of the erased customer's responses
# (integrity.service.forget_responses).
DETACHED = "detached"

# A candidate near-duplicate shares at least this many of 16 LSH bands: texts with 3-gram
# Jaccard 0.8 (well below edit similarity 0.9) do with probability 0.99, templated but
# different texts (Jaccard 0.5) with 0.08, which keeps the exact comparisons few.
MIN_SHARED_BANDS = 3
# A band hash shared by very many texts (a quick-reply phrase everyone taps) says little:
# only its most recent texts are candidates, which bounds the work per comment.
PER_BAND = 50
POSITIVE_SQL = (
    "CASE r.kind "
    + " ".join(f"WHEN '{k}' THEN {v}" for k, v in POSITIVE_FROM.items())
    + " ELSE r.scale_max END"
)
# Whether a response counts as excluded, given its flags (the rule of docs/integrity.md).
EXCLUDES = """
EXISTS (SELECT 1 FROM integrity_flag_responses l
        JOIN integrity_flags f ON f.tenant_id = l.tenant_id AND f.id = l.flag_id
        WHERE l.tenant_id = r.tenant_id AND l.response_id = r.id
          AND (f.status = 'confirmed' OR (f.status = 'open' AND f.strength >= :threshold)))
"""


def positive_clause() -> Any:
    """SQL for Record.positive."""
    return Response.score >= case(
        *[(Response.kind == kind, low) for kind, low in POSITIVE_FROM.items()],
        else_=Response.scale_max,
    )


def _dimension(dimension: str) -> Any:
    """The column of a pattern detector's group: location or agent."""
    return Response.location_ref if dimension == "location" else Response.agent_ref


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


# A flag's link row to the response it flags.
_FLAGGED_RESPONSE = and_(
    Response.tenant_id == IntegrityFlagResponse.tenant_id,
    Response.id == IntegrityFlagResponse.response_id,
)


class IntegrityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- settings --------------------------------------------------------------------------

    async def settings(self, tenant_id: UUID) -> IntegritySettings:
        """The tenant's settings, created with defaults on first use."""
        await self.session.execute(
            insert(IntegritySettings).values(tenant_id=tenant_id).on_conflict_do_nothing()
        )
        stmt = select(IntegritySettings).where(IntegritySettings.tenant_id == tenant_id)
        return (await self.session.scalars(stmt)).one()

    async def salt(self, tenant_id: UUID) -> bytes:
        """On the public ingest path: a read, and a write only the first time."""
        stmt = select(IntegritySettings.salt).where(IntegritySettings.tenant_id == tenant_id)
        found = (await self.session.scalars(stmt)).one_or_none()
        return found if found is not None else (await self.settings(tenant_id)).salt

    # -- the screen's queue ----------------------------------------------------------------

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

    # -- erasure ---------------------------------------------------------------------------

    async def forget_rewards(self, tenant_id: UUID, response_ids: Collection[UUID]) -> None:
        """A grant only limits the customer's next reward; an erased customer has none."""
        await self.session.execute(
            delete(RewardGrant).where(
                RewardGrant.tenant_id == tenant_id, RewardGrant.response_id.in_(response_ids)
            )
        )

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
        for flag in flags.values():
            # What the caller gets is the flag as it was; the rows changed underneath.
            self.session.expunge(flag)
        return [flags[i] for i in flag_ids], remaining

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

    async def surveys_with_texts(self, tenant_id: UUID, keys: Collection[str]) -> Sequence[Survey]:
        if not keys:
            return []
        stmt = select(Survey).where(Survey.tenant_id == tenant_id, Survey.key.in_(keys))
        return (await self.session.scalars(stmt)).all()

    # -- flags -----------------------------------------------------------------------------

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

    async def response_counts(self, tenant_id: UUID, ids: Collection[UUID]) -> dict[UUID, int]:
        stmt = select(IntegrityFlag.id, IntegrityFlag.response_count).where(
            IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id.in_(ids)
        )
        return dict((await self.session.execute(stmt)).all())

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

    async def flag(self, tenant_id: UUID, flag_id: UUID, *, lock: bool = False) -> IntegrityFlag:
        stmt = select(IntegrityFlag).where(
            IntegrityFlag.tenant_id == tenant_id, IntegrityFlag.id == flag_id
        )
        if lock:
            stmt = stmt.with_for_update()
        flag = (await self.session.scalars(stmt)).one_or_none()
        if flag is None:
            raise NotFound("no such flag")
        return flag

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

    async def existing_responses(self, tenant_id: UUID, ids: Collection[UUID]) -> set[UUID]:
        stmt = select(Response.id).where(
            Response.tenant_id == tenant_id, Response.id.in_(ids), Response.deleted_at.is_(None)
        )
        return set((await self.session.scalars(stmt)).all())

    async def grant_rewards(
        self,
        tenant_id: UUID,
        ids: Collection[UUID],
        since: datetime | None,
        interval: timedelta,
    ) -> list[RewardEligible]:
        """Record and return the rewards these responses earn: not excluded, of an
        identified customer, received since rewards were turned on, and the customer's
        first reward within `interval` (0: no limit). Customers are locked first so that
        two workers cannot both grant one customer's reward."""
        customers = select(Response.customer_id).where(
            Response.tenant_id == tenant_id,
            Response.id.in_(ids),
            Response.customer_id.is_not(None),
        )
        await self.session.execute(
            select(Customer.id)
            .where(Customer.tenant_id == tenant_id, Customer.id.in_(customers))
            .order_by(Customer.id)
            .with_for_update()
        )
        sql = text(
            """
            WITH cand AS (
                SELECT r.id, r.customer_id, c.external_ref, r.invitation_id, r.survey,
                       r.touchpoint, r.channel, r.occurred_at,
                       row_number() OVER (PARTITION BY r.customer_id
                                          ORDER BY r.occurred_at, r.id) AS k
                FROM responses r
                JOIN customers c ON c.tenant_id = r.tenant_id AND c.id = r.customer_id
                WHERE r.tenant_id = :tenant_id AND r.id = ANY(:ids) AND NOT r.excluded
                  AND r.deleted_at IS NULL AND r.received_at >= :since
                  AND NOT EXISTS (
                      SELECT 1 FROM reward_grants g
                      WHERE g.tenant_id = r.tenant_id AND g.customer_id = r.customer_id
                        AND CAST(:limited AS boolean)
                        AND g.granted_at > now() - CAST(:interval AS interval))
            ), granted AS (
                INSERT INTO reward_grants (tenant_id, response_id, customer_id)
                SELECT :tenant_id, id, customer_id FROM cand
                WHERE k = 1 OR NOT CAST(:limited AS boolean)
                ON CONFLICT DO NOTHING
                RETURNING response_id
            )
            SELECT cand.id, cand.external_ref, cand.invitation_id, cand.survey,
                   cand.touchpoint, cand.channel, cand.occurred_at
            FROM cand JOIN granted ON granted.response_id = cand.id
            ORDER BY cand.occurred_at, cand.id
            """
        )
        rows = await self.session.execute(
            sql,
            {
                "tenant_id": tenant_id,
                "ids": list(ids),
                "since": since or datetime.min.replace(tzinfo=UTC),
                "limited": interval > timedelta(0),
                "interval": interval,
            },
        )
        return [
            RewardEligible(
                response_id=rid,
                customer=ref,
                invitation_id=inv,
                survey=survey,
                touchpoint=tp,
                channel=channel,
                occurred_at=at,
            )
            for rid, ref, inv, survey, tp, channel, at in rows.all()
        ]

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

    # -- patterns (solicitation, spikes) ---------------------------------------------------

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

    # -- report ----------------------------------------------------------------------------

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
