from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import Row, Select, delete, literal_column, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from feedback_api.kit.rawsql import driver_connection
from feedback_api.models import Customer, Response, ResponseReply
from feedback_api.responses.schemas import ResponseFilters


class NewResponse(NamedTuple):
    """A row to insert, in the column order of INSERT_MANY's arrays."""

    id: UUID
    kind: str
    score: int
    scale_min: int
    scale_max: int
    comment: str | None
    tags: str  # JSON array
    channel: str
    touchpoint: str | None
    survey: str | None
    customer_id: UUID | None
    agent_ref: str | None
    location_ref: str | None
    language: str | None
    attributes: str  # JSON object
    external_id: str | None
    request_hash: str
    api_key_id: UUID | None
    occurred_at: datetime
    received_at: datetime
    verified: bool
    ip_hash: str | None
    ua_hash: str | None
    publish_consent: bool


INSERT_MANY = """
INSERT INTO responses (tenant_id, id, kind, score, scale_min, scale_max, comment, tags, channel,
    touchpoint, survey, customer_id, agent_ref, location_ref, language, attributes, external_id,
    request_hash, api_key_id, occurred_at, received_at, updated_at, verified, ip_hash, ua_hash,
    publish_consent)
SELECT $1, u.id, u.kind, u.score, u.scale_min, u.scale_max, u.comment,
    ARRAY(SELECT jsonb_array_elements_text(u.tags::jsonb)), u.channel, u.touchpoint, u.survey,
    u.customer_id, u.agent_ref, u.location_ref, u.language, u.attributes::jsonb, u.external_id,
    u.request_hash, u.api_key_id, u.occurred_at, u.received_at, u.received_at, u.verified,
    u.ip_hash, u.ua_hash, u.publish_consent
FROM unnest($2::uuid[], $3::text[], $4::int2[], $5::int2[], $6::int2[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::uuid[], $13::text[], $14::text[], $15::text[],
    $16::text[], $17::text[], $18::text[], $19::uuid[], $20::timestamptz[], $21::timestamptz[],
    $22::bool[], $23::text[], $24::text[], $25::bool[])
    AS u(id, kind, score, scale_min, scale_max, comment, tags, channel, touchpoint, survey,
    customer_id, agent_ref, location_ref, language, attributes, external_id, request_hash,
    api_key_id, occurred_at, received_at, verified, ip_hash, ua_hash, publish_consent)
ON CONFLICT (tenant_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
RETURNING id
"""
ResponseRow = Row[Response, str | None]


class ResponseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def _with_customer_ref() -> Select[Response, str | None]:
        # Reads return the customer's external ref beside the row, never its uuid.
        return select(Response, Customer.external_ref).outerjoin(
            Customer,
            (Customer.tenant_id == Response.tenant_id) & (Customer.id == Response.customer_id),
        )

    def _select(self, tenant_id: UUID) -> Select[Response, str | None]:
        return self._with_customer_ref().where(
            Response.tenant_id == tenant_id, Response.deleted_at.is_(None)
        )

    async def insert_many(self, tenant_id: UUID, rows: Sequence[NewResponse]) -> set[UUID]:
        """Insert in one statement; rows whose external_id is taken are skipped. Returns the
        ids inserted. On asyncpg directly (see kit.rawsql): one array per column, so one
        prepared statement serves a single response and a batch of 1,000 alike."""
        conn = await driver_connection(self.session)
        columns = list(zip(*rows, strict=True))
        records = await conn.fetch(INSERT_MANY, tenant_id, *columns)
        return {record[0] for record in records}

    async def answer_score(self, tenant_id: UUID, invitation_id: UUID) -> int | None:
        """The score of the invitation's (not deleted) answer. A column, not the entity: the
        row changes in this transaction and must not linger stale in the identity map."""
        stmt = select(Response.score).where(
            Response.tenant_id == tenant_id,
            Response.invitation_id == invitation_id,
            Response.deleted_at.is_(None),
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def answer_state(
        self, tenant_id: UUID, invitation_id: UUID
    ) -> tuple[int, str | None] | None:
        """Score and comment of the invitation's (not deleted) answer, as columns (see
        `answer_score`)."""
        stmt = select(Response.score, Response.comment).where(
            Response.tenant_id == tenant_id,
            Response.invitation_id == invitation_id,
            Response.deleted_at.is_(None),
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def upsert_answer(
        self, values: dict[str, Any], changes: tuple[str, ...]
    ) -> tuple[UUID, bool] | None:
        """Insert the invitation's answer, or replace the earlier one's `changes` (last
        answer wins). Returns (id, created); None when the earlier answer was deleted."""
        stmt = insert(Response).values(**values)
        upsert: ReturningInsert[UUID, bool] = stmt.on_conflict_do_update(
            index_elements=[Response.tenant_id, Response.invitation_id],
            index_where=Response.invitation_id.is_not(None),
            set_={name: stmt.excluded[name] for name in changes},
            where=Response.deleted_at.is_(None),
        ).returning(Response.id, literal_column("xmax = 0"))
        row = (await self.session.execute(upsert)).first()
        return (row[0], bool(row[1])) if row is not None else None

    async def with_refs(self, tenant_id: UUID, ids: Collection[UUID]) -> list[ResponseRow]:
        """The responses (not deleted) with their customer's ref, in id order."""
        stmt = self._select(tenant_id).where(Response.id.in_(ids)).order_by(Response.id)
        return list((await self.session.execute(stmt)).all())

    async def get(self, tenant_id: UUID, response_id: UUID) -> ResponseRow | None:
        stmt = self._select(tenant_id).where(Response.id == response_id)
        return (await self.session.execute(stmt)).first()

    async def by_external_ids(
        self, tenant_id: UUID, external_ids: Collection[str]
    ) -> dict[str, ResponseRow]:
        """Deleted ones included: an external_id stays taken after its response is deleted."""
        stmt = self._with_customer_ref().where(
            Response.tenant_id == tenant_id, Response.external_id.in_(external_ids)
        )
        rows = (await self.session.execute(stmt)).all()
        return {row[0].external_id: row for row in rows if row[0].external_id is not None}

    def _filtered(self, tenant_id: UUID, f: ResponseFilters) -> Select[Response, str | None]:
        stmt = self._select(tenant_id)
        if f.kind is not None:
            stmt = stmt.where(Response.kind == f.kind)
        if f.channel is not None:
            stmt = stmt.where(Response.channel == f.channel)
        if f.touchpoint is not None:
            stmt = stmt.where(Response.touchpoint == f.touchpoint)
        if f.survey is not None:
            stmt = stmt.where(Response.survey == f.survey)
        if f.customer is not None:
            stmt = stmt.where(Customer.external_ref == f.customer)
        if f.tag is not None:
            stmt = stmt.where(Response.tags.contains([f.tag]))
        if f.score_min is not None:
            stmt = stmt.where(Response.score >= f.score_min)
        if f.score_max is not None:
            stmt = stmt.where(Response.score <= f.score_max)
        if f.occurred_from is not None:
            stmt = stmt.where(Response.occurred_at >= f.occurred_from)
        if f.occurred_to is not None:
            stmt = stmt.where(Response.occurred_at < f.occurred_to)
        if f.has_comment is not None:
            has = Response.comment.is_not(None) & (Response.comment != "")
            stmt = stmt.where(has if f.has_comment else ~has)
        return stmt

    async def page(
        self,
        tenant_id: UUID,
        filters: ResponseFilters,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
        newest_first: bool,
    ) -> Sequence[ResponseRow]:
        """One keyset page by (occurred_at, id): newest first for lists, oldest first for
        exports."""
        stmt = self._filtered(tenant_id, filters)
        key = tuple_(Response.occurred_at, Response.id)
        if after is not None:
            stmt = stmt.where(key < tuple_(*after) if newest_first else key > tuple_(*after))
        if newest_first:
            stmt = stmt.order_by(Response.occurred_at.desc(), Response.id.desc())
        else:
            stmt = stmt.order_by(Response.occurred_at, Response.id)
        return (await self.session.execute(stmt.limit(limit))).all()

    async def numbered_page(
        self,
        tenant_id: UUID,
        filters: ResponseFilters,
        *,
        updated_from: datetime | None,
        updated_to: datetime | None,
        by_updated: bool,
        descending: bool,
        offset: int,
        limit: int,
    ) -> Sequence[ResponseRow]:
        """A page by number (for clients that page so, as Delighted's did): OFFSET over a
        total order, by occurred_at or updated_at, then id."""
        stmt = self._filtered(tenant_id, filters)
        if updated_from is not None:
            stmt = stmt.where(Response.updated_at >= updated_from)
        if updated_to is not None:
            stmt = stmt.where(Response.updated_at <= updated_to)
        column = Response.updated_at if by_updated else Response.occurred_at
        order = (column.desc(), Response.id.desc()) if descending else (column, Response.id)
        stmt = stmt.order_by(*order).offset(offset).limit(limit)
        return (await self.session.execute(stmt)).all()

    async def update(
        self, tenant_id: UUID, response_id: UUID, values: dict[str, Any], *, now: datetime
    ) -> bool:
        stmt = (
            update(Response)
            .where(
                Response.tenant_id == tenant_id,
                Response.id == response_id,
                Response.deleted_at.is_(None),
            )
            .values(**values, updated_at=now)
            .returning(Response.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def all_for_customer(self, tenant_id: UUID, customer_id: UUID) -> Sequence[Response]:
        stmt = (
            select(Response)
            .where(Response.tenant_id == tenant_id, Response.customer_id == customer_id)
            .order_by(Response.occurred_at, Response.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def anonymise_for_customer(self, tenant_id: UUID, customer_id: UUID) -> list[UUID]:
        """Unlink and strip free text and ids that lead back to the person; keep score,
        kind, channel, touchpoint, tags and time for the aggregates. Also what would tie
        their responses to each other once anonymous: the client's IP and user-agent hashes
        and `request_hash` (an unkeyed SHA-256 of what was sent, which a guess of the
        comment could confirm). `updated_at` stays as it was: the same erasure time on every
        one of them would tie them together again."""
        stmt = (
            update(Response)
            .where(Response.tenant_id == tenant_id, Response.customer_id == customer_id)
            .values(
                customer_id=None,
                comment=None,
                attributes={},
                language=None,
                external_id=None,
                ip_hash=None,
                ua_hash=None,
                # Only compared for a replay by external_id, which is gone.
                request_hash="",
                # Nothing of theirs stays in the public feed (their replies go too).
                publish_consent=False,
            )
            .returning(Response.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def reply(self, tenant_id: UUID, response_id: UUID) -> ResponseReply | None:
        stmt = select(ResponseReply).where(
            ResponseReply.tenant_id == tenant_id, ResponseReply.response_id == response_id
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def write_reply(
        self, tenant_id: UUID, response_id: UUID, body: str, key_id: UUID | None, now: datetime
    ) -> ResponseReply:
        """Create the reply, or replace its text and raise its version: one statement, so
        two writers at once are taken one after the other."""
        stmt = insert(ResponseReply).values(
            tenant_id=tenant_id,
            response_id=response_id,
            body=body,
            created_by_key_id=key_id,
            updated_by_key_id=key_id,
            created_at=now,
            updated_at=now,
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[ResponseReply.tenant_id, ResponseReply.response_id],
            set_={
                "body": stmt.excluded.body,
                "version": ResponseReply.version + 1,
                "updated_by_key_id": key_id,
                "updated_at": now,
            },
        ).returning(ResponseReply)
        upsert = upsert.execution_options(populate_existing=True)
        return (await self.session.scalars(upsert)).one()

    async def delete_replies(self, tenant_id: UUID, response_ids: Sequence[UUID]) -> None:
        if response_ids:
            await self.session.execute(
                delete(ResponseReply).where(
                    ResponseReply.tenant_id == tenant_id,
                    ResponseReply.response_id.in_(response_ids),
                )
            )
