"""Improvement actions: `/v1/actions`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, status

from feedback_api.actions.impact import impact
from feedback_api.actions.schemas import (
    ActionCreate,
    ActionRead,
    ActionStatus,
    ActionUpdate,
    CustomerToTell,
    ImpactRead,
)
from feedback_api.actions.service import action as action_service
from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep
from feedback_api.keys.dependencies import require
from feedback_api.kit.params import Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.kit.types import Bound
from feedback_api.metrics.filters import RefFilter, ShortFilter
from feedback_api.responses.schemas import Channel

router = APIRouter(prefix="/v1", tags=["actions"])

ActionsRead = Annotated[AuthContext, Depends(require(Scope.ACTIONS_READ))]
ActionsWrite = Annotated[AuthContext, Depends(require(Scope.ACTIONS_WRITE))]


@router.post(
    "/actions",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, body=True),
)
async def create_action(body: ActionCreate, session: SessionDep, auth: ActionsWrite) -> ActionRead:
    """Create a SMART improvement action. The baseline is measured now, on the scope over
    the baseline window (default the last 90 days), and stored with the action. 422 when
    the action could not be judged: `theme_required`, `unknown_theme`,
    `target_out_of_range`, `target_not_an_improvement`, `deadline_passed`, or
    `baseline_too_small` (the window holds too few responses to detect the change aimed
    for; the message says how many are needed). Sends `action.created`."""
    return await action_service.create(session, auth.tenant_id, body)


@router.get("/actions", responses=problem_responses(403))
async def list_actions(
    session: SessionDep,
    auth: ActionsRead,
    status_: Annotated[ActionStatus | None, Query(alias="status")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ActionRead]:
    """The tenant's improvement actions, newest first."""
    after = parse_cursor(cursor, datetime, UUID)
    items, next_cursor = await action_service.list_page(
        session, auth.tenant_id, status=status_, limit=limit, after=after
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/actions/{action_id:uuid}", responses=problem_responses(403, 404))
async def get_action(action_id: UUID, session: SessionDep, auth: ActionsRead) -> ActionRead:
    """One improvement action with its baseline."""
    return await action_service.get(session, auth.tenant_id, action_id)


@router.patch("/actions/{action_id:uuid}", responses=problem_responses(403, 404, body=True))
async def update_action(
    action_id: UUID, body: ActionUpdate, session: SessionDep, auth: ActionsWrite
) -> ActionRead:
    """Change an action's title, owner, dates, target, effort, publication or status
    (planned → in_progress → done; abandoned from planned or in progress). Its scope,
    metric and baseline stay. Sends `action.updated`."""
    return await action_service.update(session, auth.tenant_id, action_id, body)


@router.get("/actions/{action_id:uuid}/impact", responses=problem_responses(403, 404))
async def action_impact(
    action_id: UUID,
    session: SessionDep,
    auth: ActionsRead,
    to: Annotated[Bound | None, Query(description="The after period's end (default: now).")] = None,
    control_touchpoint: Annotated[ShortFilter | None, Query()] = None,
    control_channel: Annotated[Channel | None, Query()] = None,
    control_location_ref: Annotated[RefFilter | None, Query()] = None,
) -> ImpactRead:
    """Did it work? The metric on the action's scope before (the baseline window) and
    after (from `ends_on`, else `starts_on`, to `to`), the same on a control, and the
    difference of the two changes with its interval, so that what moved everywhere is not
    taken for the action's effect. The control is the rest of the tenant, or the action's
    scope with the `control_*` fields replaced (another store, another channel). Then the
    progress towards the target and a verdict: `improved`, `no_detectable_change`, `worse`
    or `too_early` (fewer responses after than the baseline said are needed)."""
    given = {
        "touchpoint": control_touchpoint,
        "channel": control_channel.value if control_channel else None,
        "location_ref": control_location_ref,
    }
    control = {k: v for k, v in given.items() if v is not None} or None
    return await impact(session, auth.tenant_id, action_id, control, to)


@router.get("/actions/{action_id:uuid}/customers", responses=problem_responses(403, 404))
async def action_customers(
    action_id: UUID,
    session: SessionDep,
    auth: ActionsRead,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[CustomerToTell]:
    """Whom to tell that it was done: the customers who mentioned the action's theme in its
    scope (without a theme: who commented in it), from the baseline window's start until
    the action was done (while it is not: until now), one item per customer by ref, with
    the channels they may not be contacted on. Customers opted out of every channel, and
    erased ones, are not listed. `action.completed` carries the first 500 and this
    endpoint's cursor for the rest."""
    after = parse_cursor(cursor, UUID)
    items, next_cursor = await action_service.customers_to_tell(
        session, auth.tenant_id, action_id, limit=limit, after=None if after is None else after[0]
    )
    return Page(items=items, next_cursor=next_cursor)
