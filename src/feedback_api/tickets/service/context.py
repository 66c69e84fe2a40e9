"""What a request or a job knows about one tenant's tickets, loaded once: the settings, the
SLA policies and their calendars, the customers' refs seen so far; and how a ticket row
becomes the `TicketRead` the API shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import InvalidRequest, NotFound
from feedback_api.kit.time import utcnow
from feedback_api.models import SlaPolicy, Ticket
from feedback_api.tickets.clocks import SlaClocks, calendar_of
from feedback_api.tickets.repository import TicketRepository, TicketSettings
from feedback_api.tickets.schemas import ClockName, FollowUpRead, SlaClockRead, TicketRead
from feedback_api.tickets.sla import BusinessCalendar


@dataclass(slots=True)
class TicketContext:
    tenant_id: UUID
    settings: TicketSettings
    policies: dict[UUID, SlaPolicy]
    calendars: dict[UUID, BusinessCalendar | None] = field(default_factory=dict)
    refs: dict[UUID, str] = field(default_factory=dict)  # customer id → external_ref

    @classmethod
    async def load(cls, session: AsyncSession, tenant_id: UUID) -> TicketContext:
        settings, policies = await TicketRepository(session).settings_and_policies(tenant_id)
        if settings is None:
            raise NotFound("no such tenant")
        return cls(tenant_id, settings, {p.id: p for p in policies})

    @property
    def default_policy(self) -> SlaPolicy:
        for policy in self.policies.values():
            if policy.is_default:
                return policy
        raise NotFound("this tenant has no default SLA policy")  # prevented by the API

    def policy_by_key(self, key: str | None, loc: list[str | int]) -> SlaPolicy:
        if key is None:
            return self.default_policy
        for policy in self.policies.values():
            if policy.key == key:
                return policy
        raise InvalidRequest.at(
            loc, "unknown_policy", "no such SLA policy", detail=f"no SLA policy with key {key!r}"
        )

    def calendar(self, policy_id: UUID) -> BusinessCalendar | None:
        if policy_id not in self.calendars:
            self.calendars[policy_id] = calendar_of(
                self.policies[policy_id], self.settings.timezone
            )
        return self.calendars[policy_id]

    def clocks(self, ticket: Ticket) -> SlaClocks:
        policy = self.policies[ticket.sla_policy_id]
        return SlaClocks(ticket, policy, self.calendar(policy.id))

    def read(self, ticket: Ticket, ref: str | None) -> TicketRead:
        """The ticket as the API shows it; `ref` is its customer's `external_ref`."""
        now = utcnow()
        clocks = self.clocks(ticket)
        view = _TicketView(
            ticket,
            customer=ref,
            sla_policy=clocks.policy.key,
            first_response=clocks.read(ClockName.FIRST_RESPONSE, now),
            resolution=clocks.read(ClockName.RESOLUTION, now),
        )
        return TicketRead.model_validate(view, from_attributes=True)


@dataclass(frozen=True, slots=True)
class _TicketView:
    """What a `TicketRead` is read from: the row's columns for every field named like one,
    and here what the read shows that the row only refers to or derives."""

    row: Ticket
    customer: str | None
    sla_policy: str
    first_response: SlaClockRead
    resolution: SlaClockRead

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)

    @property
    def breached(self) -> bool:
        return self.first_response.breached_at is not None or (
            self.resolution.breached_at is not None
        )

    @property
    def follow_up(self) -> FollowUpRead | None:
        row = self.row
        if row.follow_up_solved is None or row.follow_up_at is None:
            return None
        return FollowUpRead(
            solved=row.follow_up_solved, comment=row.follow_up_comment, recorded_at=row.follow_up_at
        )
