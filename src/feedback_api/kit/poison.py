"""Batches that survive a poisoned item.

Background work runs over batches (500 responses to screen, a tenant's patterns). When a
batch fails, `isolate` retries it in halves, each in a savepoint of the caller's
transaction, until the failing items are found alone; each is handed to `set_aside` (which
records it where an operator can see it) and the rest of the batch is done and committed as
if nothing had happened. A batch of n with one poisoned item costs about 2·log2(n) extra
runs of smaller batches.

A failure that is not about an item (the database went away, the connection broke) is not
poison: bisecting would set aside every item of the batch. Those propagate, the caller's
transaction rolls back, and the whole batch is retried on the next tick.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg
import structlog
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncSession

logger = structlog.get_logger("feedback_api.poison")

T = TypeVar("T")

WORK_FAILURES = Counter(
    "feedback_work_failures_total",
    "Failures of background work by name (tickers and jobs) and kind: 'batch' (retried in "
    "halves), 'item' (set aside), 'run' (the whole run failed and is retried).",
    ["name", "kind"],
)

# Errors of the connection or server, not of the data.
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError and socket errors among them
    DisconnectionError,
    InterfaceError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, the driver's error behind it and the asyncpg one behind that."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return found


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a SQLAlchemy or asyncpg error, if there is one."""
    for link in _chain(exc):
        state = getattr(link, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def is_data_error(exc: BaseException) -> bool:
    """The database (class 22: bad character, number or date out of range …; class 23: a
    constraint) or asyncpg (a parameter it cannot encode) refused a value: a fault of the
    item, not of the connection or the server."""
    state = sqlstate(exc)
    if state is not None and state[:2] in ("22", "23"):
        return True
    return any(isinstance(link, _ClientDataError) for link in _chain(exc))


# asyncpg's client-side "invalid input for query argument" (e.g. out of int64 range); it
# subclasses asyncpg's InterfaceError, which is otherwise a connection fault.
_ClientDataError = asyncpg.exceptions._base.DataError
# Contention and cancellation (deadlock, serialization failure, statement or lock timeout)
# say nothing about the items either: retry the whole batch later.
_TRANSIENT_STATES = ("40001", "40P01", "57014", "55P03")


def is_transient(exc: BaseException) -> bool:
    """True for failures of the connection or the server rather than of an item."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if sqlstate(exc) in _TRANSIENT_STATES:
        return True
    if is_data_error(exc):
        return False
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig.__cause__ or exc.orig
    return isinstance(exc, _TRANSIENT)


async def isolate(
    session: AsyncSession,
    name: str,
    items: Sequence[T],
    work: Callable[[Sequence[T]], Awaitable[None]],
    set_aside: Callable[[T, Exception], Awaitable[None]],
    *,
    is_poison: Callable[[Exception], bool] | None = None,
) -> int:
    """Run `work(items)` in a savepoint; on failure split the batch in halves and retry
    each, down to single items; a single item that still fails goes to `set_aside` (in the
    caller's transaction, after its savepoint rolled back). Returns how many were set aside.
    Transient errors (see `is_transient`) propagate, and so does any error `is_poison`
    (when given) does not call a fault of the items."""
    if not items:
        return 0
    try:
        async with session.begin_nested():
            await work(items)
        return 0
    except Exception as exc:
        if is_transient(exc) or (is_poison is not None and not is_poison(exc)):
            raise
        if len(items) == 1:
            WORK_FAILURES.labels(name, "item").inc()
            logger.exception("work_item_set_aside", work=name, error_type=type(exc).__name__)
            await set_aside(items[0], exc)
            return 1
        WORK_FAILURES.labels(name, "batch").inc()
        logger.exception(
            "work_batch_failed", work=name, size=len(items), error_type=type(exc).__name__
        )
    middle = len(items) // 2
    left = await isolate(session, name, items[:middle], work, set_aside, is_poison=is_poison)
    return left + await isolate(session, name, items[middle:], work, set_aside, is_poison=is_poison)


def describe(exc: BaseException) -> tuple[str, str]:
    """The type and message an operator sees for a set-aside item (no traceback: that is
    in the log)."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    return name[:200], (str(exc) or name)[:2000]
