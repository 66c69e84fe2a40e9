"""Engine, the request session, and the embedded PostgreSQL server."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from feedback_api.config import Settings

EMBEDDED_DATABASE = "feedback"


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs too and use the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.password == "":
        parsed = parsed.set(password=None)
    return parsed.render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """The same database as a plain asyncpg DSN (for LISTEN connections)."""
    return (
        make_url(normalize_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    # JIT planning costs more than it saves on short OLTP statements.
    server_settings = {"application_name": "feedback-api", "jit": "off"}
    if settings.db_statement_timeout_seconds:
        server_settings["statement_timeout"] = str(
            int(settings.db_statement_timeout_seconds * 1000)
        )
    return create_async_engine(
        normalize_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        # Database errors must not carry statement parameters (comments, e-mail addresses)
        # into logs.
        hide_parameters=True,
        connect_args={
            "server_settings": server_settings,
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def start_embedded_server(data_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL in ``data_dir`` and return its URL.

    pgserver ships a real PostgreSQL 16 in a wheel. It listens on a Unix socket only, so it
    never clashes with another server's port; as root it runs postgres as a dedicated OS user.
    The server stops when the last process that started it exits.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from pgserver.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pg", cleanup_mode="stop")
    exists = server.psql(
        f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';"
    ).strip()
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    return normalize_url(str(server.get_uri(EMBEDDED_DATABASE)))


@asynccontextmanager
async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session, committed when the block ends without an error (and rolled
    back otherwise). A test app puts its own in ``app.state.session_scope``."""
    scope = getattr(request.app.state, "session_scope", None)
    if scope is not None:
        async with scope() as session:
            yield session
        return
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session
        await session.commit()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; it commits after the endpoint returns and *before* the
    response is sent (``scope="function"``), so an acknowledged write is durable."""
    async with request_session(request) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_app_settings(request: Request) -> Settings:
    # async: a plain def dependency would hop to the thread pool on every request.
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
