"""Direct asyncpg access for the few statements on the ingest hot path.

SQLAlchemy's per-statement overhead (cache key, compile lookup, result processing, the
greenlet hop) measured about 0.25 ms of CPU per statement here, several times PostgreSQL's
own work for a one-row insert. Repositories may run hot statements on the asyncpg
connection *under* the session, inside the session's transaction, so commit and rollback
stay with the session and nothing else changes. Use it only where a benchmark says so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def driver_connection(session: AsyncSession) -> Any:
    """The session's asyncpg connection, with the session's transaction begun."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    # SQLAlchemy sends BEGIN lazily, before its own first statement; statements sent behind
    # its back must not run outside the transaction, so begin it the same way it would.
    if adapted._transaction is None:
        await adapted._start_transaction()
    return adapted.driver_connection
