"""Every event type the service emits, in one place. Later features add theirs here.

`data` is always the resource as the API shows it at that moment (for `*.deleted`, as it was
just before). `schema_version` rises when a type's `data` changes incompatibly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# A filter on event types: one type (`response.created`) or a family (`ticket.*`).
EVENT_TYPE_FILTER_PATTERN = r"^[a-z_]+\.([a-z_]+|\*)$"


class EventType(StrEnum):
    RESPONSE_CREATED = "response.created"
    RESPONSE_UPDATED = "response.updated"
    RESPONSE_REPLIED = "response.replied"
    CUSTOMER_ERASED = "customer.erased"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"
    WEBHOOK_TEST = "webhook.test"
    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    TICKET_ASSIGNED = "ticket.assigned"
    TICKET_REPLIED = "ticket.replied"
    TICKET_SLA_WARNING = "ticket.sla_warning"
    TICKET_SLA_BREACHED = "ticket.sla_breached"
    TICKET_ESCALATED = "ticket.escalated"
    TICKET_RESOLVED = "ticket.resolved"
    TICKET_REOPENED = "ticket.reopened"
    TICKET_CLOSED = "ticket.closed"
    INVITATION_SCHEDULED = "invitation.scheduled"
    INVITATION_SUPPRESSED = "invitation.suppressed"
    INVITATION_DUE = "invitation.due"
    INVITATION_REMINDER_DUE = "invitation.reminder_due"
    INVITATION_EXPIRED = "invitation.expired"
    INVITATION_RESPONDED = "invitation.responded"
    CUSTOMER_UNSUBSCRIBED = "customer.unsubscribed"
    INTEGRITY_FLAG_CREATED = "integrity.flag_created"
    INTEGRITY_FLAG_RESOLVED = "integrity.flag_resolved"
    REWARD_ELIGIBLE = "reward.eligible"
    THEME_RISING = "theme.rising"
    ACTION_CREATED = "action.created"
    ACTION_UPDATED = "action.updated"
    ACTION_COMPLETED = "action.completed"


@dataclass(frozen=True, slots=True)
class EventSpec:
    schema_version: int
    description: str


CATALOGUE: dict[EventType, EventSpec] = {
    EventType.RESPONSE_CREATED: EventSpec(1, "A response was stored. `data`: the response."),
    EventType.RESPONSE_UPDATED: EventSpec(
        1, "A response's tags or attributes changed. `data`: the response after the change."
    ),
    EventType.RESPONSE_REPLIED: EventSpec(
        1,
        "A response's public reply was written or edited. `data`: the reply "
        "(`response_id`, `body`, `version`, times).",
    ),
    EventType.CUSTOMER_ERASED: EventSpec(
        1,
        "A customer was erased on request. `data`: `external_ref` and `erased_at` only, so "
        "you can erase them downstream too. After 4 days `external_ref` is null: by then "
        "every webhook retry is over, and nothing of the ref is kept.",
    ),
    EventType.WEBHOOK_ENDPOINT_DISABLED: EventSpec(
        1,
        "We turned a webhook endpoint off (410 Gone, or failing for 5 days). `data`: the "
        "endpoint, with `disabled_reason`.",
    ),
    EventType.WEBHOOK_TEST: EventSpec(
        1, "Sent by `POST /v1/webhook-endpoints/{id}/test` to that endpoint only."
    ),
    EventType.TICKET_CREATED: EventSpec(
        1,
        "A ticket was opened, by a rule or by hand. `data`: the ticket, with `entry` (the "
        "timeline entry) in every `ticket.*` event.",
    ),
    EventType.TICKET_UPDATED: EventSpec(
        1,
        "A ticket changed: status (acknowledged, in progress, waiting), priority, another "
        "complaint attached, a follow-up answer. `entry` says what.",
    ),
    EventType.TICKET_ASSIGNED: EventSpec(1, "A ticket's team or assignee changed."),
    EventType.TICKET_REPLIED: EventSpec(
        1,
        "A customer-facing reply was added; `entry.body` is the text for your CRM to send. "
        "The first reply stops the first-response clock.",
    ),
    EventType.TICKET_SLA_WARNING: EventSpec(
        1,
        "A clock used its warning share (default 80 %). `entry.data.clock`: `first_response` "
        "or `resolution`. Once per ticket and clock.",
    ),
    EventType.TICKET_SLA_BREACHED: EventSpec(
        1, "A clock ran out. `entry.data.clock` says which. Once per ticket and clock."
    ),
    EventType.TICKET_ESCALATED: EventSpec(
        1, "A breach escalated the ticket per its policy (priority raised, team changed)."
    ),
    EventType.TICKET_RESOLVED: EventSpec(
        1,
        "A ticket was resolved. `data.resolution_summary` is customer-facing: tell the "
        "customer what was done, and ask whether it is solved (record the answer with "
        "`POST /v1/tickets/{id}/follow-up`).",
    ),
    EventType.TICKET_REOPENED: EventSpec(
        1,
        "A ticket was reopened: by hand, by a follow-up answer of “not solved”, or by a repeat "
        "complaint after resolution (`entry.data.reason`).",
    ),
    EventType.TICKET_CLOSED: EventSpec(1, "A resolved ticket was closed."),
    EventType.INVITATION_SCHEDULED: EventSpec(
        1, "An invitation passed the contact rules and waits for its due time. `data`: it."
    ),
    EventType.INVITATION_SUPPRESSED: EventSpec(
        1,
        "An invitation will not be sent; `data.suppression_reason` says why (frequency, "
        "cooldown, quiet_hours_limit, unsubscribed, channel_opted_out, bounced, erased, "
        "survey_inactive). Also when an opt-out arrives before the due time.",
    ),
    EventType.INVITATION_DUE: EventSpec(
        1,
        "Send it now. `data.message`: the question in the customer's language, one link per "
        "score, the landing and unsubscribe URLs; `data.recipient`: who (ref, name, email, "
        "phone). Report the outcome with `POST /v1/invitations/{id}/delivery`.",
    ),
    EventType.INVITATION_REMINDER_DUE: EventSpec(
        1,
        "Send a reminder now (`data.message.reminder` counts them); same shape as "
        "`invitation.due`.",
    ),
    EventType.INVITATION_EXPIRED: EventSpec(1, "The links closed unanswered."),
    EventType.INVITATION_RESPONDED: EventSpec(
        1,
        "The first answer through the invitation's link or token; `data.response_id` is the "
        "verified response (a changed answer updates it: `response.updated`).",
    ),
    EventType.CUSTOMER_UNSUBSCRIBED: EventSpec(
        1,
        "A customer opted out (`data.channel`, `*` for all), through the API or the link in "
        "a message. Mirror it in your CRM.",
    ),
    EventType.INTEGRITY_FLAG_CREATED: EventSpec(
        1,
        "A detector (or a person, `type` manual) flagged responses. `data`: the flag, with "
        "`excludes` saying whether its responses left the metrics.",
    ),
    EventType.INTEGRITY_FLAG_RESOLVED: EventSpec(
        1,
        "A flag was confirmed or dismissed (again). `data`: the flag after the decision, "
        "with `reason` and `decided_by_key_id`.",
    ),
    EventType.REWARD_ELIGIBLE: EventSpec(
        1,
        "Reward this customer for giving feedback (tenants with rewards on). Sent for every "
        "valid response of an identified customer within the reward rate limit, never "
        "depending on the score, which `data` does not carry: response_id, customer, "
        "invitation_id, survey, touchpoint, channel, occurred_at.",
    ),
    EventType.THEME_RISING: EventSpec(
        1,
        "A theme's (or tag's) share of comments grew significantly last week against the "
        "week before (the test of `GET /v1/insights/themes/rising`, FDR 5 %); sent by the "
        "worker at most once per theme and week. `data`: key, kind, period, previous_period, "
        "mentions, previous_mentions, share, previous_share, ratio, q_value.",
    ),
    EventType.ACTION_CREATED: EventSpec(
        1, "An improvement action was created. `data`: the action, with its baseline."
    ),
    EventType.ACTION_UPDATED: EventSpec(
        1, "An improvement action changed (status, target, dates …). `data`: the action."
    ),
    EventType.ACTION_COMPLETED: EventSpec(
        1,
        "An improvement action was done: tell the customers who raised it. `data`: "
        "`action`, its `public_summary`, `customers` (up to 500: `ref`, `mentions`, "
        "`last_mentioned_at`, `blocked_channels`; those who mentioned its theme in its scope "
        "from the baseline's start until it was done, less anyone opted out of every "
        "channel or erased) and `next_cursor` for `GET /v1/actions/{id}/customers`.",
    ),
}
