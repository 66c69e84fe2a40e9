"""Who reacts to what: the subscribers of every in-transaction hook (kit/hooks.py),
connected once where the app and the worker are assembled. A domain that fires a hook
knows none of its subscribers; a new reaction to stored responses is one line here."""

from __future__ import annotations

from feedback_api.responses.hooks import responses_stored
from feedback_api.tickets.service import may_open_a_ticket
from feedback_api.tickets.service import on_stored as open_tickets


def connect() -> None:
    """Idempotent: subscribing again under a name replaces the subscriber."""
    responses_stored.subscribe("tickets", open_tickets, wants=may_open_a_ticket)
