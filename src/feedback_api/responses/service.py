from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedback_api.audit.service import audit as audit_service
from feedback_api.auth.context import AuthContext
from feedback_api.config import Settings
from feedback_api.customers.service import customer as customer_service
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import (
    ExternalIdConflict,
    FeedbackError,
    InvalidRequest,
    InvitationClosed,
    NotFound,
    PublishableKeyForbidden,
)
from feedback_api.kit.batch import ItemError, check_items, in_order
from feedback_api.kit.crypto import canonical_hash
from feedback_api.kit.ids import new_id
from feedback_api.kit.pagination import paginate
from feedback_api.kit.poison import is_data_error, isolate
from feedback_api.kit.time import check_not_future, utcnow
from feedback_api.models import Response
from feedback_api.responses.hooks import (
    StoredResponse,
    provenance,
    responses_stored,
    token_answers,
)
from feedback_api.responses.repository import NewResponse, ResponseRepository, ResponseRow
from feedback_api.responses.schemas import (
    BatchItemResult,
    BatchResult,
    Channel,
    Client,
    ExportFormat,
    ReplyRead,
    ReplyWrite,
    ResponseCreate,
    ResponseFilters,
    ResponseRead,
)

EXPORT_PAGE = 1000
CSV_COLUMNS = tuple(ResponseRead.model_fields)
# Cells a spreadsheet would run as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _ndjson_line(read: ResponseRead) -> bytes:
    return read.model_dump_json().encode() + b"\n"


def _csv_header() -> bytes:
    return _csv_encode(list(CSV_COLUMNS))


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    text: str
    if isinstance(value, list):
        text = ";".join(value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, str):
        text = value
    else:
        return str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_encode(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()


def _csv_line(read: ResponseRead) -> bytes:
    return _csv_encode([_csv_cell(getattr(read, column)) for column in CSV_COLUMNS])


PUBLISHABLE_CHANNELS = frozenset({Channel.APP, Channel.WEB})
PUBLISHABLE_FORBIDDEN_FIELDS = (
    "customer",
    "agent_ref",
    "location_ref",
    "external_id",
    "occurred_at",
)
# What a later answer to the same invitation replaces.
# A changed answer is screened again (its comment may be new).
ANSWER_CHANGES = (
    "score",
    "comment",
    "tags",
    "channel",
    "request_hash",
    "api_key_id",
    "updated_at",
    "ip_hash",
    "ua_hash",
    "screened_at",
    "publish_consent",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedAnswer:
    """A verified response answering something the tenant sent (an invitation), as the
    domain that sent it fills it in. One per `invitation_id`: a later one replaces the
    earlier (`ANSWER_CHANGES`)."""

    invitation_id: UUID
    kind: str
    score: int
    scale_min: int
    scale_max: int
    comment: str | None
    tags: list[str]
    channel: str
    touchpoint: str | None
    survey: str
    customer_id: UUID | None
    agent_ref: str | None
    location_ref: str | None
    language: str
    attributes: dict[str, Any]
    # Of the answer as given, for duplicate detection.
    request_hash: str
    api_key_id: UUID | None
    publish_consent: bool = False


@dataclass(slots=True)
class Outcome:
    """What happened to one item: stored (201), already stored (200) or refused."""

    status: int
    id: UUID | None = None
    read: ResponseRead | None = None
    error: FeedbackError | None = None


def _new_read(row: NewResponse, item: ResponseCreate) -> ResponseRead:
    """The read of a response this request just inserted: the request's fields and what the
    row added (without reading the row back)."""
    added = {
        "id": row.id,
        "scale_min": row.scale_min,
        "scale_max": row.scale_max,
        "invitation_id": None,
        "verified": row.verified,
        "excluded": False,
        "occurred_at": row.occurred_at,
        "received_at": row.received_at,
        "updated_at": row.received_at,
    }
    return ResponseRead.model_validate({**item.model_dump(), **added})


def row_to_read(row: ResponseRow) -> ResponseRead:
    return ResponseRead.of(row[0], row[1])


def _repeated_in_batch(items: Sequence[ResponseCreate]) -> set[int]:
    """Within one batch the first item with an external_id wins; the indexes of later ones
    (duplicates of it, same content, or conflicts, different content)."""
    seen: set[str] = set()
    later: set[int] = set()
    for index, item in enumerate(items):
        if item.external_id is None:
            continue
        if item.external_id in seen:
            later.add(index)
        seen.add(item.external_id)
    return later


def _repeat(original: Response, ref: str | None, request_hash: str, with_read: bool) -> Outcome:
    """An item whose external_id is already stored: a replay (200) of the same content, or
    409 for other content or a deleted original."""
    external_id = original.external_id
    if original.deleted_at is not None:
        return Outcome(
            409,
            error=ExternalIdConflict(
                f"external_id {external_id!r} belonged to a response that was deleted"
            ),
        )
    if original.request_hash != request_hash:
        return Outcome(
            409,
            error=ExternalIdConflict(
                f"external_id {external_id!r} is used by response {original.id} "
                "with different content"
            ),
        )
    return Outcome(200, original.id, read=ResponseRead.of(original, ref) if with_read else None)


def _refused_by_database(index: int) -> InvalidRequest:
    return InvalidRequest.at(
        ("body", "items", index),
        "invalid_value",
        "a value cannot be stored",
        detail="the database refused a value of this item",
    )


class ResponseService:
    def check_item(
        self, item: ResponseCreate, auth: AuthContext, now: datetime, skew: timedelta
    ) -> None:
        """Rules that need the caller or the clock, beyond what the schema checks."""
        if auth.is_publishable:
            used = [f for f in PUBLISHABLE_FORBIDDEN_FIELDS if getattr(item, f) is not None]
            if used:
                raise PublishableKeyForbidden(
                    f"publishable keys may not set: {', '.join(used)}; "
                    "send these from your backend with a secret key"
                )
            if item.channel not in PUBLISHABLE_CHANNELS:
                raise PublishableKeyForbidden("publishable keys may only use channel app or web")
        check_not_future(
            item.occurred_at, skew, ("body", "occurred_at"), "occurred_at is in the future"
        )

    async def store(
        self,
        session: AsyncSession,
        auth: AuthContext,
        items: Sequence[ResponseCreate],
        *,
        with_reads: bool,
        client: Client | None = None,
    ) -> list[Outcome]:
        """Store valid items in the caller's transaction, deduplicating by external_id.
        `with_reads` also renders the originals of repeats (a batch needs only ids)."""
        hashes = [canonical_hash(i.model_dump(mode="json", exclude_unset=True)) for i in items]
        later = _repeated_in_batch(items)
        rows = await self._new_rows(session, auth, items, later, hashes, client)
        repo = ResponseRepository(session)
        # One order for every writer (customers are ensured in ref order too): two batches
        # that share external_ids then wait on each other's rows instead of deadlocking.
        ordered = sorted(rows.values(), key=lambda r: (r.external_id is None, r.external_id or ""))
        inserted = await repo.insert_many(auth.tenant_id, ordered) if rows else set()
        outcomes: dict[int, Outcome] = {}
        created: list[ResponseRead] = []
        stored: list[StoredResponse] = []
        for index, row in rows.items():
            if row.id in inserted:
                read = _new_read(row, items[index])
                created.append(read)
                stored.append(StoredResponse.of_read(read, row.customer_id))
                outcomes[index] = Outcome(201, row.id, read=read)
        await event_service.emit(session, auth.tenant_id, EventType.RESPONSE_CREATED, created)
        await responses_stored.fire(session, auth.tenant_id, stored)

        # Skipped rows and in-batch repeats meet the stored original (which may be a row
        # this very batch inserted): same content is a replay, anything else a conflict.
        repeats = [i for i in range(len(items)) if i not in outcomes]
        if repeats:
            wanted = {e for i in repeats if (e := items[i].external_id) is not None}
            existing = await repo.by_external_ids(auth.tenant_id, wanted)
            for index in repeats:
                external_id = items[index].external_id
                assert external_id is not None
                original, ref = existing[external_id]
                outcomes[index] = _repeat(original, ref, hashes[index], with_reads)
        return in_order(outcomes, len(items))

    async def _new_rows(
        self,
        session: AsyncSession,
        auth: AuthContext,
        items: Sequence[ResponseCreate],
        later: set[int],
        hashes: Sequence[str],
        client: Client | None,
    ) -> dict[int, NewResponse]:
        """The rows to insert, by item index (in-batch repeats left out), with their
        customers ensured and the client's provenance hashed."""
        now = utcnow()
        hashes_ip, hashes_ua = await self._provenance(session, auth.tenant_id, client)
        refs = {i.customer for n, i in enumerate(items) if i.customer and n not in later}
        customer_ids = await customer_service.ensure(session, auth.tenant_id, refs)
        return {
            index: NewResponse(
                id=new_id(),
                kind=item.kind.value,
                score=item.score,
                scale_min=item.scale_min,  # type: ignore[arg-type]  # set by validation
                scale_max=item.scale_max,  # type: ignore[arg-type]
                comment=item.comment,
                tags=json.dumps(item.tags),
                channel=item.channel.value,
                touchpoint=item.touchpoint,
                survey=item.survey,
                customer_id=customer_ids[item.customer] if item.customer else None,
                agent_ref=item.agent_ref,
                location_ref=item.location_ref,
                language=item.language,
                attributes=json.dumps(item.attributes),
                external_id=item.external_id,
                request_hash=hashes[index],
                api_key_id=auth.key_id,
                occurred_at=item.occurred_at or now,
                received_at=now,
                verified=auth.trusted,
                ip_hash=hashes_ip,
                ua_hash=hashes_ua,
                publish_consent=item.publish_consent,
            )
            for index, item in enumerate(items)
            if index not in later
        }

    async def store_answer(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        answer: VerifiedAnswer,
        *,
        client: Client | None = None,
    ) -> tuple[ResponseRead, bool]:
        """Store the answer to an invitation, or replace the earlier answer (last answer
        wins); returns it and whether it is new. Fires `responses_stored` when it is new
        or its score or comment changed. The caller holds the invitation locked, so two answers at
        once are taken one after the other. `InvitationClosed` when the earlier answer was
        deleted: the invitation has had its say."""
        repo = ResponseRepository(session)
        earlier = await repo.answer_state(tenant_id, answer.invitation_id)
        ip, ua = await self._provenance(session, tenant_id, client)
        now = utcnow()
        values: dict[str, Any] = {
            **asdict(answer),
            "tenant_id": tenant_id,
            "id": new_id(),
            "verified": True,
            "ip_hash": ip,
            "ua_hash": ua,
            "screened_at": None,
            "occurred_at": now,
            "received_at": now,
            "updated_at": now,
        }
        stored = await repo.upsert_answer(values, ANSWER_CHANGES)
        if stored is None:
            raise InvitationClosed("the answer to this invitation was removed")
        response_id, created = stored
        read = await self.get(session, tenant_id, response_id)
        event = EventType.RESPONSE_CREATED if created else EventType.RESPONSE_UPDATED
        await event_service.emit(session, tenant_id, event, [read])
        rescored = created or earlier is None or earlier[0] != answer.score
        if rescored or (earlier is not None and earlier[1] != answer.comment):
            stored_response = StoredResponse.of_read(
                read, answer.customer_id, rescored=rescored, replaced=not created
            )
            await responses_stored.fire(session, tenant_id, [stored_response])
        return read, created

    async def answer_score(
        self, session: AsyncSession, tenant_id: UUID, invitation_id: UUID
    ) -> int | None:
        """The score currently recorded for the invitation, if any."""
        return await ResponseRepository(session).answer_score(tenant_id, invitation_id)

    async def _provenance(
        self, session: AsyncSession, tenant_id: UUID, client: Client | None
    ) -> tuple[str | None, str | None]:
        if client is None:
            return None, None
        return await provenance.get()(session, tenant_id, client.ip, client.user_agent)

    async def create(
        self,
        session: AsyncSession,
        auth: AuthContext,
        item: ResponseCreate,
        skew: timedelta,
        client: Client | None = None,
        *,
        settings: Settings,
    ) -> tuple[ResponseRead, bool]:
        """Store one response. Returns it and whether it is new (False: a retry, or a
        changed answer to an invitation). `client` (public submissions only) is hashed
        for duplicate and burst detection. With an `invitation_token`, the answer is the
        invitation's (`token_answers`, provided at assembly)."""
        self.check_item(item, auth, utcnow(), skew)
        if item.invitation_token is not None:
            answer_token = token_answers.get()
            return await answer_token(session, auth, item, settings=settings, client=client)
        (outcome,) = await self.store(session, auth, [item], with_reads=True, client=client)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.read is not None
        return outcome.read, outcome.status == 201

    async def create_batch(
        self, session: AsyncSession, auth: AuthContext, raw_items: Sequence[Any], skew: timedelta
    ) -> BatchResult:
        """Validate each item on its own; store the valid ones in this one transaction."""
        now = utcnow()

        def parse(raw: Any) -> ResponseCreate:
            item = ResponseCreate.model_validate(raw)
            self.check_item(item, auth, now, skew)
            if item.invitation_token is not None:
                raise InvalidRequest.at(
                    ("body", "invitation_token"),
                    "not_in_batch",
                    "not accepted in a batch",
                    detail="answer invitations one at a time with POST /v1/responses",
                )
            return item

        checked = check_items(raw_items, parse)
        results = {
            index: BatchItemResult(index=index, status=422, error=ItemError.of(error))
            for index, error in checked.errors.items()
        }
        valid = checked.valid

        # The items are stored together in one savepoint. Should the database still refuse
        # one (validation at the edge is meant to make that impossible), the batch is
        # retried in halves until the refused items are alone; they answer 422
        # `invalid_value` and the rest are stored. The happy path costs one SAVEPOINT.
        stored: dict[int, Outcome] = {}

        async def work(chunk: Sequence[tuple[int, ResponseCreate]]) -> None:
            done = await self.store(session, auth, [item for _, item in chunk], with_reads=False)
            stored.update((index, outcome) for (index, _), outcome in zip(chunk, done, strict=True))

        async def refused(entry: tuple[int, ResponseCreate], exc: Exception) -> None:
            stored[entry[0]] = Outcome(422, error=_refused_by_database(entry[0]))

        await isolate(session, "responses.batch", valid, work, refused, is_poison=is_data_error)
        for index, outcome in stored.items():
            results[index] = BatchItemResult(
                index=index,
                status=outcome.status,  # type: ignore[arg-type]
                id=outcome.id,
                error=ItemError.of(outcome.error) if outcome.error else None,
            )
        return BatchResult.of(in_order(results, len(raw_items)))

    async def export(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenant_id: UUID,
        filters: ResponseFilters,
        export_format: ExportFormat,
    ) -> AsyncIterator[bytes]:
        """The export's body, page by page (see the endpoint)."""
        encode = _csv_line if export_format is ExportFormat.CSV else _ndjson_line
        if export_format is ExportFormat.CSV:
            yield _csv_header()
        after: tuple[datetime, UUID] | None = None
        while True:
            async with sessionmaker() as session:
                rows = await ResponseRepository(session).page(
                    tenant_id, filters, limit=EXPORT_PAGE, after=after, newest_first=False
                )
            if not rows:
                return
            yield b"".join(encode(row_to_read(row)) for row in rows)
            if len(rows) < EXPORT_PAGE:
                return
            last = rows[-1][0]
            after = (last.occurred_at, last.id)

    async def get(self, session: AsyncSession, tenant_id: UUID, response_id: UUID) -> ResponseRead:
        row = await ResponseRepository(session).get(tenant_id, response_id)
        if row is None:
            raise NotFound("no such response")
        return row_to_read(row)

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        filters: ResponseFilters,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[ResponseRead], str | None]:
        rows = await ResponseRepository(session).page(
            tenant_id, filters, limit=limit + 1, after=after, newest_first=True
        )
        reads = [row_to_read(r) for r in rows]
        return paginate(reads, limit, lambda r: (r.occurred_at, r.id))

    async def numbered_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        filters: ResponseFilters,
        *,
        updated_from: datetime | None,
        updated_to: datetime | None,
        by_updated: bool,
        descending: bool,
        page: int,
        per_page: int,
    ) -> list[ResponseRead]:
        rows = await ResponseRepository(session).numbered_page(
            tenant_id,
            filters,
            updated_from=updated_from,
            updated_to=updated_to,
            by_updated=by_updated,
            descending=descending,
            offset=(page - 1) * per_page,
            limit=per_page,
        )
        return [row_to_read(r) for r in rows]

    async def by_external_ids(
        self, session: AsyncSession, tenant_id: UUID, external_ids: Collection[str]
    ) -> dict[str, ResponseRead]:
        """Stored responses by their external_id (deleted ones left out)."""
        if not external_ids:
            return {}
        rows = await ResponseRepository(session).by_external_ids(tenant_id, external_ids)
        return {
            external_id: ResponseRead.of(response, ref)
            for external_id, (response, ref) in rows.items()
            if response.deleted_at is None
        }

    async def update(
        self, session: AsyncSession, tenant_id: UUID, response_id: UUID, values: dict[str, Any]
    ) -> ResponseRead:
        if not values:
            return await self.get(session, tenant_id, response_id)
        if not await ResponseRepository(session).update(
            tenant_id, response_id, values, now=utcnow()
        ):
            raise NotFound("no such response")
        read = await self.get(session, tenant_id, response_id)
        await event_service.emit(session, tenant_id, EventType.RESPONSE_UPDATED, [read])
        return read

    async def all_for_customer(
        self, session: AsyncSession, tenant_id: UUID, customer_id: UUID
    ) -> Sequence[Response]:
        return await ResponseRepository(session).all_for_customer(tenant_id, customer_id)

    async def anonymise_for_customer(
        self, session: AsyncSession, tenant_id: UUID, customer_id: UUID
    ) -> list[UUID]:
        repo = ResponseRepository(session)
        ids = await repo.anonymise_for_customer(tenant_id, customer_id)
        # A reply may greet them by name or quote them: it goes with what they said.
        await repo.delete_replies(tenant_id, ids)
        return ids

    async def reply(
        self, session: AsyncSession, auth: AuthContext, response_id: UUID, body: ReplyWrite
    ) -> tuple[ReplyRead, bool]:
        """Write the response's public reply (or edit it: the version rises). Audited with
        the version and the key, never the text; sends `response.replied`. Returns the reply
        and whether it is new."""
        await self.get(session, auth.tenant_id, response_id)  # 404 unless it exists
        row = await ResponseRepository(session).write_reply(
            auth.tenant_id, response_id, body.body, auth.key_id, utcnow()
        )
        reply = ReplyRead.model_validate(row)
        await audit_service.record(
            session,
            auth.tenant_id,
            action="response.replied",
            target_type="response",
            target_id=str(response_id),
            actor_key_id=auth.key_id,
            data={"version": reply.version},
        )
        await event_service.emit(session, auth.tenant_id, EventType.RESPONSE_REPLIED, [reply])
        return reply, reply.version == 1

    async def get_reply(
        self, session: AsyncSession, tenant_id: UUID, response_id: UUID
    ) -> ReplyRead:
        row = await ResponseRepository(session).reply(tenant_id, response_id)
        if row is None:
            raise NotFound("no reply to this response")
        return ReplyRead.model_validate(row)


response = ResponseService()
