from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from feedback_api.exceptions import RateLimited
from feedback_api.health import queues
from feedback_api.kit.crypto import constant_time_equals
from feedback_api.kit.http import client_ip
from feedback_api.kit.schemas import Problem
from feedback_api.problems import problem_response
from feedback_api.ratelimits.limiter import Limiter

router = APIRouter(tags=["operations"])
logger = structlog.get_logger("feedback_api.health")
REGISTRY.register(queues.collector)


class Health(BaseModel):
    status: str


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up. Use for liveness probes."""
    return Health(status="ok")


@router.get(
    "/readyz",
    responses={503: {"model": Problem, "description": "The database does not answer."}},
)
async def readyz(request: Request) -> Response:
    """The database answers. Use for readiness probes and load balancers."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with asyncio.timeout(2):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception:
        return problem_response(503, "not_ready", "Not ready", "the database does not answer")
    return Response(Health(status="ok").model_dump_json(), media_type="application/json")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics. With FEEDBACK_METRICS_TOKEN set, only for
    `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials: …}`)."""
    token = request.app.state.settings.metrics_token
    if token is not None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not constant_time_equals(
            presented.strip(), token.get_secret_value()
        ):
            limiter: Limiter = request.app.state.limiter
            try:
                await limiter.fail(limiter.failures(client_ip(request)))
            except RateLimited as exc:
                return problem_response(
                    exc.status, exc.code, exc.title, exc.detail, headers=exc.headers
                )
            return problem_response(
                401,
                "unauthenticated",
                "Missing or invalid credentials",
                "send `Authorization: Bearer <FEEDBACK_METRICS_TOKEN>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
    if queues.collector.stale():
        try:
            async with asyncio.timeout(2), request.app.state.sessionmaker() as session:
                queues.collector.update(await queues.snapshot(session))
        except Exception as exc:  # the process metrics still matter when the database does not
            logger.warning("queue_snapshot_failed", error_type=type(exc).__name__)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
