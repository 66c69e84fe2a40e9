from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep
from feedback_api.events.catalogue import EVENT_TYPE_FILTER_PATTERN
from feedback_api.events.schemas import EventPage, EventRead
from feedback_api.events.service import event as event_service
from feedback_api.keys.dependencies import require
from feedback_api.kit.params import CURSOR_PATTERN, Limit, parse_cursor
from feedback_api.kit.schemas import problem_responses
from feedback_api.kit.types import Text

router = APIRouter(prefix="/v1/events", tags=["events"])

EventsRead = Annotated[AuthContext, Depends(require(Scope.EVENTS_READ))]
TypeFilter = Annotated[str, Text(max_length=64, pattern=EVENT_TYPE_FILTER_PATTERN)]
EventCursor = Annotated[str, Text(min_length=1, max_length=512, pattern=CURSOR_PATTERN)]


@router.get("", responses=problem_responses(403))
async def list_events(
    session: SessionDep,
    auth: EventsRead,
    type: Annotated[
        TypeFilter | None,
        Query(description="Only this type (`response.created`) or family (`response.*`)."),
    ] = None,
    after: Annotated[
        EventCursor | None,
        Query(description="`next_cursor` of your previous call (opaque; base64url)."),
    ] = None,
    limit: Limit = 100,
) -> EventPage:
    """Poll the tenant's events, oldest first, for integrations that cannot take webhooks.

    Store `next_cursor` and pass it as `after` next time. The cursor never skips an event:
    an event becomes readable only once every transaction that started before it has
    finished, so one that commits late still appears after your cursor. Events are kept for
    30 days (configurable)."""
    position = parse_cursor(after, int, UUID)
    rows, next_cursor, has_more = await event_service.page(
        session, auth.tenant_id, after=position, type_filter=type, limit=limit
    )
    return EventPage(
        items=[EventRead.model_validate(e, from_attributes=True) for e in rows],
        next_cursor=next_cursor,
        has_more=has_more,
    )


@router.get("/{event_id:uuid}", responses=problem_responses(403, 404))
async def get_event(event_id: UUID, session: SessionDep, auth: EventsRead) -> EventRead:
    """One event by id."""
    return EventRead.model_validate(
        await event_service.get(session, auth.tenant_id, event_id), from_attributes=True
    )
