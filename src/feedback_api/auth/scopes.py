"""Scopes a secret key may hold. Later features add theirs here."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    RESPONSES_WRITE = "responses:write"
    RESPONSES_READ = "responses:read"
    CUSTOMERS_WRITE = "customers:write"
    CUSTOMERS_READ = "customers:read"
    METRICS_READ = "metrics:read"
    # Read metric values of cells smaller than the tenant's metrics_min_cell_n, which may
    # single out a person (for analysts bound by the data-protection rules, not dashboards).
    METRICS_SMALL_CELLS = "metrics:small_cells"
    TICKETS_READ = "tickets:read"
    TICKETS_WRITE = "tickets:write"
    INVITATIONS_READ = "invitations:read"
    INVITATIONS_WRITE = "invitations:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    KEYS_MANAGE = "keys:manage"
    # Create or change `trusted` keys, whose responses count as verified (admin keys).
    KEYS_TRUST = "keys:trust"
    TENANT_MANAGE = "tenant:manage"
    EVENTS_READ = "events:read"
    INTEGRITY_READ = "integrity:read"
    INTEGRITY_WRITE = "integrity:write"
    INSIGHTS_READ = "insights:read"
    # Edit the theme dictionary (and accept discovered themes into it).
    INSIGHTS_WRITE = "insights:write"
    ACTIONS_READ = "actions:read"
    ACTIONS_WRITE = "actions:write"


ALL_SCOPES: tuple[str, ...] = tuple(s.value for s in Scope)
