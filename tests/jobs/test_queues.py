"""Stuck means visible: the queue gauges on /metrics and `feedback-api status` move when
background work stops, whichever process runs the worker (here: none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import text, update

from feedback_api.health import queues
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.time import utcnow
from feedback_api.models import Response
from tests.fixtures.live import Live


def _gauge(body: str, name: str, queue: str, key: str = "") -> float | None:
    prefix = f'{name}{{key="{key}",queue="{queue}"}} '
    for line in body.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


def _status(database_url: str) -> tuple[int, dict[tuple[str, str], dict[str, object]]]:
    done = subprocess.run(
        [sys.executable, "-m", "feedback_api", "status", "--json"],
        env={**os.environ, "FEEDBACK_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, {(r["queue"], r["key"]): r for r in rows}


async def test_the_screen_and_job_gauges_show_a_stuck_queue(live: Live, database_url: str) -> None:
    for score in (3, 9, 10):
        created = await live.client.post(
            "/v1/responses",
            json={"kind": "nps", "score": score, "channel": "crm"},
            headers=live.headers,
        )
        assert created.status_code == 201
    async with live.sessionmaker() as session:
        await job_service.enqueue(session, "test.never-run", tenant_id=live.tenant_id)
        await session.commit()

    queues.collector.taken = 0  # no cached snapshot
    body = (await live.client.get("/metrics")).text
    depth = _gauge(body, "feedback_queue_depth", "integrity.screen")
    assert depth is not None
    assert depth >= 3
    assert (_gauge(body, "feedback_queue_depth", "jobs", "test.never-run") or 0) >= 1
    code, rows = _status(database_url)
    assert rows[("integrity.screen", "")]["state"] == "ok"  # new, not yet late
    assert code == 0

    # No worker for 20 minutes: the oldest unscreened response and the job are that old.
    async with live.sessionmaker() as session:
        await session.execute(
            update(Response)
            .where(Response.tenant_id == live.tenant_id)
            .values(received_at=utcnow() - timedelta(minutes=20))
        )
        await session.execute(
            text(
                "UPDATE jobs SET run_at = now() - interval '20 minutes' "
                "WHERE kind = 'test.never-run'"
            )
        )
        await session.commit()
    try:
        queues.collector.taken = 0
        body = (await live.client.get("/metrics")).text
        oldest = _gauge(body, "feedback_queue_oldest_seconds", "integrity.screen")
        assert oldest is not None
        assert oldest >= 1190
        job_age = _gauge(body, "feedback_queue_oldest_seconds", "jobs", "test.never-run")
        assert job_age is not None
        assert job_age >= 1190
        code, rows = _status(database_url)
        assert rows[("integrity.screen", "")]["state"] == "stuck"
        assert rows[("jobs", "test.never-run")]["state"] == "stuck"
        assert code == 1  # usable as a check
    finally:
        async with live.sessionmaker() as session:
            await session.execute(text("DELETE FROM jobs WHERE kind = 'test.never-run'"))
            await session.commit()


async def test_dead_jobs_and_set_aside_items_are_counted(live: Live, database_url: str) -> None:
    async with live.sessionmaker() as session:
        await session.execute(
            text(
                "INSERT INTO jobs (id, kind, status, attempts, last_error) "
                "VALUES (gen_random_uuid(), 'test.dead', 'dead', 3, 'boom')"
            )
        )
        await session.execute(
            text(
                "INSERT INTO work_failures (tenant_id, id, source, subject_id, error_type, error) "
                "VALUES (:t, gen_random_uuid(), 'integrity.screen', 'r-1', 'ValueError', 'bad')"
            ),
            {"t": live.tenant_id},
        )
        await session.commit()
    try:
        queues.collector.taken = 0
        body = (await live.client.get("/metrics")).text
        assert _gauge(body, "feedback_queue_depth", "jobs.dead", "test.dead") == 1
        assert (_gauge(body, "feedback_queue_depth", "work_failures", "integrity.screen") or 0) >= 1
        code, rows = _status(database_url)
        assert rows[("jobs.dead", "test.dead")]["state"] == "warn"
        assert rows[("work_failures", "integrity.screen")]["state"] == "warn"
    finally:
        async with live.sessionmaker() as session:
            await session.execute(text("DELETE FROM jobs WHERE kind = 'test.dead'"))
            await session.commit()


async def test_an_endpoints_undispatched_and_undelivered_events_are_gauged(live: Live) -> None:
    endpoint = await live.client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "event_types": ["response.*"]},
        headers=live.headers,
    )
    assert endpoint.status_code == 201
    key = endpoint.json()["id"]
    created = await live.client.post(
        "/v1/responses", json={"kind": "nps", "score": 7, "channel": "crm"}, headers=live.headers
    )
    assert created.status_code == 201
    queues.collector.taken = 0
    body = (await live.client.get("/metrics")).text
    assert _gauge(body, "feedback_queue_depth", "webhooks.dispatch", key) == 1
    assert _gauge(body, "feedback_queue_depth", "webhooks.deliver", key) is None

    test = await live.client.post(f"/v1/webhook-endpoints/{key}/test", headers=live.headers)
    assert test.status_code in (200, 201, 202)
    queues.collector.taken = 0
    body = (await live.client.get("/metrics")).text
    assert _gauge(body, "feedback_queue_depth", "webhooks.deliver", key) == 1
    age = _gauge(body, "feedback_queue_oldest_seconds", "webhooks.deliver", key)
    assert age is not None
    assert age >= 0
