"""`metrics.rebuild` in bounded transactions, against real, committed concurrent work.

The rebuild runs as the worker runs it (the task with a JobContext on its own session); its
checkpoints are where the tests interleave other connections' work: changes committed while
a step's transaction is still open (before the checkpoint commits it) and between steps.
Afterwards the rollup alone must equal a brute-force count of the raw rows in the tenant's
latest time zone, at every grain, in both tables.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedback_api.config import Settings
from feedback_api.metrics import repository
from feedback_api.metrics.repository import MetricRepository
from feedback_api.models import Job
from feedback_api.worker import TASKS
from feedback_api.worker_context import JobContext
from tests.fixtures.live import Live
from tests.fixtures.metrics import make_items

Sessions = async_sessionmaker[AsyncSession]
Hook = Callable[[AsyncSession], Awaitable[None]]
Key = tuple[Any, ...]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # raising=False: the attribute is what these tests are about, and must not make them
    # error out (rather than fail) on code that has no chunks.
    monkeypatch.setattr(repository, "REBUILD_CHUNK", 40, raising=False)


async def post_items(live: Live, items: list[dict[str, Any]]) -> list[UUID]:
    ids: list[UUID] = []
    for first in range(0, len(items), 500):
        response = await live.client.post(
            "/v1/responses/batch", json={"items": items[first : first + 500]}, headers=live.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["failed"] == 0, response.text
        ids.extend(UUID(r["id"]) for r in response.json()["items"])
    return ids


async def fold_all(sessions: Sessions) -> None:
    async with sessions() as session:
        while await MetricRepository(session).fold():
            await session.commit()
        await session.commit()


async def set_timezone(live: Live, zone: str) -> None:
    response = await live.client.patch("/v1/tenant", json={"timezone": zone}, headers=live.headers)
    assert response.status_code == 200, response.text


async def run_rebuild(live: Live, settings: Settings, hook: Hook | None = None) -> None:
    """The job as the worker runs it: its own session, `hook` as the checkpoint (it must
    commit), the last step committed with the job."""

    async def commit(session: AsyncSession) -> None:
        await session.commit()

    job = Job(kind="metrics.rebuild", tenant_id=live.tenant_id, payload={})
    async with live.sessionmaker() as session:
        ctx = JobContext(job=job, session=session, settings=settings, checkpoint_fn=hook or commit)
        await TASKS["metrics.rebuild"](ctx)
        await session.commit()


def _brute(rows: list[Any], zone: str) -> tuple[Counter[Key], Counter[Key]]:
    """(rollup, totals) histograms per score as the rollup should hold them."""
    tz = ZoneInfo(zone)
    rollup: Counter[Key] = Counter()
    totals: Counter[Key] = Counter()
    for at, kind, smin, smax, channel, touchpoint, survey, verified, excluded, score in rows:
        day: date = at.astimezone(tz).date()
        starts = {
            "day": day,
            "week": day - timedelta(days=day.weekday()),
            "month": day.replace(day=1),
        }
        for grain, start in starts.items():
            dims = (kind, smin, smax, channel, touchpoint, survey, verified, excluded, score)
            rollup[(grain, start, *dims)] += 1
            totals[(grain, start, kind, smin, smax, verified, excluded, score)] += 1
    return rollup, totals


async def raw_rows(session: AsyncSession, tenant_id: UUID) -> list[Any]:
    return list(
        (
            await session.execute(
                text(
                    "SELECT occurred_at, kind, scale_min, scale_max, channel, "
                    "coalesce(touchpoint, ''), coalesce(survey, ''), verified, excluded, score "
                    "FROM responses WHERE tenant_id = :t AND deleted_at IS NULL"
                ),
                {"t": tenant_id},
            )
        ).all()
    )


async def rolled(session: AsyncSession, tenant_id: UUID) -> tuple[Counter[Key], Counter[Key]]:
    result: list[Counter[Key]] = []
    for table, dims in (
        ("metric_rollups", "channel, touchpoint, survey, "),
        ("metric_totals", ""),
    ):
        rows = (
            await session.execute(
                text(
                    f"SELECT grain, period_start, kind, scale_min, scale_max, {dims}verified, "
                    f"excluded, scale_min + h.i - 1, h.n FROM {table} r, "
                    "unnest(r.counts) WITH ORDINALITY AS h(n, i) "
                    "WHERE r.tenant_id = :t AND h.n <> 0"
                ),
                {"t": tenant_id},
            )
        ).all()
        result.append(Counter({tuple(row[:-1]): row[-1] for row in rows}))
    return result[0], result[1]


async def assert_rollup_exact(live: Live, zone: str) -> None:
    await fold_all(live.sessionmaker)
    async with live.sessionmaker() as session:
        state = (
            await session.execute(
                text(
                    "SELECT s.timezone, s.rebuild_timezone, t.timezone FROM metric_rollup_state s "
                    "JOIN tenants t ON t.id = s.tenant_id WHERE s.tenant_id = :t"
                ),
                {"t": live.tenant_id},
            )
        ).one()
        assert tuple(state) == (zone, None, zone)
        pending = await session.scalar(
            text("SELECT count(*) FROM metric_deltas WHERE tenant_id = :t"), {"t": live.tenant_id}
        )
        assert pending == 0
        want_rollup, want_totals = _brute(await raw_rows(session, live.tenant_id), zone)
        got_rollup, got_totals = await rolled(session, live.tenant_id)
    assert sum(want_rollup.values()) > 0
    assert got_rollup == want_rollup
    assert got_totals == want_totals


async def assert_reads_exact(live: Live) -> None:
    """What the API and the BI view answer equals the raw rows right now, in the tenant's
    time zone (the API) or the zone the rollup is or is being built in (the view)."""
    async with live.sessionmaker() as session:
        zone, view_zone = (
            await session.execute(
                text(
                    "SELECT t.timezone, coalesce(s.rebuild_timezone, s.timezone) FROM tenants t "
                    "JOIN metric_rollup_state s ON s.tenant_id = t.id WHERE t.id = :t"
                ),
                {"t": live.tenant_id},
            )
        ).one()
        raw = await raw_rows(session, live.tenant_id)
        view = (
            await session.execute(
                text(
                    "SELECT day, kind, scale_min, scale_max, channel, coalesce(touchpoint, ''), "
                    "coalesce(survey, ''), verified, excluded, score, responses "
                    "FROM bi_daily_scores WHERE tenant_id = :t"
                ),
                {"t": live.tenant_id},
            )
        ).all()
    tz = ZoneInfo(zone)
    lo, hi = datetime(2026, 4, 1, tzinfo=tz), datetime(2026, 10, 1, tzinfo=tz)
    expected = [0] * 11
    for at, kind, *_, excluded, score in raw:
        if kind == "nps" and not excluded and lo <= at < hi:
            expected[score] += 1
    response = await live.client.get(
        "/v1/metrics/nps",
        params={"from": "2026-04-01", "to": "2026-10-01"},
        headers=live.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["distribution"] == expected
    days = Counter({k[1:]: n for k, n in _brute(raw, view_zone)[0].items() if k[0] == "day"})
    assert Counter({tuple(row[:-1]): row[-1] for row in view}) == days


@dataclass
class Churn:
    """Changes to the tenant's responses from other connections, each committed: inserts
    (backdated over the whole span, so into ranges recounted and not yet recounted),
    exclusions and their reversal, soft and hard deletions, and moves to another date."""

    live: Live
    rng: random.Random
    ids: list[UUID] = field(default_factory=list)
    changes: int = 0

    async def __call__(self) -> None:
        self.ids.extend(await post_items(self.live, make_items(self.rng, 3)))
        picks = self.rng.sample(self.ids, min(5, len(self.ids)))
        statements = [
            "UPDATE responses SET excluded = NOT excluded WHERE tenant_id = :t AND id = :id",
            "UPDATE responses SET excluded = NOT excluded WHERE tenant_id = :t AND id = :id",
            "UPDATE responses SET deleted_at = now() WHERE tenant_id = :t AND id = :id",
            "DELETE FROM responses WHERE tenant_id = :t AND id = :id",
            "UPDATE responses SET occurred_at = occurred_at "
            f"{self.rng.choice('+-')} interval '{self.rng.randint(1, 60)} days' "
            "WHERE tenant_id = :t AND id = :id",
        ]
        for statement, response_id in zip(statements, picks, strict=False):
            async with self.live.sessionmaker() as session:
                await session.execute(
                    text(statement), {"t": self.live.tenant_id, "id": response_id}
                )
                await session.commit()
        self.changes += 1


async def seeded(live: Live, count: int = 400, seed: int = 7) -> list[UUID]:
    ids = await post_items(live, make_items(random.Random(seed), count))
    await fold_all(live.sessionmaker)
    return ids


async def shows_up(live: Live, response_id: str) -> bool:
    """Whether the response's event would show through GET /v1/events within 60 s: once
    every transaction of this database that started before it has ended
    (`events.repository.HORIZON`, tested through the API in tests/events/test_polling.py).
    A rebuild in one transaction would hold the event back until the rebuild's end, which
    never comes while this waits inside the rebuild."""
    older_here = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL "
        "AND (backend_xid::text)::bigint <= (:xid % 4294967296)"
    )
    event_xid = text("SELECT xid FROM events WHERE type = 'response.created' AND data->>'id' = :id")
    for _ in range(1200):
        async with live.sessionmaker() as session:
            xid = await session.scalar(event_xid, {"id": response_id})
            if xid is not None and await session.scalar(older_here, {"xid": xid}) == 0:
                return True
        await asyncio.sleep(0.05)
    return False


async def test_the_rebuild_commits_step_by_step_so_events_flow_meanwhile(
    live: Live, other_live: Live, settings: Settings
) -> None:
    """An event recorded while the rebuild runs can be read through GET /v1/events before
    the rebuild ends (a long transaction would hold it back until its end)."""
    await seeded(live)
    await set_timezone(live, "Asia/Tokyo")
    seen: list[bool] = []

    async def checkpoint(session: AsyncSession) -> None:
        created = await other_live.client.post(
            "/v1/responses",
            json={"kind": "nps", "score": 9, "channel": "crm"},
            headers=other_live.headers,
        )
        assert created.status_code == 201, created.text
        await session.commit()
        seen.append(await shows_up(other_live, created.json()["id"]))

    await run_rebuild(live, settings, checkpoint)
    # 400 responses in chunks of 40: a start, emptying the old rollup, ten ranges
    assert len(seen) >= 10
    assert all(seen)
    await assert_rollup_exact(live, "Asia/Tokyo")


async def test_the_rollup_is_exact_after_concurrent_changes_folds_and_reads(
    live: Live, settings: Settings
) -> None:
    ids = await seeded(live, 600)
    await set_timezone(live, "Asia/Tokyo")
    churn = Churn(live, random.Random(3), ids)
    steps = 0

    async def checkpoint(session: AsyncSession) -> None:
        nonlocal steps
        steps += 1
        await churn()  # committed while this step's transaction is still open
        await session.commit()
        await churn()  # between steps
        async with live.sessionmaker() as other:  # the fold ticker, meanwhile
            await MetricRepository(other).fold(limit=random.Random(steps).randint(1, 30))
            await other.commit()
        await assert_reads_exact(live)

    await run_rebuild(live, settings, checkpoint)
    assert steps >= 15
    assert churn.changes == 2 * steps
    await assert_rollup_exact(live, "Asia/Tokyo")
    await assert_reads_exact(live)


async def test_folding_goes_on_for_other_tenants_during_a_step(
    live: Live, other_live: Live, settings: Settings
) -> None:
    """While a step's transaction is open, the fold moves another tenant's new responses
    into its rollup (the step locks only its own tenant's state)."""
    await seeded(live)
    await fold_all(other_live.sessionmaker)
    await set_timezone(live, "Asia/Tokyo")
    folded_during_steps: list[bool] = []
    posted = 0

    async def checkpoint(session: AsyncSession) -> None:
        nonlocal posted
        # This step's own view of the state: a counting step (the start step holds the
        # fold lock, for milliseconds in production).
        counting = await session.scalar(
            text("SELECT rebuilt_from IS NOT NULL FROM metric_rollup_state WHERE tenant_id = :t"),
            {"t": live.tenant_id},
        )
        created = await other_live.client.post(
            "/v1/responses",
            json={"kind": "csat", "score": 4, "channel": "crm"},
            headers=other_live.headers,
        )
        assert created.status_code == 201
        posted += 1
        async with other_live.sessionmaker() as other:
            async with asyncio.timeout(10):
                await MetricRepository(other).fold()
            await other.commit()
            pending = await other.scalar(
                text("SELECT count(*) FROM metric_deltas WHERE tenant_id = :t"),
                {"t": other_live.tenant_id},
            )
            in_rollup = await other.scalar(
                text(
                    "SELECT sum(counts[4]) FROM metric_totals WHERE tenant_id = :t "
                    "AND grain = 'month' AND kind = 'csat'"
                ),
                {"t": other_live.tenant_id},
            )
        if counting:
            folded_during_steps.append(pending == 0 and in_rollup == posted)
        await session.commit()

    await run_rebuild(live, settings, checkpoint)
    assert len(folded_during_steps) >= 10
    assert all(folded_during_steps)
    await assert_rollup_exact(live, "Asia/Tokyo")


@pytest.mark.parametrize(
    ("second_job", "second_zone"),
    [
        ("inside_the_first", "America/New_York"),
        ("after_the_first", "America/New_York"),
        # back to the zone the old rollup was in, which the first job had half emptied
        ("after_the_first", "UTC"),
    ],
)
async def test_a_second_time_zone_change_mid_rebuild_ends_in_the_latest_zone(
    live: Live, settings: Settings, second_job: str, second_zone: str
) -> None:
    ids = await seeded(live)
    await set_timezone(live, "Asia/Tokyo")
    churn = Churn(live, random.Random(5), ids)
    steps = 0

    async def checkpoint(session: AsyncSession) -> None:
        nonlocal steps
        steps += 1
        await churn()
        await session.commit()
        if steps == 4:  # some of the Tokyo ranges are recounted
            await set_timezone(live, second_zone)
        if steps == 6 and second_job == "inside_the_first":
            await run_rebuild(live, settings)  # the job the second change queued
        await fold_all(live.sessionmaker)
        await assert_reads_exact(live)

    await run_rebuild(live, settings, checkpoint)
    assert steps >= 6
    if second_job == "after_the_first":
        await run_rebuild(live, settings)
    await assert_rollup_exact(live, second_zone)
    await assert_reads_exact(live)


@pytest.mark.parametrize("commit_first", [False, True])
async def test_a_crashed_rebuild_runs_again_from_the_start(
    live: Live, settings: Settings, commit_first: bool
) -> None:
    ids = await seeded(live)
    await set_timezone(live, "Asia/Tokyo")
    churn = Churn(live, random.Random(9), ids)
    steps = 0

    async def crashing(session: AsyncSession) -> None:
        nonlocal steps
        steps += 1
        await churn()
        if steps == 5:
            if commit_first:
                await session.commit()
            raise RuntimeError("the worker died")
        await session.commit()

    with pytest.raises(RuntimeError):
        await run_rebuild(live, settings, crashing)
    await churn()
    await fold_all(live.sessionmaker)
    await assert_reads_exact(live)
    await run_rebuild(live, settings)  # the job again, after its lease ran out
    await assert_rollup_exact(live, "Asia/Tokyo")


async def test_rebuilds_writers_and_folds_all_at_once(live: Live, settings: Settings) -> None:
    """No interleaving chosen by the test: two rebuild jobs, writers, a folder and a time
    zone change run concurrently on their own connections."""
    ids = await seeded(live, 400, seed=13)
    await set_timezone(live, "Asia/Tokyo")
    stop = asyncio.Event()

    async def pause(session: AsyncSession) -> None:
        await session.commit()
        await asyncio.sleep(0.001)

    async def writer(seed: int) -> None:
        # each writer changes only what it inserted: writers must not deadlock each other
        churn = Churn(live, random.Random(seed))
        for _ in range(8):
            await churn()
            await asyncio.sleep(0.002)

    async def folder() -> None:
        while not stop.is_set():
            async with live.sessionmaker() as session:
                await MetricRepository(session).fold(limit=23)
                await session.commit()
            await asyncio.sleep(0.003)

    async def change_zone() -> None:
        await asyncio.sleep(0.3)
        await set_timezone(live, "Europe/Berlin")
        await run_rebuild(live, settings, pause)

    folding = asyncio.create_task(folder())
    try:
        async with asyncio.timeout(120):
            await asyncio.gather(
                run_rebuild(live, settings, pause),
                run_rebuild(live, settings, pause),
                change_zone(),
                *(writer(n) for n in range(3)),
            )
    finally:
        stop.set()
        await folding
    assert len(ids) == 400
    await assert_rollup_exact(live, "Europe/Berlin")
    await assert_reads_exact(live)
