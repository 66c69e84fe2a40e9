"""Survey responses and metrics: Delighted's NPS responses are our `nps` responses; its
person is the response's customer, its `person_properties` the response's attributes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.auth.context import AuthContext
from feedback_api.compat.delighted import people
from feedback_api.compat.delighted.properties import as_attributes
from feedback_api.compat.delighted.schemas import (
    Metrics,
    Person,
    SurveyResponse,
    SurveyResponseCreate,
    SurveyResponseUpdate,
)
from feedback_api.config import Settings
from feedback_api.customers.service import customer as customer_service
from feedback_api.exceptions import InvalidRequest, NotFound
from feedback_api.kit.time import utcnow
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.selection import Selection
from feedback_api.metrics.service import MetricQuery
from feedback_api.metrics.service import metric as metric_service
from feedback_api.models import Customer
from feedback_api.responses.schemas import (
    ResponseCreate,
    ResponseFilters,
    ResponseRead,
    ResponseUpdate,
)
from feedback_api.responses.service import response as response_service

#: Delighted's metrics covered the last 30 days when neither `since` nor `until` was given.
DEFAULT_DAYS = 30


def _time(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _shown(
    response: ResponseRead, customer: Customer | None, expand_person: bool
) -> SurveyResponse:
    person: str | Person | None = None
    if customer is not None:
        person = people.person(customer) if expand_person else str(customer.id)
    return SurveyResponse(
        id=str(response.id),
        person=person,
        survey_type=response.kind.value,
        score=response.score,
        comment=response.comment,
        created_at=int(response.occurred_at.timestamp()),
        updated_at=int(response.updated_at.timestamp()),
        person_properties=response.attributes,
        tags=response.tags,
    )


async def read(
    session: AsyncSession, tenant_id: UUID, response: ResponseRead, *, expand_person: bool
) -> SurveyResponse:
    (shown,) = await read_many(session, tenant_id, [response], expand_person=expand_person)
    return shown


async def read_many(
    session: AsyncSession,
    tenant_id: UUID,
    responses: Sequence[ResponseRead],
    *,
    expand_person: bool,
) -> list[SurveyResponse]:
    """Responses in Delighted's shape, their people looked up in one query."""
    refs = {r.customer for r in responses if r.customer is not None}
    customers = await customer_service.by_refs(session, tenant_id, refs)
    return [
        _shown(r, customers.get(r.customer) if r.customer else None, expand_person)
        for r in responses
    ]


async def create(
    session: AsyncSession, auth: AuthContext, body: SurveyResponseCreate, settings: Settings
) -> SurveyResponse:
    try:
        customer = await people.find(session, auth.tenant_id, body.person)
    except NotFound:
        raise InvalidRequest.at(("body", "person"), "unknown_person", "no such person") from None
    item = ResponseCreate.model_validate(
        {
            "kind": "nps",
            "score": body.score,
            "comment": body.comment or None,
            "channel": "other",
            "customer": customer.external_ref,
            "attributes": as_attributes(body.person_properties),
            "occurred_at": _time(body.created_at),
        }
    )
    stored, _ = await response_service.create(
        session, auth, item, timedelta(seconds=settings.clock_skew_seconds), settings=settings
    )
    return await read(session, auth.tenant_id, stored, expand_person=False)


async def get(
    session: AsyncSession, tenant_id: UUID, response_id: str, *, expand_person: bool
) -> SurveyResponse:
    try:
        uid = UUID(response_id)
    except ValueError:
        raise NotFound("no such survey response") from None
    stored = await response_service.get(session, tenant_id, uid)
    return await read(session, tenant_id, stored, expand_person=expand_person)


async def update(
    session: AsyncSession,
    tenant_id: UUID,
    response_id: str,
    body: SurveyResponseUpdate,
    *,
    expand_person: bool,
) -> SurveyResponse:
    """Tags and person properties change; the score, the comment and the person are what
    the customer said and who said it: sent unchanged they are fine, changed a 422."""
    current = await get(session, tenant_id, response_id, expand_person=False)
    person = body.person.get("id") if isinstance(body.person, dict) else body.person
    fixed = {"score": current.score, "comment": current.comment, "person": current.person}
    for name, given in (("score", body.score), ("comment", body.comment), ("person", person)):
        if given is not None and given != fixed[name]:
            raise InvalidRequest.at(
                ("body", name), "immutable", f"{name} is what the customer said: it cannot change"
            )
    if body.notes:
        raise InvalidRequest.at(
            ("body", "notes"),
            "not_supported",
            "notes are not kept on responses here: add them to the response's ticket",
        )
    changes: dict[str, object] = {}
    if body.tags is not None:
        changes["tags"] = body.tags
    if body.person_properties is not None:
        changes["attributes"] = as_attributes(body.person_properties)
    values = ResponseUpdate.model_validate(changes).changes()
    stored = await response_service.update(session, tenant_id, UUID(current.id), values)
    return await read(session, tenant_id, stored, expand_person=expand_person)


async def page(
    session: AsyncSession,
    tenant_id: UUID,
    *,
    since: int | None,
    until: int | None,
    updated_since: int | None,
    updated_until: int | None,
    person_id: str | None,
    person_email: str | None,
    order: str,
    page_number: int,
    per_page: int,
    expand_person: bool,
) -> list[SurveyResponse]:
    ref = None
    if person_id is not None or person_email is not None:
        identifier = person_id if person_id is not None else f"email:{person_email}"
        try:
            ref = (await people.find(session, tenant_id, identifier)).external_ref
        except NotFound:
            return []
    until_at = _time(until)
    filters = ResponseFilters(
        kind="nps",
        customer=ref,
        occurred_from=_time(since),
        occurred_to=None if until_at is None else until_at + timedelta(seconds=1),
    )
    direction, _, column = order.partition(":")
    rows = await response_service.numbered_page(
        session,
        tenant_id,
        filters,
        updated_from=_time(updated_since),
        updated_to=_time(updated_until),
        by_updated=column == "updated_at",
        descending=direction == "desc",
        page=page_number,
        per_page=per_page,
    )
    return await read_many(session, tenant_id, rows, expand_person=expand_person)


def _percent(part: int, n: int) -> int | None:
    return round(100 * part / n) if n else None


#: Delighted's survey groups as our response channels (docs/delighted.md): `core` is what
#: came in through the API from a CRM or an import, `link` the shared links (QR codes,
#: WeChat), `kiosk` the counter and the phone call.
GROUPS: dict[str, tuple[str, ...]] = {
    "core": ("crm", "import", "other"),
    "email": ("email",),
    "kiosk": ("in_person", "phone"),
    "link": ("qr", "wechat"),
    "sms": ("sms",),
    "web": ("web", "app"),
}


async def metrics(
    session: AsyncSession,
    tenant_id: UUID,
    *,
    since: int | None,
    until: int | None,
    groups: Collection[str] = (),
) -> Metrics:
    end = _time(until) or utcnow()
    start = _time(since) or end - timedelta(days=DEFAULT_DAYS)
    selection = Selection(tenant_id=tenant_id, kind="nps", scale_min=0, scale_max=10)
    if groups:
        channels = sorted({c for group in groups for c in GROUPS[group]})
        histogram = Histogram(0, 10, [0] * 11)
        for channel in channels:  # disjoint: each response has one channel
            one = replace(selection, channel=channel)
            part = await metric_service.tally(session, MetricQuery(one), start, end)
            histogram = histogram.merged(part.histogram)
    else:
        histogram = (
            await metric_service.tally(session, MetricQuery(selection), start, end)
        ).histogram
    counts = histogram.counts
    promoters, passives, detractors = sum(counts[9:11]), sum(counts[7:9]), sum(counts[0:7])
    n = promoters + passives + detractors
    return Metrics(
        nps=round(100 * (promoters - detractors) / n) if n else None,
        promoter_count=promoters,
        promoter_percent=_percent(promoters, n),
        passive_count=passives,
        passive_percent=_percent(passives, n),
        detractor_count=detractors,
        detractor_percent=_percent(detractors, n),
        response_count=n,
    )
