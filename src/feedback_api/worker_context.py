"""What a task gets: its job, a session whose transaction also completes the job, settings,
and `checkpoint` for work that must not run in one long transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.models import Job


class LostClaim(Exception):
    """The job is no longer ours (our lease lapsed and another worker claimed it): stop."""


async def _commit(session: AsyncSession) -> None:
    await session.commit()


@dataclass(frozen=True, slots=True)
class JobContext:
    """A task's world.

    A task that works for more than a few seconds must not do it in one transaction: a
    long transaction holds back event visibility for every tenant (see events/repository).
    It works in bounded chunks and calls `await ctx.checkpoint()` after each: that checks
    the job is still ours (raising `LostClaim` if not) and commits the chunk. Every chunk
    must be safe to repeat, because a crash re-runs the job from the start; the last
    chunk commits with the job's completion.
    """

    job: Job
    session: AsyncSession
    settings: Settings
    checkpoint_fn: Callable[[AsyncSession], Awaitable[None]] = field(default=_commit)

    async def checkpoint(self) -> None:
        await self.checkpoint_fn(self.session)


Task = Callable[[JobContext], Awaitable[None]]
