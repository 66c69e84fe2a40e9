"""CPU-bound insight work (discovery, drivers, segments) runs off the event loop, a few at a
time per process, so that a burst of reports cannot take every request's share of the CPU."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

SLOTS = 2
_slots = asyncio.Semaphore(SLOTS)


async def offload(work: Callable[[], T]) -> T:
    async with _slots:
        return await asyncio.to_thread(work)
