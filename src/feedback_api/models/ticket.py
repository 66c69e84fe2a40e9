from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Interval,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from feedback_api.kit.ids import new_id
from feedback_api.kit.models import Base, TimestampMixin

PRIORITIES = "('urgent', 'high', 'normal', 'low')"
ACTIVE_STATUSES = "('open', 'acknowledged', 'in_progress', 'waiting_on_customer', 'reopened')"


class SlaPolicy(TimestampMixin, Base):
    """Response and resolution targets per priority, counted on a calendar."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        Index("uq_sla_policies_tenant_id_key", "tenant_id", "key", unique=True),
        Index(
            "uq_sla_policies_tenant_id_default",
            "tenant_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(server_default=text("false"))
    # {"urgent": {"first_response_minutes": 60, "resolution_minutes": 480}, ...}
    targets: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # null: calendar time. Else {"timezone", "weekly": {"mon": [["09:00", "18:00"]]},
    # "country", "subdivision", "closures": ["2026-12-24"]}.
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    warn_at_percent: Mapped[int] = mapped_column(SmallInteger, server_default=text("80"))
    escalate_raise_priority: Mapped[bool] = mapped_column(server_default=text("true"))
    escalation_team: Mapped[str | None] = mapped_column(String(100))


class TicketRule(TimestampMixin, Base):
    __tablename__ = "ticket_rules"
    __table_args__ = (
        CheckConstraint(f"priority IN {PRIORITIES}", name="priority"),
        ForeignKeyConstraint(
            ["tenant_id", "sla_policy_id"], ["sla_policies.tenant_id", "sla_policies.id"]
        ),
        Index(None, "tenant_id", "position", "id"),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int]
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    priority: Mapped[str] = mapped_column(String(8))
    team: Mapped[str | None] = mapped_column(String(100))
    assignee: Mapped[str | None] = mapped_column(String(255))
    sla_policy_id: Mapped[UUID | None]  # null: the tenant's default policy


class Ticket(Base):
    """A follow-up case for one unhappy customer at one touchpoint.

    Each SLA clock is stored as budget, working time consumed, running since (null while
    paused or stopped) and stopped at; `*_due_at` and `*_warn_at` are derived from them on
    every change so the escalation job can find due tickets by index (`next_sla_check_at`).
    """

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(f"priority IN {PRIORITIES}", name="priority"),
        CheckConstraint(
            "status IN ('open', 'acknowledged', 'in_progress', 'waiting_on_customer', "
            "'resolved', 'closed', 'reopened')",
            name="status",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            ondelete="SET NULL (customer_id)",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "sla_policy_id"], ["sla_policies.tenant_id", "sla_policies.id"]
        ),
        # One ticket being worked per customer and touchpoint: a new complaint attaches.
        Index(
            "uq_tickets_active_customer_touchpoint",
            "tenant_id",
            "customer_id",
            text("coalesce(touchpoint, '')"),
            unique=True,
            postgresql_where=text(f"status IN {ACTIVE_STATUSES} AND customer_id IS NOT NULL"),
        ),
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "tenant_id", "customer_id", "resolved_at"),
        Index(
            "ix_tickets_next_sla_check_at",
            "next_sla_check_at",
            postgresql_where=text("next_sla_check_at IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(24))
    priority: Mapped[str] = mapped_column(String(8))
    team: Mapped[str | None] = mapped_column(String(100))
    assignee: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[UUID | None]
    touchpoint: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(16))
    agent_ref: Mapped[str | None] = mapped_column(String(255))
    location_ref: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))  # response | manual
    response_id: Mapped[UUID | None]  # the response that opened it
    rule_id: Mapped[UUID | None]  # no FK: rules may be deleted, tickets stay
    sla_policy_id: Mapped[UUID]

    first_response_budget: Mapped[timedelta] = mapped_column(Interval)
    first_response_consumed: Mapped[timedelta] = mapped_column(
        Interval, server_default=text("'0'::interval")
    )
    first_response_running_since: Mapped[datetime | None]
    first_response_stopped_at: Mapped[datetime | None]
    first_response_due_at: Mapped[datetime | None]
    first_response_warn_at: Mapped[datetime | None]
    first_response_warned_at: Mapped[datetime | None]
    first_response_breached_at: Mapped[datetime | None]
    resolution_budget: Mapped[timedelta] = mapped_column(Interval)
    resolution_consumed: Mapped[timedelta] = mapped_column(
        Interval, server_default=text("'0'::interval")
    )
    resolution_running_since: Mapped[datetime | None]
    resolution_stopped_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    resolution_warn_at: Mapped[datetime | None]
    resolution_warned_at: Mapped[datetime | None]
    resolution_breached_at: Mapped[datetime | None]
    next_sla_check_at: Mapped[datetime | None]

    first_replied_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    repeat_count: Mapped[int] = mapped_column(server_default=text("0"))
    reopened_count: Mapped[int] = mapped_column(server_default=text("0"))
    root_cause: Mapped[str | None] = mapped_column(String(100))
    resolution_summary: Mapped[str | None] = mapped_column(Text)
    follow_up_solved: Mapped[bool | None]
    follow_up_comment: Mapped[str | None] = mapped_column(Text)
    follow_up_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reopened_at: Mapped[datetime | None]
    created_by_key_id: Mapped[UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TicketResponse(Base):
    """A response linked to a ticket: the one that opened it, later complaints, follow-ups."""

    __tablename__ = "ticket_responses"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "ticket_id"], ["tickets.tenant_id", "tickets.id"], ondelete="CASCADE"
        ),
        Index(None, "tenant_id", "response_id"),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    ticket_id: Mapped[UUID] = mapped_column(primary_key=True)
    response_id: Mapped[UUID] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # trigger | attached | repeat | follow_up
    linked_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TicketEntry(Base):
    """One line of a ticket's timeline."""

    __tablename__ = "ticket_entries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "ticket_id"], ["tickets.tenant_id", "tickets.id"], ondelete="CASCADE"
        ),
        Index(None, "tenant_id", "ticket_id", "created_at", "id"),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    ticket_id: Mapped[UUID]
    type: Mapped[str] = mapped_column(String(32))
    actor_key_id: Mapped[UUID | None]  # null: the system (rules, escalation)
    author: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
