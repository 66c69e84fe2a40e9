"""Scopes a secret key may hold. Later features add theirs here."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    RESPONSES_WRITE = "responses:write"
    RESPONSES_READ = "responses:read"
    CUSTOMERS_WRITE = "customers:write"
    CUSTOMERS_READ = "customers:read"
    METRICS_READ = "metrics:read"
    TICKETS_READ = "tickets:read"
    TICKETS_WRITE = "tickets:write"
    INVITATIONS_READ = "invitations:read"
    INVITATIONS_WRITE = "invitations:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    KEYS_MANAGE = "keys:manage"
    TENANT_MANAGE = "tenant:manage"
    EVENTS_READ = "events:read"
    INTEGRITY_READ = "integrity:read"
    INTEGRITY_WRITE = "integrity:write"


ALL_SCOPES: tuple[str, ...] = tuple(s.value for s in Scope)
