"""`feedback-api import delighted` as a real process on a realistic export of a few thousand
rows, run twice (nothing twice), then on a newer export (tags changed: updated; a score
changed: refused), with the numbers checked through both APIs."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compat.test_delighted_transport import basic
from tests.fixtures.auth import bearer
from tests.fixtures.database import execute_sql
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture

TENANT = "Delighted history"
HEADER = [
    "Response ID",
    "Person ID",
    "Name",
    "Email",
    "Score",
    "Comment",
    "Created At (UTC)",
    "Updated At (UTC)",
    "Tags",
    "Permalink",
    "Notes",
    "Property: Plan",
    "Purchase Experience",
    "Delighted Source",
]
COMMENTS = [
    "",
    "Great service, thanks!",
    'The fitting room light was too dark, "really" dark',
    "配送很快，包装也很好 👍",
    "Line one\nline two, with a comma",
    "Waited 40 minutes; call me on +49 151 12345678",
    "Ça va — pas mal",
]


def _export(rows: int, people: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """A responses export and a people export, as Delighted-shaped as we can make them,
    with the rows a real export has that cannot go in."""
    rng = random.Random(seed)
    start = datetime(2024, 12, 1, tzinfo=UTC)
    persons = [
        [str(9000 + i), f"Person {i}", f"p{i}@example.com", rng.choice(["gold", "silver", ""])]
        for i in range(people)
    ]
    answers = []
    for i in range(rows):
        pid, name, email, plan = rng.choice(persons)
        created = start + timedelta(minutes=rng.randrange(0, 700 * 24 * 60))
        answers.append(
            [
                str(100_000 + i),
                pid,
                name,
                email if rng.random() < 0.7 else "",  # the people file names the others
                str(rng.choice([0, 3, 5, 6, 7, 8, 8, 9, 9, 10, 10, 10])),
                rng.choice(COMMENTS),
                created.strftime("%Y-%m-%d %H:%M:%S"),
                created.strftime("%Y-%m-%d %H:%M:%S"),
                rng.choice(["", "Shipping", "shipping, Price"]),
                f"https://delighted.com/r/{i}",
                "",
                plan,
                rng.choice(["Online", "Retail Store"]),
                "email",
            ]
        )
    bad = [
        ["", "9001", "", "", "7", "no id", "2025-01-01 10:00:00", "", "", "", "", "", "", ""],
        ["200001", "9001", "", "", "11", "too high", "2025-01-01", "", "", "", "", "", "", ""],
        ["200002", "9001", "", "", "ten", "", "2025-01-01", "", "", "", "", "", "", ""],
        ["200003", "9001", "", "", "8", "", "yesterday", "", "", "", "", "", "", ""],
        ["200004", "9001", "", "", "8", "nul\x00here", "2025-02-01", "", "", "", "", "", "", ""],
        ["200005", "9001", "", "", "8", "", "9999-12-31 00:00:00", "", "", "", "", "", "", ""],
        [
            "200006",
            "",
            "",
            "gone@example.com",
            "2",
            "erased",
            "2025-03-01",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
        ["100000", "9001", "", "", "9", "same id again", "2025-01-01", "", "", "", "", "", "", ""],
    ]
    people_rows = [[pid, name, email, "", plan] for pid, name, email, plan in persons]
    return answers + bad, people_rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as f:  # with a BOM, as Excel does
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def history(processes: Processes, database_url: str) -> Iterator[dict[str, str]]:
    yield processes.created_tenant(TENANT)
    execute_sql(database_url, f"DELETE FROM tenants WHERE name = '{TENANT}'")


def _import(processes: Processes, tenant: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "feedback_api", "import", "delighted", "--tenant", tenant, *args],
        env=processes.env,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def test_a_delighted_history_comes_in_once_and_its_numbers_match(
    processes: Processes, history: dict[str, str], tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{processes.serve()}"
    compat = f"{base}/compat/delighted/v1"
    delighted_auth = basic(history["key"], colon=True)
    # Someone erased here before the move: their history must not come back.
    gone = httpx.post(
        f"{compat}/people",
        json={"email": "gone@example.com", "send": False},
        headers=delighted_auth,
    )
    assert gone.status_code == 200
    assert httpx.delete(f"{compat}/people/email:gone@example.com", headers=delighted_auth).json()

    answers, people = _export(rows=3000, people=800, seed=20)
    responses = _write(tmp_path / "responses.csv", HEADER, answers)
    people_file = _write(
        tmp_path / "people.csv", ["Person ID", "Name", "Email", "Phone Number", "Plan"], people
    )
    args = ("--responses", str(responses), "--people", str(people_file))
    first = _import(processes, history["id"], *args, "--map", "Delighted Source=skip")
    assert (first["imported"], first["updated"], first["skipped"]) == (3000, 0, 0)
    assert first["rejected"] == 8
    reasons = " | ".join(first["reasons"])
    for expected in ("no response id", "score", "not a date", "erased", "U+0000"):
        assert expected in reasons, reasons
    assert first["people"] == len({r[1] for r in answers[:3000]} | {"9001"})

    again = _import(processes, history["id"], *args, "--map", "Delighted Source=skip")
    assert (again["imported"], again["updated"], again["skipped"]) == (0, 0, 3000)
    assert again["rejected"] == 8

    # A newer export: tags changed on ten rows, one score changed (refused).
    scores = [int(r[4]) for r in answers[:3000]]  # as stored
    for row in answers[:10]:
        row[8] = "refund"
    answers[10][4] = "0" if answers[10][4] != "0" else "10"
    newer = _write(tmp_path / "newer.csv", HEADER, answers)
    third = _import(
        processes,
        history["id"],
        *("--responses", str(newer), "--people", str(people_file)),
        *("--map", "Delighted Source=skip"),
    )
    assert (third["imported"], third["updated"]) == (0, 10)
    assert third["skipped"] == 2989
    assert "the score or comment differs from the stored one" in third["reasons"]

    # The numbers: Delighted's metrics endpoint and ours agree on the imported history.
    window = {"since": "1700000000", "until": str(int(datetime.now(UTC).timestamp()))}
    theirs = httpx.get(f"{compat}/metrics", params=window, headers=delighted_auth).json()
    ours = httpx.get(
        f"{base}/v1/metrics/nps",
        params={
            "from": datetime.fromtimestamp(int(window["since"]), UTC).isoformat(),
            "to": datetime.now(UTC).isoformat(),
        },
        headers=bearer(history["key"]),
    ).json()
    assert theirs["response_count"] == ours["n"] == 3000
    assert theirs["promoter_count"] == sum(score >= 9 for score in scores)
    assert theirs["detractor_count"] == sum(score <= 6 for score in scores)
    assert abs(ours["value"] - theirs["nps"]) <= 0.5
    one = httpx.get(
        f"{compat}/survey_responses",
        params={"per_page": 1, "person_email": "p1@example.com", "expand[]": "person"},
        headers=delighted_auth,
    ).json()
    assert one[0]["person"]["name"] == "Person 1"
    tagged = httpx.get(
        f"{base}/v1/responses",
        params={"tag": "refund", "limit": 50},
        headers=bearer(history["key"]),
    ).json()["items"]
    assert len(tagged) == 10
    assert {r["channel"] for r in tagged} == {"import"}
    assert all(r["external_id"].startswith("delighted:") for r in tagged)
