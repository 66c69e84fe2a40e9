"""Background work under real conditions, with real processes: the API (`feedback-api
serve`) and a worker (`feedback-api worker`) on this test's database, driven over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures.auth import bearer
from tests.fixtures.database import execute_sql, fetch_value
from tests.fixtures.mixed_import import MixedImport, generate
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture

POISON = "zz-poison-zz"
# A real failure inside the screen's transaction, in a real worker process: storing the
# text bands of a comment with the marker raises, as a bug or bad data would.
INJECT_POISON = f"""
CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM responses r WHERE r.tenant_id = NEW.tenant_id
               AND r.id = NEW.response_id AND r.comment ILIKE '%{POISON}%') THEN
        RAISE EXCEPTION 'injected poison in %', NEW.response_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_poison BEFORE INSERT ON integrity_text_bands
    FOR EACH ROW EXECUTE FUNCTION test_poison();
"""
REMOVE_POISON = "DROP TRIGGER test_poison ON integrity_text_bands; DROP FUNCTION test_poison();"


@pytest.fixture
def poison(database_url: str) -> Iterator[Callable[[], None]]:
    execute_sql(database_url, INJECT_POISON)
    removed = False

    def remove() -> None:
        nonlocal removed
        if not removed:
            execute_sql(database_url, REMOVE_POISON)
            removed = True

    yield remove
    remove()


def _tenant(processes: Processes, name: str) -> str:
    return processes.tenant(name)


def _serve(processes: Processes) -> str:
    return f"http://127.0.0.1:{processes.serve()}"


def _import(base: str, headers: dict[str, str], data: MixedImport) -> None:
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for i in range(0, len(data.imported), 1000):
            answer = client.post("/v1/responses/batch", json={"items": data.imported[i : i + 1000]})
            assert answer.status_code == 200, answer.text
            assert answer.json()["failed"] == 0, answer.text
        app_key = client.post("/v1/api-keys", json={"name": "app", "publishable": True})
        public = bearer(app_key.json()["secret"])
        # The bot spreads its burst over addresses to stay under the per-client rate limit
        # (30 a minute); the detectors behind the limit must still catch it. The API trusts
        # X-Forwarded-For from 127.0.0.1, as from a proxy on the same host.
        for i, item in enumerate(data.public):
            sent_from = {**public, "X-Forwarded-For": f"203.0.113.{i // 25 + 1}"}
            assert client.post("/v1/responses", json=item, headers=sent_from).status_code == 201


def _nps(client: httpx.Client, **params: Any) -> float:
    today = datetime.now(UTC).date()
    period = {"from": str(today - timedelta(days=40)), "to": str(today + timedelta(days=2))}
    answer = client.get("/v1/metrics/nps", params={**period, **params})
    assert answer.status_code == 200, answer.text
    assert answer.json()["value"] is not None, answer.text
    return float(answer.json()["value"])


def test_a_mixed_import_is_screened_end_to_end(
    processes: Processes, poison: Callable[[], None]
) -> None:
    """The import that once stopped the screen for every tenant, with two poisoned items:
    flags come within 30 s, the numbers move toward the honest data, and the poisoned
    responses are set aside (visible, retryable) while the rest of their batch is screened."""
    headers = bearer(_tenant(processes, "Mixed import"))
    base = _serve(processes)
    processes.start("worker", "worker")
    processes.wait_for("worker", "worker_started")
    data = generate(datetime.now(UTC), honest=1200)
    bad = {"kind": "nps", "score": 8, "channel": "email", "touchpoint": "delivery"}
    comment = f"the parcel came late and the box was crushed {POISON}"
    data.imported[100:100] = [
        {**bad, "comment": comment, "external_id": "poison-1"},
        {**bad, "comment": comment.upper(), "external_id": "poison-2"},
    ]
    _import(base, headers, data)

    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        deadline = time.monotonic() + 30
        while True:
            flags = client.get("/v1/integrity/flags", params={"limit": 100}).json()["items"]
            types = {f["type"] for f in flags}
            if {"duplicate", "burst", "incentive"} <= types:
                break
            assert time.monotonic() < deadline, (types, processes.log("worker")[-3000:])
            time.sleep(0.5)
        counted, everything = _nps(client), _nps(client, integrity="all")
    honest = MixedImport.nps(data.honest_scores)
    assert abs(everything - MixedImport.nps(data.all_scores)) < 0.5
    # what the metrics count moved from "everything" toward the honest data
    assert abs(counted - honest) < abs(everything - honest) - 3
    assert "ticker_failed" not in processes.log("worker")

    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        listed = client.get("/v1/responses", params={"limit": 200, "touchpoint": "delivery"})
        poisoned = {
            r["id"] for r in listed.json()["items"] if POISON in (r["comment"] or "").lower()
        }
        assert len(poisoned) == 2
        failures = client.get("/v1/integrity/screen-failures").json()["items"]
        assert {f["response_id"] for f in failures} == poisoned
        assert all("injected poison" in f["error"] for f in failures)
        log = processes.log("worker")
        assert "work_item_set_aside" in log
        assert "Traceback" in log  # the operator gets the whole story

        poison()  # the cause is fixed: screen them again
        retried = client.post("/v1/integrity/screen-failures/retry", json={})
        assert retried.json() == {"queued": 2}
        deadline = time.monotonic() + 20
        while client.get("/v1/integrity/screen-failures").json()["items"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)

    # nothing else of the batches the poisoned items were in is waiting
    def unscreened() -> int:
        count = fetch_value(
            processes.env["FEEDBACK_DATABASE_URL"],
            "SELECT count(*) FROM responses WHERE screened_at IS NULL",
        )
        return int(str(count))

    deadline = time.monotonic() + 20
    while unscreened():
        assert time.monotonic() < deadline
        time.sleep(0.2)
