"""`feedback-api import delighted`: a Delighted history from its CSV exports.

Delighted never published its export's column layout, so columns are taken by name: each
header is compared, lower-cased and without punctuation, with the names its exports are
known to use (`Response ID`, `Score`, `Comment`, `Created At`, `Person Email` …); `--map`
names the others; every other column is a property (the response's attributes). Rows go
in as `nps` (or `csat`/`ces`) responses of channel `import`, with `external_id`
`delighted:<response id>`, in chunks of one transaction each: a second run, or a run after
a crash, stores nothing twice. A row already stored is skipped when it is unchanged and
updated when only its tags or properties changed; a changed score or comment is refused
(what a customer said is not edited). People become customers (ref: the e-mail address,
else the phone number, else `delighted-person:<id>`); a person erased here is never brought
back. The run uses an API key of its own, revoked at the end, so every imported response
names the import as its source."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from uuid import UUID

from pydantic import ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedback_api.auth.context import AuthContext
from feedback_api.compat.delighted import people
from feedback_api.compat.delighted.properties import attribute_name
from feedback_api.compat.delighted.schemas import PersonCreate
from feedback_api.customers.service import customer as customer_service
from feedback_api.invitations.service import address_refs
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.keys.service import api_key as api_key_service
from feedback_api.kit.poison import is_data_error
from feedback_api.kit.types import check_storable
from feedback_api.models import Customer
from feedback_api.responses.schemas import ResponseCreate
from feedback_api.responses.service import response as response_service
from feedback_api.tenants.service import tenant as tenant_service

CHUNK = 500
KEY_NAME = "Delighted import "
SCOPES = ("responses:read", "responses:write", "customers:read", "customers:write")
ROLES = (
    "response_id",
    "score",
    "comment",
    "created_at",
    "person_id",
    "name",
    "email",
    "phone",
    "tags",
    "survey_type",
    "skip",
)
#: Header (normalised) → role. What is not here is a property.
ALIASES: dict[str, str] = {
    **dict.fromkeys(("response id", "survey response id", "id", "response"), "response_id"),
    **dict.fromkeys(("score", "rating", "nps", "nps score", "response score"), "score"),
    **dict.fromkeys(("comment", "comments", "feedback", "open response"), "comment"),
    **dict.fromkeys(
        (
            "created at",
            "created",
            "created at utc",
            "date",
            "response date",
            "responded at",
            "timestamp",
            "response timestamp",
            "response timestamp utc",
        ),
        "created_at",
    ),
    **dict.fromkeys(("person id", "person", "customer id"), "person_id"),
    **dict.fromkeys(("name", "person name", "full name"), "name"),
    **dict.fromkeys(("email", "e mail", "email address", "person email"), "email"),
    **dict.fromkeys(
        ("phone", "phone number", "person phone", "person phone number", "mobile"), "phone"
    ),
    **dict.fromkeys(("tags", "tag"), "tags"),
    **dict.fromkeys(("survey type", "type"), "survey_type"),
    # Delighted's own, with nothing here to hold them.
    **dict.fromkeys(
        (
            "updated at",
            "updated",
            "last updated",
            "permalink",
            "notes",
            "note",
            "additional answers",
            "special properties",
        ),
        "skip",
    ),
}
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_PROPERTY_PREFIX = re.compile(r"^\s*propert(y|ies)\s*[:.\-]\s*", re.IGNORECASE)
KINDS = {"nps": "nps", "csat": "csat", "ces": "ces", "ces2": "ces"}


def normalised(header: str) -> str:
    return _NOT_WORD.sub(" ", header.lower()).strip()


def parse_map(entries: Sequence[str]) -> dict[str, str]:
    """`--map "Column=role"` (a role of ROLES, or `property:<name>`), by normalised column."""
    mapping = {}
    for entry in entries:
        column, sep, role = entry.rpartition("=")
        role = role.strip()
        if not sep or not column.strip():
            raise ValueError(f"--map {entry!r}: write COLUMN=ROLE")
        if role not in ROLES and not (role.startswith("property:") and len(role) > 9):
            raise ValueError(
                f"--map {entry!r}: the role is one of {', '.join(ROLES)} or property:<name>"
            )
        mapping[normalised(column)] = role
    return mapping


def roles(headers: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Each column's role: `--map` first, then the known names, else `property:<name>`."""
    found: dict[str, str] = {}
    for header in headers:
        key = normalised(header)
        role = mapping.get(key) or ALIASES.get(key)
        if role is None and _PROPERTY_PREFIX.match(header):
            role = "property:" + _PROPERTY_PREFIX.sub("", header)
        if role is None:
            role = "skip" if not key else "property:" + header.strip()
        found[header] = role
    return found


def when(text: str) -> datetime:
    """Unix seconds, or ISO 8601 / `YYYY-MM-DD HH:MM:SS` (UTC unless it says otherwise)."""
    value = text.strip()
    if re.fullmatch(r"\d{1,11}(\.\d+)?", value):
        return datetime.fromtimestamp(float(value), UTC)
    value = re.sub(r"\s*(UTC|GMT)$", "", value, flags=re.IGNORECASE)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Person:
    """What the exports say about one person."""

    email: str | None = None
    phone: str | None = None
    name: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Row:
    number: int  # in the file, the header being row 1
    external_id: str
    item: dict[str, Any]  # a ResponseCreate, before validation
    person_key: str | None  # email, phone or Delighted person id
    person: Person | None


@dataclass(slots=True)
class Summary:
    imported: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    people: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, number: int, reason: str) -> None:
        self.rejected += 1
        self.reasons[reason] += 1
        if len(self.examples) < 20:
            self.examples.append({"row": number, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "people": self.people,
            "reasons": dict(self.reasons.most_common()),
            "rejected_rows": self.examples,
        }


def _cell(row: Mapping[str, str | None], columns: Mapping[str, str], role: str) -> str | None:
    for header, its in columns.items():
        if its == role:
            value = (row.get(header) or "").replace("\ufeff", "").strip()
            if value:
                return value
    return None


def _properties(row: Mapping[str, str | None], columns: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for header, role in columns.items():
        value = (row.get(header) or "").strip()
        if role.startswith("property:") and value:
            found[attribute_name(role.removeprefix("property:"))] = value
    return found


def _storable(value: str | None) -> bool:
    if value is None:
        return True
    try:
        check_storable(value)
    except PydanticCustomError:
        return False
    return True


def read_people(
    lines: Iterable[str], mapping: Mapping[str, str]
) -> tuple[dict[str, Person], list[tuple[int, str]]]:
    """The people export, by Delighted person id (and by e-mail, phone), with the rows it
    could not use."""
    reader = csv.DictReader(lines)
    columns = roles(reader.fieldnames or [], mapping)
    found: dict[str, Person] = {}
    unusable = []
    for number, row in enumerate(reader, start=2):
        person = Person(
            email=_cell(row, columns, "email"),
            phone=_cell(row, columns, "phone"),
            name=_cell(row, columns, "name"),
            properties=_properties(row, columns),
        )
        key = _cell(row, columns, "person_id") or person.email or person.phone
        if key is None:
            unusable.append((number, "a person without an id, e-mail or phone"))
            continue
        if not all(map(_storable, (key, person.email, person.phone, person.name))):
            unusable.append((number, "a person whose id, name or address cannot be stored"))
            continue
        for k in {key, person.email, person.phone} - {None}:
            assert k is not None
            found[k] = person
    return found, unusable


def read_responses(
    lines: Iterable[str],
    mapping: Mapping[str, str],
    known: Mapping[str, Person],
    default_kind: str,
    summary: Summary,
    progress: Callable[[int], None] = lambda n: None,
) -> Iterator[Row]:
    reader = csv.DictReader(lines)
    columns = roles(reader.fieldnames or [], mapping)
    if "response_id" not in columns.values() or "score" not in columns.values():
        raise ValueError(
            "the responses file needs a response id and a score column (found: "
            f"{', '.join(reader.fieldnames or [])}); name them with --map"
        )
    for number, row in enumerate(reader, start=2):
        progress(1)
        response_id = _cell(row, columns, "response_id")
        score = _cell(row, columns, "score")
        if response_id is None or score is None:
            summary.reject(number, "no response id or no score")
            continue
        person_id = _cell(row, columns, "person_id")
        given = Person(
            email=_cell(row, columns, "email"),
            phone=_cell(row, columns, "phone"),
            name=_cell(row, columns, "name"),
        )
        person = known.get(person_id or "") or known.get(given.email or "") or None
        if person is not None:
            given = Person(
                email=given.email or person.email,
                phone=given.phone or person.phone,
                name=given.name or person.name,
                properties=person.properties,
            )
        key = given.email or given.phone or person_id
        unstorable = [v for v in (key, given.name, given.email, given.phone) if not _storable(v)]
        if unstorable:
            summary.reject(
                number,
                "the person's id, name or address holds U+0000 or a lone "
                "surrogate, which cannot be stored",
            )
            continue
        created = _cell(row, columns, "created_at")
        tags = _cell(row, columns, "tags")
        kind = KINDS.get((_cell(row, columns, "survey_type") or default_kind).lower())
        try:
            item: dict[str, Any] = {
                "kind": kind or default_kind,
                "score": int(float(score)) if re.fullmatch(r"-?\d+(\.0+)?", score) else score,
                "comment": _cell(row, columns, "comment"),
                "channel": "import",
                "survey": "delighted",
                "tags": [t.strip().lower() for t in tags.split(",") if t.strip()] if tags else [],
                "attributes": _properties(row, columns),
                "external_id": f"delighted:{response_id}",
                "occurred_at": when(created) if created else None,
            }
        except (ValueError, OverflowError, OSError):
            summary.reject(number, f"the time {created!r} is not a date")
            continue
        yield Row(number, item["external_id"], item, key, given if key else None)


def _reason(error: Any) -> str:
    errors = getattr(error, "errors", None) or []
    if errors:
        first = errors[0]
        names = [str(p) for p in first.get("loc", []) if isinstance(p, str)]
        where = names[-1] if names else "row"
        return f"{where}: {first.get('message') or first.get('msg')}"
    return str(getattr(error, "detail", error))


async def _customers(
    session: AsyncSession, tenant_id: UUID, rows: Sequence[Row], cache: dict[str, str | None]
) -> int:
    """Give each person of these rows their customer ref in `cache` (created, or updated
    from the export), None for a person erased here or whose data cannot be stored (their
    rows are refused). Returns how many customers were new."""
    wanted: dict[str, Person] = {}
    for row in rows:
        if row.person_key is not None and row.person_key not in cache and row.person:
            wanted.setdefault(row.person_key, row.person)
    candidates = {key: _candidate_refs(key, person) for key, person in wanted.items()}
    erased = await invitation_service.erased(
        session, tenant_id, sorted({ref for refs in candidates.values() for ref in refs})
    )
    new = 0
    for key, person in wanted.items():
        cache[key] = None
        if erased & set(candidates[key]):
            continue
        try:
            async with session.begin_nested():
                customer, created = await _save(session, tenant_id, key, person)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            continue  # refused by the database: the person's rows are rejected
        cache[key] = customer.external_ref
        new += created
    return new


async def _save(
    session: AsyncSession, tenant_id: UUID, key: str, person: Person
) -> tuple[Customer, bool]:
    body = _person(person)
    if body is None:  # known by Delighted's id alone, or by an address we cannot keep
        return await customer_service.upsert(
            session, tenant_id, _ref_of(key, person), {"name": person.name, "attributes": {}}
        )
    existing = await customer_service.find(
        session, tenant_id, email=body.email, phone=None if body.email else body.phone_number
    )
    return await people.save(session, tenant_id, existing, body), existing is None


def _candidate_refs(key: str, person: Person) -> list[str]:
    """Every ref (and address) under which an erasure of this person would be remembered."""
    refs = [_ref_of(key, person), people.ref_for(f"delighted-person:{key}")]
    for address in (person.email, person.phone):
        if address:
            refs.append(people.ref_for(address))
    return [*refs, *address_refs(person.email, person.phone)]


def _person(person: Person) -> PersonCreate | None:
    if person.email is None and person.phone is None:
        return None
    try:
        return PersonCreate(
            email=person.email,
            phone_number=person.phone,
            name=person.name,
            properties=person.properties,
        )
    except ValidationError:
        return None


def _ref_of(key: str, person: Person) -> str:
    body = _person(person)
    if body is not None:
        return people.ref_for(str(body.email or body.phone_number))
    return people.ref_for(f"delighted-person:{key}")


async def import_chunk(
    session: AsyncSession,
    auth: AuthContext,
    rows: Sequence[Row],
    summary: Summary,
    refs: dict[str, str | None],
) -> None:
    """One transaction's worth: the people, then the responses in one batch."""
    summary.people += await _customers(session, auth.tenant_id, rows, refs)
    items: list[Row] = []
    for row in rows:
        ref = refs.get(row.person_key) if row.person_key else None
        if row.person_key is not None and ref is None:
            summary.reject(row.number, "the person was erased here, or cannot be stored")
            continue
        row.item["customer"] = ref
        items.append(row)
    result = await response_service.create_batch(
        session, auth, [r.item for r in items], timedelta(minutes=5)
    )
    changed: list[tuple[Row, ResponseCreate]] = []
    for row, outcome in zip(items, result.items, strict=True):
        if outcome.status == 201:
            summary.imported += 1
        elif outcome.status == 200:
            summary.skipped += 1
        elif outcome.status == 409:
            changed.append((row, ResponseCreate.model_validate(row.item)))
        else:
            summary.reject(row.number, _reason(outcome.error))
    if changed:
        stored = await response_service.by_external_ids(
            session, auth.tenant_id, [r.external_id for r, _ in changed]
        )
        for row, item in changed:
            before = stored.get(row.external_id)
            if before is None:
                summary.reject(row.number, "its response was deleted here")
            elif (before.score, before.comment) != (item.score, item.comment):
                summary.reject(row.number, "the score or comment differs from the stored one")
            else:
                await response_service.update(
                    session,
                    auth.tenant_id,
                    before.id,
                    {"tags": item.tags, "attributes": item.attributes},
                )
                summary.updated += 1


async def _revoke_leftovers(session: AsyncSession, tenant_id: UUID) -> None:
    """A run killed before its end left its key active: revoke those (a tenant has few
    keys; a concurrent run's key is revoked too, which it does not need again)."""
    after = None
    while True:
        keys, cursor = await api_key_service.list_page(session, tenant_id, limit=100, after=after)
        for key in keys:
            if key.name.startswith(KEY_NAME) and key.revoked_at is None:
                await api_key_service.revoke(session, tenant_id, key.id, actor=None)
        if cursor is None or not keys:
            return
        after = (keys[-1].created_at, keys[-1].id)


def chunks(rows: Iterable[Row], size: int = CHUNK) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_id: UUID,
    responses: TextIO,
    people_file: TextIO | None,
    mapping: Mapping[str, str],
    *,
    kind: str = "nps",
    progress: Callable[[int], None] = lambda n: None,
) -> Summary:
    """Import, one committed chunk at a time; `progress` hears of each row read."""
    summary = Summary()
    known: dict[str, Person] = {}
    if people_file is not None:
        known, unusable = read_people(people_file, mapping)
        for _, reason in unusable:
            summary.reasons[f"people file: {reason}"] += 1
    async with sessionmaker() as session:
        tenant = await tenant_service.get(session, tenant_id)
        await _revoke_leftovers(session, tenant_id)
        key, _ = await api_key_service.create(
            session,
            tenant_id,
            name=f"{KEY_NAME}{datetime.now(UTC):%Y-%m-%d %H:%M}",
            scopes=SCOPES,
            publishable=False,
        )
        await session.commit()
    auth = AuthContext(
        tenant_id=tenant_id,
        tenant_timezone=tenant.timezone,
        key_id=key.id,
        kind="secret",
        scopes=frozenset(SCOPES),
    )
    refs: dict[str, str | None] = {}
    try:
        rows = read_responses(responses, mapping, known, kind, summary, progress)
        for batch in chunks(rows):
            async with sessionmaker() as session:
                await import_chunk(session, auth, batch, summary, refs)
                await session.commit()
    finally:
        async with sessionmaker() as session:
            await api_key_service.revoke(session, tenant_id, key.id, actor=None)
            await session.commit()
    return summary
