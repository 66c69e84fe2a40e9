"""Issue 20's done-when: a program written for Delighted runs unchanged against a live
server after setting the base URL, and its numbers match our own metrics endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.fixtures.auth import bearer
from tests.fixtures.database import execute_sql
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture

PROGRAM = Path(__file__).parent / "programs" / "crm_sync.py"
TENANT = "Moved CRM"


@pytest.fixture
def key(processes: Processes, database_url: str) -> Iterator[str]:
    yield processes.tenant(TENANT)
    execute_sql(database_url, f"DELETE FROM tenants WHERE name = '{TENANT}'")


def test_a_delighted_program_runs_unchanged_and_its_numbers_match(
    processes: Processes, key: str
) -> None:
    base = f"http://127.0.0.1:{processes.serve()}"
    ran = subprocess.run(
        [sys.executable, str(PROGRAM)],
        env={
            **processes.env,
            "DELIGHTED_API_KEY": key,
            "DELIGHTED_API_BASE_URL": f"{base}/compat/delighted/v1/",
        },
        capture_output=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr.decode()[-3000:]
    result = json.loads(ran.stdout)
    assert result["people"] == 5
    assert result["followed_up"] == 2  # the 6 and the 3
    assert result["unsubscribed"] == ["dora@example.com"]
    assert (result["response_count"], result["promoter_count"], result["detractor_count"]) == (
        5,
        2,
        2,
    )
    assert result["nps"] == 0  # (2 - 2) / 5

    now = datetime.now(UTC)
    ours = httpx.get(
        f"{base}/v1/metrics/nps",
        params={"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()},
        headers=bearer(key),
    ).json()
    assert ours["n"] == result["response_count"]
    assert round(ours["value"]) == result["nps"]
    tagged = httpx.get(
        f"{base}/v1/responses", params={"tag": "follow-up"}, headers=bearer(key)
    ).json()["items"]
    assert sorted(r["score"] for r in tagged) == [3, 6]
    invitations = httpx.get(f"{base}/v1/invitations", headers=bearer(key)).json()["items"]
    assert len(invitations) == 5  # one survey scheduled per person, under our contact rules
    assert {i["status"] for i in invitations if i["customer"] == "dora@example.com"} == {
        "cancelled"
    }
