"""The /v1 router, assembled from each domain's endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from feedback_api.customers.endpoints import router as customers_router
from feedback_api.keys.endpoints import router as keys_router
from feedback_api.responses.endpoints import router as responses_router
from feedback_api.tenants.endpoints import router as tenants_router

API_PREFIX = "/v1"

# Included into the app one by one (not through a parent /v1 router): every level of
# router nesting is walked on every request.
ROUTERS: tuple[APIRouter, ...] = (tenants_router, keys_router, customers_router, responses_router)
