"""The /v1 router, assembled from each domain's endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from feedback_api.customers.endpoints import router as customers_router
from feedback_api.keys.endpoints import router as keys_router
from feedback_api.responses.endpoints import router as responses_router
from feedback_api.tenants.endpoints import router as tenants_router

router = APIRouter(prefix="/v1")
router.include_router(tenants_router)
router.include_router(keys_router)
router.include_router(customers_router)
router.include_router(responses_router)
