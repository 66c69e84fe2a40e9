"""The closed loop: rules open tickets from unhappy responses, teams work them through the API,
SLA clocks run on business hours, the worker warns and escalates, and a repeat complaint
reopens the ticket.

One service per responsibility, each in its module:

- `policies`: SLA policies and the rules (and a new tenant's defaults);
- `reads`: tickets and timelines as the API lists them;
- `routing`: tickets from stored responses (the `responses_stored` subscriber);
- `manual`: what people do through the API (open, update, note, reply, follow-up);
- `escalation`: the SLA job;
- `privacy`: a customer's tickets in exports and erasure;
- `statistics`: `GET /v1/tickets/stats`.

They share `context.TicketContext` (the tenant's settings and policies, loaded once) and
`change.TicketChange` (one change to one ticket: entries, events, moves, clocks). Every
change to a ticket takes its row lock first (`SELECT … FOR UPDATE`), so API calls, the rules
and the escalation job never interleave on one ticket; warnings and breaches are marked
under that lock, which is what makes them happen exactly once.

`ticket` is the domain's front door for the endpoints, the worker and other domains.
"""

from __future__ import annotations

from feedback_api.tickets.service.escalation import SLA_BATCH
from feedback_api.tickets.service.escalation import escalation as escalation_service
from feedback_api.tickets.service.manual import manual as manual_service
from feedback_api.tickets.service.policies import DEFAULT_TARGETS
from feedback_api.tickets.service.policies import policies as policy_service
from feedback_api.tickets.service.policies import rules as rule_service
from feedback_api.tickets.service.privacy import privacy as privacy_service
from feedback_api.tickets.service.reads import reads as read_service
from feedback_api.tickets.service.routing import (
    AUTO_TICKET_MAX_AGE,
    Complaint,
    matches_a_rule,
    may_open_a_ticket,
    on_stored,
)
from feedback_api.tickets.service.routing import routing as routing_service
from feedback_api.tickets.service.statistics import statistics as statistics_service

__all__ = [
    "AUTO_TICKET_MAX_AGE",
    "DEFAULT_TARGETS",
    "SLA_BATCH",
    "Complaint",
    "TicketService",
    "matches_a_rule",
    "may_open_a_ticket",
    "on_stored",
    "ticket",
]


class TicketService:
    def __init__(self) -> None:
        # SLA policies and rules
        self.seed_defaults = policy_service.seed_defaults
        self.list_policies = policy_service.list_policies
        self.get_policy = policy_service.get_policy
        self.create_policy = policy_service.create_policy
        self.update_policy = policy_service.update_policy
        self.delete_policy = policy_service.delete_policy
        self.list_rules = rule_service.list_rules
        self.get_rule = rule_service.get_rule
        self.create_rule = rule_service.create_rule
        self.update_rule = rule_service.update_rule
        self.delete_rule = rule_service.delete_rule
        # reading tickets
        self.get = read_service.get
        self.list_page = read_service.list_page
        self.timeline_page = read_service.timeline_page
        # tickets from responses, and from people
        self.on_responses = routing_service.on_responses
        self.create = manual_service.create
        self.update = manual_service.update
        self.add_message = manual_service.add_message
        self.record_follow_up = manual_service.record_follow_up
        # the SLA job, privacy, statistics
        self.check_sla = escalation_service.check_sla
        self.export_customer = privacy_service.export_customer
        self.forget_customer = privacy_service.forget_customer
        self.stats = statistics_service.stats


ticket = TicketService()
