"""The /v1 API, assembled from each domain's endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from feedback_api.actions.endpoints import router as actions_router
from feedback_api.compat.delighted.endpoints import router as delighted_router
from feedback_api.customers.endpoints import router as customers_router
from feedback_api.events.endpoints import router as events_router
from feedback_api.feeds.endpoints import router as feeds_router
from feedback_api.insights.endpoints import router as insights_router
from feedback_api.integrity.endpoints import router as integrity_router
from feedback_api.invitations.endpoints import router as invitations_router
from feedback_api.keys.endpoints import router as keys_router
from feedback_api.metrics.endpoints import router as metrics_router
from feedback_api.privacy.endpoints import router as privacy_router
from feedback_api.public.endpoints import router as public_router
from feedback_api.responses.endpoints import router as responses_router
from feedback_api.tenants.endpoints import router as tenants_router
from feedback_api.tickets.endpoints import router as tickets_router
from feedback_api.webhooks.endpoints import router as webhooks_router

# Each router carries its full /v1/... prefix and is included into the app directly: every
# level of router nesting is walked on every request, and a route's own `path` is then the
# full template that logs and metrics report.
ROUTERS: tuple[APIRouter, ...] = (
    tenants_router,
    keys_router,
    customers_router,
    privacy_router,  # /v1/customers/{ref}/export and DELETE /v1/customers/{ref}
    responses_router,
    metrics_router,
    tickets_router,
    invitations_router,
    events_router,
    integrity_router,
    insights_router,
    actions_router,
    webhooks_router,
    public_router,
    feeds_router,  # /public/{tenant_slug}/reviews and /improvements: no key
    delighted_router,  # /compat/delighted/v1/…: Delighted's API (HTTP Basic)
)
