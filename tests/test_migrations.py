from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from feedback_api.migrate import downgrade, upgrade
from feedback_api.models import Base
from tests.fixtures.database import create_database, drop_database

T = TypeVar("T")


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"fbt_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    yield url
    drop_database(name)


def _inspect(url: str, fn: Callable[[Connection], T]) -> T:
    async def run() -> T:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


class TestMigrations:
    def test_upgrade_downgrade_upgrade_and_no_drift(self, empty_database: str) -> None:
        upgrade(empty_database)
        assert {"tenants", "api_keys", "customers", "responses"} <= _inspect(
            empty_database, _tables
        )
        downgrade(empty_database, "base")
        assert _inspect(empty_database, _tables) == {"alembic_version"}
        upgrade(empty_database)
        assert _inspect(empty_database, _diff) == []

    def test_replicas_starting_together_take_turns(self, empty_database: str) -> None:
        env = {**os.environ, "FEEDBACK_DATABASE_URL": empty_database}
        replicas = [
            subprocess.Popen(
                [sys.executable, "-m", "feedback_api", "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = [replica.communicate(timeout=120)[0].decode() for replica in replicas]
        assert [r.returncode for r in replicas] == [0, 0, 0], outputs
        assert _inspect(empty_database, _diff) == []
