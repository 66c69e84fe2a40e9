from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, status

from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import Scope
from feedback_api.db import SessionDep
from feedback_api.keys.dependencies import require
from feedback_api.kit.params import PERIOD_HELP, Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.kit.types import Bound, ExternalRef, Text, Timestamp
from feedback_api.tickets.rules import Priority
from feedback_api.tickets.schemas import (
    POLICY_KEY_PATTERN,
    FollowUpCreate,
    NoteCreate,
    ReplyCreate,
    SlaPolicyCreate,
    SlaPolicyRead,
    SlaPolicyUpdate,
    StatsBy,
    TicketCreate,
    TicketFilters,
    TicketRead,
    TicketRuleCreate,
    TicketRuleRead,
    TicketRuleUpdate,
    TicketStats,
    TicketUpdate,
    TimelineEntryRead,
)
from feedback_api.tickets.service import ticket as ticket_service
from feedback_api.tickets.states import Status

router = APIRouter(prefix="/v1", tags=["tickets"])

TicketsRead = Annotated[AuthContext, Depends(require(Scope.TICKETS_READ))]
TicketsWrite = Annotated[AuthContext, Depends(require(Scope.TICKETS_WRITE))]

ShortFilter = Annotated[str, Text(max_length=100)]
RefFilter = Annotated[str, Text(max_length=255)]
PolicyKeyPath = Annotated[
    str,
    Text(min_length=1, max_length=63, pattern=POLICY_KEY_PATTERN),
    Path(description="The policy's key, e.g. `standard`."),
]


# --- tickets ------------------------------------------------------------------------------


@router.get("/tickets", responses=problem_responses(403))
async def list_tickets(
    session: SessionDep,
    auth: TicketsRead,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    priority: Priority | None = None,
    team: Annotated[ShortFilter | None, Query()] = None,
    assignee: Annotated[RefFilter | None, Query()] = None,
    touchpoint: Annotated[ShortFilter | None, Query()] = None,
    customer: Annotated[
        ExternalRef | None, Query(description="The customer's `external_ref`.")
    ] = None,
    breached: Annotated[
        bool | None, Query(description="Only tickets with (true) or without (false) a breach.")
    ] = None,
    due_before: Annotated[
        Timestamp | None,
        Query(description="Only tickets with a running clock due before this time."),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TicketRead]:
    """Tickets, newest first. A helpdesk's work queue is e.g.
    `?team=care&status=open&due_before=<in one hour>`."""
    after = parse_cursor(cursor, datetime, UUID)
    filters = TicketFilters(
        status=status_.value if status_ else None,
        priority=priority.value if priority else None,
        team=team,
        assignee=assignee,
        touchpoint=touchpoint,
        customer=customer,
        breached=breached,
        due_before=due_before,
    )
    items, next_cursor = await ticket_service.list_page(
        session, auth.tenant_id, filters, limit=limit, after=after
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/tickets",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409, body=True),
)
async def create_ticket(body: TicketCreate, session: SessionDep, auth: TicketsWrite) -> TicketRead:
    """Open a ticket by hand, e.g. for a complaint on the phone. Its clocks start now, on
    the given SLA policy (default: the tenant's). A customer has at most one active ticket
    per touchpoint: a second one is a 409 `active_ticket_exists` naming the first."""
    return await ticket_service.create(session, auth.tenant_id, body, actor=auth.key_id)


@router.get("/tickets/stats", responses=problem_responses(403))
async def ticket_stats(
    session: SessionDep,
    auth: TicketsRead,
    start: Annotated[
        Bound | None,
        Query(alias="from", description=f"Opened from, inclusive. {PERIOD_HELP}"),
    ] = None,
    end: Annotated[
        Bound | None,
        Query(alias="to", description="Opened before, exclusive. Default: the last 30 days."),
    ] = None,
    by: Annotated[
        StatsBy | None,
        Query(
            description="Group by team, touchpoint or priority. `agent_ref` must be asked for "
            "explicitly; agents with fewer tickets than the tenant's `metrics_min_cell_n` are "
            "pooled, and the pool is suppressed if it is still too small."
        ),
    ] = None,
) -> TicketStats:
    """How fast and how well the loop closes, over tickets opened in the period: opened,
    resolved, median and p90 time to first response and to resolution (in working seconds
    as each policy counts them), share within SLA, breaches, repeat complaints, share of
    unhappy customers contacted, and the follow-up “solved” rate."""
    return await ticket_service.stats(session, auth.tenant_id, start, end, by)


@router.get("/tickets/{ticket_id:uuid}", responses=problem_responses(403, 404))
async def get_ticket(ticket_id: UUID, session: SessionDep, auth: TicketsRead) -> TicketRead:
    """One ticket with both SLA clocks (`due_at`, time used, warnings, breaches)."""
    return await ticket_service.get(session, auth.tenant_id, ticket_id)


@router.patch("/tickets/{ticket_id:uuid}", responses=problem_responses(403, 404, 409, body=True))
async def update_ticket(
    ticket_id: UUID, body: TicketUpdate, session: SessionDep, auth: TicketsWrite
) -> TicketRead:
    """Move the ticket along, (re)assign it, change its priority. Each change lands in the
    timeline and emits its event (`ticket.assigned`, `ticket.resolved`, …). Resolving needs
    `root_cause` and `resolution_summary` (422 `validation_error` otherwise); a move the
    status flow does not allow is a 409 `illegal_transition` that lists the allowed ones.
    `waiting_on_customer` pauses both clocks."""
    return await ticket_service.update(
        session, auth.tenant_id, ticket_id, body.changes(), actor=auth.key_id
    )


@router.post(
    "/tickets/{ticket_id:uuid}/notes",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, body=True),
)
async def add_ticket_note(
    ticket_id: UUID, body: NoteCreate, session: SessionDep, auth: TicketsWrite
) -> TimelineEntryRead:
    """An internal note: only the team sees it, no event is sent."""
    return await ticket_service.add_message(
        session, auth.tenant_id, ticket_id, body.body, body.author, reply=False, actor=auth.key_id
    )


@router.post(
    "/tickets/{ticket_id:uuid}/replies",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409, body=True),
)
async def add_ticket_reply(
    ticket_id: UUID, body: ReplyCreate, session: SessionDep, auth: TicketsWrite
) -> TimelineEntryRead:
    """A customer-facing reply. We do not message customers ourselves: `ticket.replied`
    carries the text for your CRM or messaging system to send. The first reply stops the
    first-response clock. Closed tickets take no replies (409; reopen first)."""
    return await ticket_service.add_message(
        session, auth.tenant_id, ticket_id, body.body, body.author, reply=True, actor=auth.key_id
    )


@router.post(
    "/tickets/{ticket_id:uuid}/follow-up", responses=problem_responses(403, 404, 409, body=True)
)
async def record_ticket_follow_up(
    ticket_id: UUID, body: FollowUpCreate, session: SessionDep, auth: TicketsWrite
) -> TicketRead:
    """Record the customer's answer to “Is your problem solved?” after resolution (409
    `ticket_not_resolved` before). “No” reopens the ticket. Optionally link the response
    that carried the answer (e.g. a CSAT survey you sent)."""
    return await ticket_service.record_follow_up(
        session,
        auth.tenant_id,
        ticket_id,
        solved=body.solved,
        comment=body.comment,
        response_id=body.response_id,
        actor=auth.key_id,
    )


@router.get("/tickets/{ticket_id:uuid}/timeline", responses=problem_responses(403, 404))
async def ticket_timeline(
    ticket_id: UUID,
    session: SessionDep,
    auth: TicketsRead,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[TimelineEntryRead]:
    """Everything that happened to the ticket, oldest first: creation, attached complaints,
    notes, replies, status changes, assignments, SLA warnings, breaches, escalations,
    follow-up answers."""
    after = parse_cursor(cursor, datetime, UUID)
    items, next_cursor = await ticket_service.timeline_page(
        session, auth.tenant_id, ticket_id, limit=limit, after=after
    )
    return Page(items=items, next_cursor=next_cursor)


# --- rules --------------------------------------------------------------------------------


@router.get("/ticket-rules", responses=problem_responses(403))
async def list_ticket_rules(session: SessionDep, auth: TicketsRead) -> list[TicketRuleRead]:
    """The rules in the order they are tried. The first enabled rule whose conditions all
    hold opens the ticket; a response no rule matches opens none."""
    return await ticket_service.list_rules(session, auth.tenant_id)


@router.post(
    "/ticket-rules",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, body=True),
)
async def create_ticket_rule(
    body: TicketRuleCreate, session: SessionDep, auth: TicketsWrite
) -> TicketRuleRead:
    """Add a rule. Rules see responses from known customers (anonymous ones cannot be
    contacted) that happened in the last 7 days (so imports of history open nothing)."""
    return await ticket_service.create_rule(session, auth.tenant_id, body)


@router.get("/ticket-rules/{rule_id:uuid}", responses=problem_responses(403, 404))
async def get_ticket_rule(rule_id: UUID, session: SessionDep, auth: TicketsRead) -> TicketRuleRead:
    """One rule."""
    return await ticket_service.get_rule(session, auth.tenant_id, rule_id)


@router.patch("/ticket-rules/{rule_id:uuid}", responses=problem_responses(403, 404, body=True))
async def update_ticket_rule(
    rule_id: UUID, body: TicketRuleUpdate, session: SessionDep, auth: TicketsWrite
) -> TicketRuleRead:
    """Change a rule; `conditions` and `action` are replaced as a whole."""
    return await ticket_service.update_rule(session, auth.tenant_id, rule_id, body)


@router.delete(
    "/ticket-rules/{rule_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
async def delete_ticket_rule(rule_id: UUID, session: SessionDep, auth: TicketsWrite) -> None:
    """Remove a rule. Tickets it opened stay."""
    await ticket_service.delete_rule(session, auth.tenant_id, rule_id)


# --- SLA policies -------------------------------------------------------------------------


@router.get("/sla-policies", responses=problem_responses(403))
async def list_sla_policies(session: SessionDep, auth: TicketsRead) -> list[SlaPolicyRead]:
    """The tenant's SLA policies. A new tenant has `standard`: calendar time, urgent 1 h /
    8 h, high 4 h / 24 h, normal 24 h / 72 h, low 72 h / 7 days."""
    return await ticket_service.list_policies(session, auth.tenant_id)


@router.post(
    "/sla-policies",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409, body=True),
)
async def create_sla_policy(
    body: SlaPolicyCreate, session: SessionDep, auth: TicketsWrite
) -> SlaPolicyRead:
    """Add a policy: targets per priority, counted in calendar time or on business hours
    (weekly hours, the country's public holidays, your closures)."""
    return await ticket_service.create_policy(session, auth.tenant_id, body)


@router.get("/sla-policies/{key}", responses=problem_responses(403, 404))
async def get_sla_policy(
    key: PolicyKeyPath, session: SessionDep, auth: TicketsRead
) -> SlaPolicyRead:
    """One policy, by key."""
    return await ticket_service.get_policy(session, auth.tenant_id, key)


@router.patch("/sla-policies/{key}", responses=problem_responses(403, 404, body=True))
async def update_sla_policy(
    key: PolicyKeyPath, body: SlaPolicyUpdate, session: SessionDep, auth: TicketsWrite
) -> SlaPolicyRead:
    """Change a policy; `targets`, `business_hours` and `escalation` are replaced as a whole
    (fields left out of them take their defaults). Running clocks keep their targets; new
    hours apply the next time a clock starts or resumes. `is_default: true` moves the
    default here."""
    return await ticket_service.update_policy(session, auth.tenant_id, key, body)


@router.delete(
    "/sla-policies/{key}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
)
async def delete_sla_policy(key: PolicyKeyPath, session: SessionDep, auth: TicketsWrite) -> None:
    """Remove a policy no rule or ticket uses (409 `policy_in_use` otherwise; the default
    cannot be removed)."""
    await ticket_service.delete_policy(session, auth.tenant_id, key)
