from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from feedback_api import __version__, assembly, contract
from feedback_api.api import ROUTERS
from feedback_api.compat.delighted import routing as delighted_routing
from feedback_api.config import Settings, get_settings
from feedback_api.cors import CORSMiddleware
from feedback_api.db import (
    asyncpg_dsn,
    create_engine,
    create_sessionmaker,
    start_embedded_server,
)
from feedback_api.health.endpoints import router as health_router
from feedback_api.logging import configure_logging
from feedback_api.middleware import RequestContextMiddleware
from feedback_api.problems import install_exception_handlers
from feedback_api.ratelimits.limiter import Limiter
from feedback_api.worker import Worker

DESCRIPTION = """\
A headless customer-feedback service: capture feedback, compute honest NPS/CSAT/CES,
close the loop with every unhappy customer.

Authenticate with `Authorization: Bearer <key>`. Errors are RFC 9457
`application/problem+json` with a stable `code`. Lists use keyset cursors.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    assembly.connect()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_engine = not hasattr(app.state, "engine")
        if owns_engine:
            url = settings.database_url or start_embedded_server(settings.data_dir)
            app.state.engine = create_engine(url, settings)
            app.state.sessionmaker = create_sessionmaker(app.state.engine)
        stop = asyncio.Event()
        worker_task = None
        if settings.run_worker:
            worker = Worker(
                app.state.sessionmaker,
                settings,
                listen_dsn=asyncpg_dsn(app.state.engine.url.render_as_string(False)),
            )
            worker_task = asyncio.create_task(worker.run(stop))
        # Objects made at start-up live for ever: move them out of the collector's sight, so
        # full collections (the p99 latency tail) have less to walk.
        gc.collect()
        gc.freeze()
        yield
        stop.set()
        if worker_task is not None:
            await worker_task
        if owns_engine:
            await app.state.engine.dispose()

    app = FastAPI(
        title="feedback-api",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        generate_unique_id_function=contract.operation_id,
    )
    app.state.settings = settings
    app.state.limiter = Limiter(
        enabled=settings.rate_limits_enabled,
        redis_url=settings.redis_url,
        key_prefix=settings.redis_key_prefix,
        overrides=settings.rate_limits,
    )
    app.include_router(health_router)
    for router in ROUTERS:
        app.include_router(router)
    install_exception_handlers(app)
    contract.install(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        error_shapes=[(delighted_routing.PREFIX, delighted_routing.error_bytes)],
    )
    app.add_middleware(CORSMiddleware)  # outermost: web pages on POST /v1/responses only
    return app
