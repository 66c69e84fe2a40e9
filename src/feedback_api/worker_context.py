"""What a task gets: its job, a session whose transaction also completes the job, settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.models import Job


@dataclass(frozen=True, slots=True)
class JobContext:
    job: Job
    session: AsyncSession
    settings: Settings


Task = Callable[[JobContext], Awaitable[None]]
