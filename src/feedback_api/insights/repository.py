from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import delete, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from feedback_api.kit.rawsql import driver_connection
from feedback_api.metrics.repository import SqlParams, selection_filters
from feedback_api.metrics.selection import Selection
from feedback_api.models import Response, ResponseTheme, Theme, ThemeDictionary

# The tenant's dictionary marker in pg_locks (taken by theme_dictionary_version_for_ingest,
# migration 0015): pg_advisory_xact_lock_shared(21576, hashtext(tenant)) in this database.
_MARKER = (
    "locktype = 'advisory' AND classid = 21576 AND objsubid = 2 AND granted "
    "AND objid = hashtext(:tenant)::oid "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class ThemeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- the dictionary ---------------------------------------------------------------------

    async def all(self, tenant_id: UUID) -> Sequence[Theme]:
        stmt = select(Theme).where(Theme.tenant_id == tenant_id).order_by(Theme.key)
        return (await self.session.scalars(stmt)).all()

    async def get(self, tenant_id: UUID, key: str) -> Theme | None:
        return await self.session.get(Theme, (tenant_id, key), populate_existing=True)

    async def count(self, tenant_id: UUID) -> int:
        stmt = select(func.count()).select_from(Theme).where(Theme.tenant_id == tenant_id)
        return int((await self.session.scalar(stmt)) or 0)

    async def terms_besides(self, tenant_id: UUID, key: str) -> int:
        """Terms of the dictionary's other themes."""
        total = func.cardinality(Theme.keywords) + func.cardinality(Theme.aliases)
        total = total + func.cardinality(Theme.negative_keywords)
        stmt = select(func.coalesce(func.sum(total), 0)).where(
            Theme.tenant_id == tenant_id, Theme.key != key
        )
        return int((await self.session.scalar(stmt)) or 0)

    async def upsert(
        self, tenant_id: UUID, key: str, values: dict[str, Any], *, origin: str
    ) -> bool:
        """Insert or replace (`origin` only for a new one); True when created."""
        inserting = insert(Theme).values(tenant_id=tenant_id, key=key, origin=origin, **values)
        upsert = inserting.on_conflict_do_update(
            index_elements=[Theme.tenant_id, Theme.key],
            set_={**{k: inserting.excluded[k] for k in values}, "updated_at": func.now()},
        )
        # xmax = 0 only on a freshly inserted row version: tells created from replaced.
        stmt: ReturningInsert[tuple[bool]] = upsert.returning(literal_column("xmax = 0"))
        return bool((await self.session.execute(stmt)).scalar_one())

    async def delete(self, tenant_id: UUID, key: str) -> bool:
        stmt = delete(Theme).where(Theme.tenant_id == tenant_id, Theme.key == key)
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- versions ---------------------------------------------------------------------------

    async def create_state(self, tenant_id: UUID) -> None:
        await self.session.execute(
            insert(ThemeDictionary).values(tenant_id=tenant_id).on_conflict_do_nothing()
        )

    async def bump(self, tenant_id: UUID) -> int:
        """The dictionary changed: its next version. The row is locked FOR UPDATE first, so
        two changes of one dictionary queue in order (ingest takes no lock on it: see
        `version_for_ingest`)."""
        await self.session.execute(
            select(ThemeDictionary.tenant_id)
            .where(ThemeDictionary.tenant_id == tenant_id)
            .with_for_update()
        )
        stmt = (
            insert(ThemeDictionary)
            .values(tenant_id=tenant_id, version=1)
            .on_conflict_do_update(
                index_elements=[ThemeDictionary.tenant_id],
                set_={"version": ThemeDictionary.version + 1, "updated_at": func.now()},
            )
            .returning(ThemeDictionary.version)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def state(
        self, tenant_id: UUID, *, lock: bool = False, skip_locked: bool = False
    ) -> ThemeDictionary | None:
        """The dictionary's versions and pass. `lock`: FOR UPDATE; with `skip_locked`, None
        when another transaction holds the row."""
        stmt = select(ThemeDictionary).where(ThemeDictionary.tenant_id == tenant_id)
        if lock:
            stmt = stmt.with_for_update(skip_locked=skip_locked)
        return (await self.session.scalars(stmt)).one_or_none()

    async def version_for_ingest(self, tenant_id: UUID) -> int | None:
        """The dictionary version to classify new comments with. Marks this transaction as
        classifying for the tenant first (the dictionary's advisory lock, shared, which
        nobody takes exclusively: it never waits), so a re-classification pass can wait for
        it (`classifying`). Null only for a tenant whose row is missing (none is: tenants
        get theirs when created, migration 0014 made those of older ones). One round trip
        (migration 0015), on asyncpg directly (the ingest path, see kit.rawsql)."""
        conn = await driver_connection(self.session)
        value = await conn.fetchval("SELECT theme_dictionary_version_for_ingest($1)", tenant_id)
        return None if value is None else int(value)

    async def classifying(self, tenant_id: UUID) -> list[str]:
        """The other transactions of this database that classify comments of the tenant
        now (they hold its marker), as virtual transaction ids: unique while they run."""
        stmt = text(
            f"SELECT virtualtransaction FROM pg_locks WHERE {_MARKER} AND pid <> pg_backend_pid()"
        )
        rows = await self.session.execute(stmt, {"tenant": str(tenant_id)})
        return sorted({str(vxid) for (vxid,) in rows})

    async def still_classifying(self, tenant_id: UUID, transactions: Sequence[str]) -> int:
        """How many of `transactions` (from `classifying`) have not ended yet."""
        stmt = text(
            "SELECT count(DISTINCT virtualtransaction) FROM pg_locks "
            f"WHERE {_MARKER} AND virtualtransaction = ANY(:vxids)"
        )
        params = {"tenant": str(tenant_id), "vxids": list(transactions)}
        return int((await self.session.execute(stmt, params)).scalar_one())

    async def save_pass(
        self, tenant_id: UUID, *, pass_version: int, cursor: UUID | None, classified: int
    ) -> None:
        await self.session.execute(
            update(ThemeDictionary)
            .where(ThemeDictionary.tenant_id == tenant_id)
            .values(pass_version=pass_version, pass_cursor=cursor, classified_version=classified)
        )

    # --- mentions ---------------------------------------------------------------------------

    async def comments_after(
        self, tenant_id: UUID, after: UUID | None, limit: int
    ) -> Sequence[tuple[UUID, str | None]]:
        """The next responses in id order, with their comments (null when none or erased)."""
        stmt = select(Response.id, Response.comment).where(Response.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(Response.id > after)
        rows = await self.session.execute(stmt.order_by(Response.id).limit(limit))
        return [(r[0], r[1]) for r in rows]

    async def replace_mentions(
        self, tenant_id: UUID, response_ids: Sequence[UUID], mentions: Sequence[tuple[UUID, str]]
    ) -> None:
        """The mentions of `response_ids` become exactly `mentions` (response id, theme)."""
        conn = await driver_connection(self.session)
        if response_ids:
            await conn.execute(
                "DELETE FROM response_themes WHERE tenant_id = $1 AND response_id = ANY($2)",
                tenant_id,
                list(response_ids),
            )
        await self.add_mentions(tenant_id, mentions)

    async def add_mentions(self, tenant_id: UUID, mentions: Sequence[tuple[UUID, str]]) -> None:
        if not mentions:
            return
        conn = await driver_connection(self.session)
        await conn.execute(
            "INSERT INTO response_themes (tenant_id, response_id, theme_key)"
            " SELECT $1, r, t FROM unnest($2::uuid[], $3::text[]) AS m(r, t)"
            " ON CONFLICT DO NOTHING",
            tenant_id,
            [m[0] for m in mentions],
            [m[1] for m in mentions],
        )

    async def mentions_of(self, tenant_id: UUID, response_id: UUID) -> list[str]:
        stmt = (
            select(ResponseTheme.theme_key)
            .where(ResponseTheme.tenant_id == tenant_id, ResponseTheme.response_id == response_id)
            .order_by(ResponseTheme.theme_key)
        )
        return list((await self.session.scalars(stmt)).all())

    async def forget(self, tenant_id: UUID, response_ids: Sequence[UUID]) -> None:
        """Erasure: the mentions of erased comments go with the comments."""
        if response_ids:
            await self.session.execute(
                delete(ResponseTheme).where(
                    ResponseTheme.tenant_id == tenant_id,
                    ResponseTheme.response_id.in_(response_ids),
                )
            )


_BASES = {
    "text": "(coalesce(x.comment, '') <> '' OR cardinality(x.tags) > 0)",
    "comment": "coalesce(x.comment, '') <> ''",
    "all": "TRUE",
}

# A response's drivers, sorted (drivers analysis): by the dimension asked for.
_DRIVERS = {
    "theme": "ARRAY(SELECT rt.theme_key FROM response_themes rt WHERE rt.tenant_id = {tenant} "
    "AND rt.response_id = x.id AND rt.theme_key = ANY({keys}) ORDER BY 1)",
    "tag": "ARRAY(SELECT DISTINCT 'tag:' || tag FROM unnest(x.tags) AS tag ORDER BY 1)",
    "touchpoint": "CASE WHEN x.touchpoint IS NULL THEN ARRAY[]::text[] "
    "ELSE ARRAY[x.touchpoint] END",
    "channel": "ARRAY[x.channel::text]",
}


def _keys(tenant: str) -> str:
    """The dictionary's current keys (mentions of a deleted theme linger until the
    re-classification clears them), computed once per statement."""
    return f"ARRAY(SELECT key FROM themes WHERE tenant_id = {tenant})"


def _mentions(tenant: str) -> str:
    """A LATERAL of the current themes mentioned by response x, as `mt.theme_key`. A probe of
    the primary key per response: the reports read a period, and response_themes has no
    time, so a join would read the tenant's mentions of all time."""
    return (
        "LATERAL (SELECT rt.theme_key FROM response_themes rt "
        f"WHERE rt.tenant_id = {tenant} AND rt.response_id = x.id "
        f"AND rt.theme_key = ANY({_keys(tenant)})) mt"
    )


class DriverTally(NamedTuple):
    drivers: list[str]
    excluded: bool
    score: int
    n: int


class ThemeTally(NamedTuple):
    theme: str | None  # None: every response with text (the base)
    excluded: bool
    score: int
    n: int


class TrendTally(NamedTuple):
    bucket: int  # 1-based, as width_bucket counts
    mentioned: bool
    excluded: bool
    score: int
    n: int


class InsightRepository:
    """Reads for the insight reports: raw scans of responses with their mentions, under the
    same filters as the metrics (metrics.repository.selection_filters)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _fetch(self, sql: str, values: Sequence[Any]) -> list[Any]:
        """A report's read, without JIT compilation: these scans take a tenth of a second
        to a second, and compiling them took 150–250 ms more than it saved (bench/insights.py).
        SET LOCAL: for this request's transaction only."""
        conn = await driver_connection(self.session)
        await conn.execute("SET LOCAL jit = off")
        return list(await conn.fetch(sql, *values))

    def _scope(
        self,
        selection: Selection,
        lo: datetime,
        hi: datetime,
        p: SqlParams,
        extra: str = "",
        *,
        base: str = "text",
        customers: bool = False,
    ) -> str:
        """The responses a report reads, as a CTE body: those with a comment or a tag
        (`base` "text"), with a comment ("comment"), or all of the selection ("all")."""
        joins = ""
        if selection.attributes or customers:
            # An attribute filter needs the customer; a read of attributes keeps the
            # responses without one (LEFT JOIN).
            left = "" if selection.attributes else " LEFT"
            joins = f"{left} JOIN customers c ON c.tenant_id = x.tenant_id AND c.id = x.customer_id"
        where = " AND ".join(
            [
                f"x.tenant_id = {p(selection.tenant_id, '::uuid')}",
                "x.deleted_at IS NULL",
                f"x.occurred_at >= {p(lo, '::timestamptz')}",
                f"x.occurred_at < {p(hi, '::timestamptz')}",
                _BASES[base],
                *selection_filters(selection, "x", p),
            ]
        )
        return (
            f"SELECT x.id, x.score, x.excluded, x.tags, x.occurred_at{extra} "
            f"FROM responses x{joins} WHERE {where}"
        )

    async def theme_tallies(
        self, selection: Selection, lo: datetime, hi: datetime
    ) -> list[ThemeTally]:
        """Score histograms (by exclusion) of the base and of each theme: the dictionary's
        themes that still exist, and each tag as `tag:<tag>`."""
        p = SqlParams()
        tenant = p(selection.tenant_id, "::uuid")
        sql = (
            f"WITH x AS MATERIALIZED ({self._scope(selection, lo, hi, p)}) "
            "SELECT NULL::text, excluded, score, count(*) FROM x GROUP BY 2, 3 "
            "UNION ALL "
            f"SELECT mt.theme_key, x.excluded, x.score, count(*) FROM x, {_mentions(tenant)} "
            "GROUP BY 1, 2, 3 "
            "UNION ALL "
            "SELECT 'tag:' || tag, x.excluded, x.score, count(*) FROM x, unnest(x.tags) AS tag "
            "GROUP BY 1, 2, 3"
        )
        return [ThemeTally(*r) for r in await self._fetch(sql, p.values)]

    async def examples(
        self, selection: Selection, lo: datetime, hi: datetime, *, valid_only: bool, per: int
    ) -> dict[str, list[UUID]]:
        """The latest `per` responses mentioning each theme (ids)."""
        p = SqlParams()
        tenant = p(selection.tenant_id, "::uuid")
        keep = "WHERE NOT excluded" if valid_only else ""
        sql = (
            f"WITH x AS MATERIALIZED ({self._scope(selection, lo, hi, p)}), "
            "m AS (SELECT mt.theme_key AS theme, x.id, x.occurred_at, x.excluded "
            f"FROM x, {_mentions(tenant)} "
            "UNION ALL SELECT 'tag:' || tag, x.id, x.occurred_at, x.excluded "
            "FROM x, unnest(x.tags) AS tag) "
            "SELECT theme, (array_agg(id ORDER BY occurred_at DESC, id DESC))"
            f"[1:{p(per, '::int')}] FROM m {keep} GROUP BY theme"
        )
        return {r[0]: list(r[1]) for r in await self._fetch(sql, p.values)}

    async def comments(
        self, selection: Selection, lo: datetime, hi: datetime, *, valid_only: bool, limit: int
    ) -> list[tuple[UUID, int, str]]:
        """The latest `limit` comments of the selection: (id, score, comment)."""
        p = SqlParams()
        keep = "AND NOT x.excluded" if valid_only else ""
        sql = (
            f"SELECT x.id, x.score, x.comment "
            f"FROM ({self._scope(selection, lo, hi, p, ', x.comment')}) x "
            f"WHERE coalesce(x.comment, '') <> '' {keep} "
            f"ORDER BY x.occurred_at DESC, x.id DESC LIMIT {p(limit, '::int')}"
        )
        return [(r[0], int(r[1]), str(r[2])) for r in await self._fetch(sql, p.values)]

    async def trend_tallies(
        self, selection: Selection, lo: datetime, hi: datetime, starts: list[datetime], key: str
    ) -> list[TrendTally]:
        """Responses with text by bucket (`starts`: each bucket's first instant), whether
        they mention the theme `key` (or `tag:<tag>`), exclusion and score."""
        p = SqlParams()
        scope = self._scope(selection, lo, hi, p)
        if key.startswith("tag:"):
            mentioned = f"{p(key[4:], '::text')} = ANY(x.tags)"
        else:
            tenant = p(selection.tenant_id, "::uuid")
            mentioned = (
                "EXISTS (SELECT 1 FROM response_themes rt WHERE "
                f"rt.tenant_id = {tenant} AND rt.response_id = x.id "
                f"AND rt.theme_key = {p(key, '::text')})"
            )
        sql = (
            f"WITH x AS MATERIALIZED ({scope}) "
            f"SELECT width_bucket(x.occurred_at, {p(starts, '::timestamptz[]')}), "
            f"{mentioned}, x.excluded, x.score, count(*) FROM x GROUP BY 1, 2, 3, 4"
        )
        return [TrendTally(*r) for r in await self._fetch(sql, p.values)]

    async def driver_tallies(
        self, selection: Selection, lo: datetime, hi: datetime, by: str
    ) -> list[DriverTally]:
        """Responses by their set of drivers (themes mentioned, tags, touchpoint or channel),
        exclusion and score. For themes, the responses with a comment; otherwise all."""
        p = SqlParams()
        extra = ", x.touchpoint, x.channel" if by in ("touchpoint", "channel") else ""
        base = "comment" if by == "theme" else "all"
        scope = self._scope(selection, lo, hi, p, extra, base=base)
        drivers = _DRIVERS[by]
        if by == "theme":
            tenant = p(selection.tenant_id, "::uuid")
            drivers = drivers.format(tenant=tenant, keys=_keys(tenant))
        sql = (
            f"WITH x AS MATERIALIZED ({scope}) "
            f"SELECT d, excluded, score, count(*) FROM (SELECT {drivers} AS d, "
            "x.excluded, x.score FROM x) y GROUP BY 1, 2, 3"
        )
        return [DriverTally(list(r[0]), *r[1:]) for r in await self._fetch(sql, p.values)]

    async def segment_tallies(
        self, selection: Selection, lo: datetime, hi: datetime, attributes: Sequence[str]
    ) -> list[tuple[tuple[str | None, ...], bool, int, int]]:
        """Every response of the selection by the values of its customer's `attributes`
        (null where it has none), exclusion and score."""
        p = SqlParams()
        # Scalar values only: an object or array is no segment (jsonb_typeof).
        values = "".join(
            f", CASE WHEN jsonb_typeof(c.attributes -> {p(name, '::text')}) "
            "IN ('string', 'number', 'boolean') "
            f"THEN c.attributes ->> {p(name, '::text')} END AS a{i}"
            for i, name in enumerate(attributes)
        )
        scope = self._scope(selection, lo, hi, p, values, base="all", customers=True)
        columns = ", ".join(f"a{i}" for i in range(len(attributes)))
        sql = (
            f"SELECT {columns}, excluded, score, count(*) FROM ({scope}) x "
            f"GROUP BY {columns}, excluded, score"
        )
        width = len(attributes)
        return [
            (tuple(r[:width]), bool(r[width]), int(r[width + 1]), int(r[width + 2]))
            for r in await self._fetch(sql, p.values)
        ]
