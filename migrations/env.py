"""Alembic environment (async). The URL comes from the caller (``feedback-api migrate``
passes it in the config) or from FEEDBACK_DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from feedback_api.db import normalize_url
from feedback_api.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("FEEDBACK_DATABASE_URL")
    if not url:
        raise RuntimeError(
            "no database URL: use `feedback-api migrate` or set FEEDBACK_DATABASE_URL"
        )
    return normalize_url(url)


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


# Several replicas may start at once and each runs `upgrade` on start-up: a transaction-level
# advisory lock makes them take turns; the later ones then find nothing left to do.
MIGRATION_LOCK = 7_274_610_331


# Migration 0006 uses `ON DELETE SET NULL (column)` (PostgreSQL 15); 14 reached its end of
# life in November 2026. Refuse older servers up front with a message, not a syntax error.
MIN_SERVER_VERSION = 150000


def _check_server(connection: Connection) -> None:
    version = int(connection.execute(text("SHOW server_version_num")).scalar_one())
    if version < MIN_SERVER_VERSION:
        raise RuntimeError(
            f"feedback-api needs PostgreSQL 15 or newer; this server is {version // 10000}"
        )


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        _check_server(connection)
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


async def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed in by a caller that already holds one
        _run(connection)
        return
    engine = create_async_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
