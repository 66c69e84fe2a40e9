from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from feedback_api import assembly
from feedback_api.config import Settings
from feedback_api.db import create_engine
from feedback_api.logging import configure_logging
from tests.fixtures.app import ADMIN_TOKEN, build_app
from tests.fixtures.auth import TenantHandle, create_tenant_handle
from tests.fixtures.database import (
    create_database,
    drop_database,
    prepare_template,
    template_name,
)
from tests.fixtures.live import live, other_live  # noqa: F401  (fixtures)
from tests.fixtures.receiver import receiver  # noqa: F401  (fixture)


def pytest_configure(config: pytest.Config) -> None:
    # Tests that call services without an app see the same reactions (tickets) as the app.
    assembly.connect()
    # As the app and the worker do; structlog's default would render every logged
    # exception with rich, locals and all, which takes seconds per traceback.
    configure_logging("WARNING")
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        prepare_template()


# Fixtures that start processes (the API, the worker, Chromium): their tests are `slow`.
SLOW_FIXTURES = frozenset({"processes", "own_processes", "module_processes", "browser"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and "FEEDBACK_TEST_TEMPLATE" in os.environ:
        drop_database(template_name())


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, admin_token=SecretStr(ADMIN_TOKEN), log_level="WARNING"
    )


@pytest.fixture(scope="session")
def database_url(worker_id: str) -> Iterator[str]:
    name = f"{template_name()}_{worker_id}"
    url = create_database(name, template=template_name())
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
async def engine(database_url: str, settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test. Commits made by
    the code under test become savepoint releases, so they are real but never persist."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        session = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def app(settings: Settings, engine: AsyncEngine, session: AsyncSession) -> FastAPI:
    return build_app(settings, engine, session)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def tenant(session: AsyncSession, client: httpx.AsyncClient) -> TenantHandle:
    return await create_tenant_handle(session, client, "Acme")


@pytest.fixture
async def other_tenant(session: AsyncSession, client: httpx.AsyncClient) -> TenantHandle:
    return await create_tenant_handle(session, client, "Globex")
