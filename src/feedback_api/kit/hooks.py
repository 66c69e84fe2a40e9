"""In-transaction hooks: a domain fires one when it has stored something others react to;
the others subscribe where the app and the worker are assembled, so the firing domain
knows none of them.

A subscriber runs in the firing request's transaction (what it writes is acknowledged with
the write that fired it), inside a savepoint of its own. When it fails:

- with contention or a cancelled statement (`kit.poison.is_transient`), the error goes on
  up: the whole request is run again (the middleware retries deadlocks), as before hooks;
- with anything else (a bug in a downstream rule), its savepoint is rolled back, the
  failure is logged and counted, and `on_failure` keeps what it needs to run it again
  later (the app schedules a job), so the write that fired it is never lost.

A `Slot` is the other direction: a domain that needs one piece of work done by a domain
above it (responses answering an invitation token) declares the slot, and assembly
provides the one function that does it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar
from uuid import UUID

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.kit.poison import is_transient, sqlstate

logger = structlog.get_logger("feedback_api.hooks")

HOOK_FAILURES = Counter(
    "feedback_hook_failures_total",
    "Subscribers of an in-transaction hook that failed; their work was set aside for a job.",
    ["hook", "subscriber"],
)

T = TypeVar("T")
Subscriber = Callable[[AsyncSession, UUID, Sequence[T]], Awaitable[None]]
# (session, hook name, subscriber name, tenant, items): keep them to run again later.
OnFailure = Callable[[AsyncSession, str, str, UUID, Sequence[T]], Awaitable[None]]
# (session, tenant, wanted items) → whether the subscriber has anything to do. Run outside
# the savepoint: a subscriber with nothing to do costs no SAVEPOINT and RELEASE (two round
# trips on the ingest path). What it reads or locks belongs to the firing transaction.
Gate = Callable[[AsyncSession, UUID, Sequence[T]], Awaitable[bool]]


class Hook(Generic[T]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._subscribers: dict[
            str, tuple[Subscriber[T], Callable[[T], bool] | None, Gate[T] | None]
        ] = {}
        self.on_failure: OnFailure[T] | None = None

    def subscribe(
        self,
        name: str,
        subscriber: Subscriber[T],
        *,
        wants: Callable[[T], bool] | None = None,
        gate: Gate[T] | None = None,
    ) -> None:
        """Add a subscriber under a stable name (the name a retry job finds it by).
        `wants` picks the items it is handed; when none is wanted the subscriber is not run
        at all (no savepoint: the ingest path pays nothing for a reaction it does not need).
        `gate`, when given, is asked next (see `Gate`). Subscribing again under the same
        name replaces it (assembly may run twice)."""
        self._subscribers[name] = (subscriber, wants, gate)

    def subscriber(self, name: str) -> Subscriber[T] | None:
        entry = self._subscribers.get(name)
        return entry[0] if entry else None

    async def fire(self, session: AsyncSession, tenant_id: UUID, items: Sequence[T]) -> None:
        if not items:
            return
        for name, (subscriber, wants, gate) in self._subscribers.items():
            wanted = items if wants is None else [i for i in items if wants(i)]
            if not wanted or (
                gate is not None and not await _open(gate, session, tenant_id, wanted)
            ):
                continue
            try:
                async with session.begin_nested():
                    await subscriber(session, tenant_id, wanted)
            except Exception as exc:
                if is_transient(exc) or self.on_failure is None:
                    raise
                HOOK_FAILURES.labels(self.name, name).inc()
                logger.error(
                    "hook_subscriber_failed",
                    hook=self.name,
                    subscriber=name,
                    error_type=type(exc).__name__,
                    exc_info=exc,
                )
                await self.on_failure(session, self.name, name, tenant_id, wanted)


async def _open(gate: Gate[T], session: AsyncSession, tenant_id: UUID, items: Sequence[T]) -> bool:
    """A gate's answer. A bug in it (not the database's refusal, which has ended the
    transaction anyway) lets the subscriber run, in its savepoint, where the same failure is
    caught and its work kept for later."""
    try:
        return await gate(session, tenant_id, items)
    except Exception as exc:
        if is_transient(exc) or sqlstate(exc) is not None:
            raise
        logger.warning("hook_gate_failed", error_type=type(exc).__name__, exc_info=exc)
        return True


class Slot(Generic[T]):
    """One provider, connected at assembly, for work the declaring domain hands up to a
    domain it must not import. Typed by what it holds (usually a callable)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._provider: T | None = None

    def provide(self, provider: T) -> None:
        """Connect the provider; providing again replaces it (assembly may run twice)."""
        self._provider = provider

    def get(self) -> T:
        if self._provider is None:
            raise RuntimeError(
                f"nothing provides {self.name!r}: call feedback_api.assembly.connect() "
                "where the app or the worker is assembled"
            )
        return self._provider
