"""Every background queue's depth and the age of its oldest item, read from the database.

What `/metrics` exports (on every API process, whether or not it runs a worker: a dead
worker is exactly when the queues must still be visible) and what `feedback-api status`
prints. Each query is bounded (counts stop at COUNT_CAP, indexes serve the rest), so a
scrape costs milliseconds even with a large backlog. Alert thresholds: docs/operations.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

COUNT_CAP = 100_000
# Per-endpoint rows exported at most (the oldest backlogs first), to bound label cardinality.
MAX_ENDPOINTS = 50

State = Literal["ok", "warn", "stuck"]


@dataclass(frozen=True, slots=True)
class Queue:
    queue: str  # integrity.screen, jobs, webhooks.dispatch, webhooks.deliver, ...
    key: str  # the job kind, the endpoint id, the failure source; "" for a single queue
    depth: int
    oldest_seconds: float | None  # None: empty, or the queue keeps no arrival time
    tenant_id: str | None = None

    @property
    def state(self) -> State:
        """Our alerting rule of thumb (docs/operations.md#queues-and-alerts)."""
        warn, stuck = THRESHOLDS.get(self.queue, (None, None))
        if self.queue in COUNTED:  # a count is the signal: nothing should be there
            return "warn" if self.depth > 0 else "ok"
        if self.queue == "metrics.fold":
            return "stuck" if self.depth >= 1_000_000 else "warn" if self.depth >= 100_000 else "ok"
        age = self.oldest_seconds or 0.0
        if stuck is not None and age >= stuck:
            return "stuck"
        if warn is not None and age >= warn:
            return "warn"
        return "ok"


# (warn, stuck) on the age of the oldest item, seconds.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "integrity.screen": (60, 600),
    "jobs": (60, 600),
    "webhooks.dispatch": (60, 600),
    "webhooks.deliver": (60, 600),
}
COUNTED = {"jobs.dead", "work_failures"}

_SCREEN = f"""
SELECT count(*), extract(epoch FROM now() - min(received_at))
FROM (SELECT received_at FROM responses WHERE screened_at IS NULL LIMIT {COUNT_CAP}) AS u
"""
_JOBS = """
SELECT kind,
    count(*) FILTER (WHERE status = 'queued' AND run_at <= now()
                     AND (locked_until IS NULL OR locked_until < now())),
    extract(epoch FROM now() - min(run_at) FILTER (
        WHERE status = 'queued' AND run_at <= now()
              AND (locked_until IS NULL OR locked_until < now()))),
    count(*) FILTER (WHERE status = 'queued' AND locked_until >= now()),
    count(*) FILTER (WHERE status = 'dead')
FROM jobs GROUP BY kind ORDER BY kind
"""
# Events not yet turned into deliveries, per enabled endpoint: the oldest after its cursor.
_DISPATCH = f"""
SELECT w.tenant_id, w.id, n.depth, extract(epoch FROM now() - n.oldest)
FROM webhook_endpoints w
CROSS JOIN LATERAL (
    SELECT count(*) AS depth, min(e.created_at) AS oldest FROM (
        SELECT e.created_at FROM events e
        WHERE e.tenant_id = w.tenant_id AND (e.xid, e.id) > (w.cursor_xid, w.cursor_event_id)
        ORDER BY e.xid, e.id LIMIT {COUNT_CAP}
    ) AS e
) AS n
WHERE w.enabled AND n.depth > 0
ORDER BY n.oldest LIMIT {MAX_ENDPOINTS}
"""
# Deliveries due now and not made, per endpoint (retries waiting for their time are not due).
_DELIVER = f"""
SELECT tenant_id, endpoint_id, count(*), extract(epoch FROM now() - min(next_attempt_at))
FROM (
    SELECT tenant_id, endpoint_id, next_attempt_at FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now() LIMIT {COUNT_CAP}
) AS d
GROUP BY 1, 2 ORDER BY 4 DESC LIMIT {MAX_ENDPOINTS}
"""
_FOLD = f"SELECT count(*) FROM (SELECT 1 FROM metric_deltas LIMIT {COUNT_CAP * 10}) AS d"
_FAILURES = """
SELECT source, count(*), extract(epoch FROM now() - min(failed_at))
FROM work_failures GROUP BY source ORDER BY source
"""


def _age(value: object) -> float | None:
    return None if value is None else max(float(str(value)), 0.0)


async def snapshot(session: AsyncSession) -> list[Queue]:
    """Every queue, now. Read-only; a handful of bounded statements."""
    rows: list[Queue] = []
    depth, age = (await session.execute(text(_SCREEN))).one()
    rows.append(Queue("integrity.screen", "", int(depth), _age(age)))
    for kind, due, oldest, running, dead in await session.execute(text(_JOBS)):
        rows.append(Queue("jobs", kind, int(due), _age(oldest)))
        rows.append(Queue("jobs.running", kind, int(running), None))
        rows.append(Queue("jobs.dead", kind, int(dead), None))
    for tenant_id, endpoint_id, depth, age in await session.execute(text(_DISPATCH)):
        rows.append(
            Queue("webhooks.dispatch", str(endpoint_id), int(depth), _age(age), str(tenant_id))
        )
    for tenant_id, endpoint_id, depth, age in await session.execute(text(_DELIVER)):
        rows.append(
            Queue("webhooks.deliver", str(endpoint_id), int(depth), _age(age), str(tenant_id))
        )
    rows.append(
        Queue("metrics.fold", "", int((await session.execute(text(_FOLD))).scalar_one()), None)
    )
    for source, count, age in await session.execute(text(_FAILURES)):
        rows.append(Queue("work_failures", source, int(count), _age(age)))
    return rows


class QueueCollector(Collector):
    """Exports the last snapshot; `/metrics` refreshes it (at most every `max_age` s)."""

    def __init__(self, max_age: float = 5.0) -> None:
        self.max_age = max_age
        self.rows: list[Queue] = []
        self.taken = 0.0

    def stale(self) -> bool:
        return time.monotonic() - self.taken >= self.max_age

    def update(self, rows: list[Queue]) -> None:
        self.rows, self.taken = rows, time.monotonic()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "feedback_queue_depth",
            f"Items waiting in a background queue (counted up to {COUNT_CAP}).",
            labels=["queue", "key"],
        )
        oldest = GaugeMetricFamily(
            "feedback_queue_oldest_seconds",
            "Age of the oldest item waiting in a background queue (0 when empty).",
            labels=["queue", "key"],
        )
        for row in self.rows:
            depth.add_metric([row.queue, row.key], row.depth)
            if row.queue not in ("jobs.running", "jobs.dead", "metrics.fold"):
                oldest.add_metric([row.queue, row.key], row.oldest_seconds or 0.0)
        yield depth
        yield oldest


collector = QueueCollector()
