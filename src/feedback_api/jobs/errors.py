from __future__ import annotations


class RetryLater(Exception):
    """Raised by a task to be retried after `delay_seconds` (e.g. a webhook's schedule)."""

    def __init__(self, reason: str, delay_seconds: float) -> None:
        super().__init__(reason)
        self.delay_seconds = delay_seconds


class GiveUp(Exception):
    """Raised by a task that must not be retried: the job is marked dead at once."""
