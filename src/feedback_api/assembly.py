"""Who reacts to what: the subscribers of every in-transaction hook (kit/hooks.py),
and the providers of every slot, connected once where the app and the worker are
assembled. A domain that fires a hook or declares a slot knows none of the domains that
answer it; a new reaction to stored responses is one line here."""

from __future__ import annotations

from feedback_api.actions.service import action
from feedback_api.compat.delighted.webhooks import DELIGHTED
from feedback_api.insights.hooks import efforts
from feedback_api.insights.service import needs_classifying
from feedback_api.insights.service import on_stored as classify_comments
from feedback_api.insights.service import wants as classifies
from feedback_api.integrity.service import integrity
from feedback_api.invitations.answers import answers
from feedback_api.responses.hooks import provenance, responses_stored, token_answers
from feedback_api.tickets.service import matches_a_rule, may_open_a_ticket
from feedback_api.tickets.service import on_stored as open_tickets
from feedback_api.webhooks.formats import formats as webhook_formats


def connect() -> None:
    """Idempotent: subscribing again under a name replaces the subscriber."""
    responses_stored.subscribe(
        "tickets", open_tickets, wants=may_open_a_ticket, gate=matches_a_rule
    )
    responses_stored.subscribe(
        "insights", classify_comments, wants=classifies, gate=needs_classifying
    )
    token_answers.provide(answers.answer_with_token)
    provenance.provide(integrity.provenance)
    efforts.provide(action.efforts)
    webhook_formats.provide({"delighted": DELIGHTED})
