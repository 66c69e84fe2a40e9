"""`feedback-api import delighted` and Delighted-shaped webhooks as an attack found them:
files that are not UTF-8 or hold a field too large, NUL in a person, erased people coming
back by another ref or address, an unreadable event holding back the others' deliveries."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compat.test_delighted_transport import basic
from tests.fixtures.auth import bearer
from tests.fixtures.database import execute_sql
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture

HEADER = "Response ID,Score,Comment,Created At,Email,Name,Phone Number\r\n"


@pytest.fixture
def tenant(processes: Processes, database_url: str) -> Iterator[dict[str, Any]]:
    name = f"import attack {uuid.uuid4().hex[:8]}"
    yield processes.created_tenant(name)
    execute_sql(database_url, f"DELETE FROM tenants WHERE name = '{name}'")


def _run(processes: Processes, tenant_id: str, path: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "feedback_api",
            "import",
            "delighted",
            "--tenant",
            tenant_id,
            "--responses",
            str(path),
        ],
        env=processes.env,
        capture_output=True,
        timeout=300,
    )


def _no_traceback(done: subprocess.CompletedProcess[bytes]) -> None:
    err = done.stderr.decode(errors="replace")
    assert "Traceback" not in err, err[-1500:]


@pytest.mark.parametrize(
    "content",
    [
        HEADER.encode() + b"r1,5,caf\xe9,2024-01-01,,,\r\n",  # Latin-1 byte
        HEADER.encode() + "r1,5,x\ud800y,2024-01-01,,,\r\n".encode("utf-8", "surrogatepass"),
    ],
    ids=["latin1-byte", "lone-surrogate"],
)
def test_a_file_that_is_not_utf8_gives_an_error_not_a_traceback(
    processes: Processes, tenant: dict[str, Any], tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    done = _run(processes, tenant["id"], path)
    _no_traceback(done)
    assert done.returncode == 1
    assert done.stderr.decode().startswith("error:")


def test_a_field_over_16_mib_gives_an_error_not_a_traceback(
    processes: Processes, tenant: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(HEADER + 'r1,5,"' + "x" * 17_000_000 + '",2024-01-01,,,\r\n')
    done = _run(processes, tenant["id"], path)
    _no_traceback(done)
    assert done.returncode == 1


@pytest.mark.parametrize(
    "row",
    ["bad,5,,2024-01-01,nul@example.com,Al\x00ice,", "bad,5,,2024-01-01,a\x00b@example.com,,"],
    ids=["nul-in-name", "nul-in-email"],
)
def test_a_nul_in_a_person_is_one_rejected_row(
    processes: Processes, tenant: dict[str, Any], tmp_path: Path, row: str
) -> None:
    good = [f"g{i},9,fine,2024-01-01,g{i}@example.com,G {i}," for i in range(5)]
    path = tmp_path / "nul.csv"
    path.write_text(HEADER + "\r\n".join([*good, row]) + "\r\n")
    done = _run(processes, tenant["id"], path)
    _no_traceback(done)
    assert done.returncode == 0
    summary = json.loads(done.stdout)
    assert (summary["imported"], summary["rejected"]) == (5, 1)


def _responses_of(base: str, key: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/v1/responses", params={"limit": 50}, headers=bearer(key))
    return list(answer.json()["items"])


def test_an_erased_person_does_not_come_back_when_their_row_has_a_bad_phone(
    processes: Processes, tenant: dict[str, Any], tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{processes.serve()}"
    auth = basic(tenant["key"], colon=True)
    compat = f"{base}/compat/delighted/v1"
    assert (
        httpx.post(
            f"{compat}/people", json={"email": "gone@example.com", "send": False}, headers=auth
        ).status_code
        == 200
    )
    assert httpx.delete(f"{compat}/people/email:gone@example.com", headers=auth).json()
    path = tmp_path / "erased.csv"
    path.write_text(
        HEADER
        + "e1,3,bad phone,2024-01-01,gone@example.com,Gone Person,555-1234\r\n"
        + "e2,3,plain,2024-01-01,gone@example.com,,\r\n"
    )
    done = _run(processes, tenant["id"], path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads(done.stdout)
    stored = _responses_of(base, tenant["key"])
    assert [r["customer"] for r in stored if r["customer"]] == []  # now: delighted-person:gone@…
    assert (summary["imported"], summary["rejected"]) == (0, 2)


def test_a_customer_erased_through_our_api_does_not_come_back_by_email(
    processes: Processes, tenant: dict[str, Any], tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{processes.serve()}"
    key = bearer(tenant["key"])
    put = httpx.put(
        f"{base}/v1/customers/crm-42", json={"email": "ada@example.com", "name": "Ada"}, headers=key
    )
    assert put.status_code in (200, 201), put.text
    assert httpx.delete(f"{base}/v1/customers/crm-42", headers=key).status_code == 204
    path = tmp_path / "erased.csv"
    path.write_text(HEADER + "a1,2,hers,2024-01-01,ada@example.com,Ada,\r\n")
    done = _run(processes, tenant["id"], path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    found = httpx.get(
        f"{base}/v1/customers", params={"email": "ada@example.com"}, headers=key
    ).json()["items"]
    assert found == []  # now: a new customer `ada@example.com`, her response linked to it
    assert json.loads(done.stdout)["rejected"] == 1


def test_an_erased_phone_only_person_is_not_stored_again_beside_an_email(
    processes: Processes, tenant: dict[str, Any], tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{processes.serve()}"
    auth = basic(tenant["key"], colon=True)
    compat = f"{base}/compat/delighted/v1"
    phone = "+4915112345678"
    assert (
        httpx.post(
            f"{compat}/people", json={"phone_number": phone, "send": False}, headers=auth
        ).status_code
        == 200
    )
    assert httpx.delete(f"{compat}/people/phone_number:{phone}", headers=auth).json()
    path = tmp_path / "erased.csv"
    path.write_text(HEADER + f"p1,2,x,2024-01-01,new@example.com,,{phone}\r\n")
    done = _run(processes, tenant["id"], path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    found = httpx.get(
        f"{base}/v1/customers", params={"limit": 50}, headers=bearer(tenant["key"])
    ).json()["items"]
    assert [c for c in found if c["phone"] == phone] == []  # now: stored again


# Feature B: webhooks in Delighted's format.

from sqlalchemy import text  # noqa: E402

from feedback_api.config import Settings  # noqa: E402
from tests.fixtures.live import Live  # noqa: E402
from tests.fixtures.receiver import Receiver  # noqa: E402
from tests.fixtures.webhooks import app_settings as app_settings  # noqa: E402
from tests.fixtures.webhooks import deliver_all, register  # noqa: E402
from tests.fixtures.webhooks import sessions as sessions  # noqa: E402


async def test_one_event_the_delighted_shape_cannot_read_does_not_hold_back_the_others(
    live: Live, receiver: Receiver, sessions: Any, app_settings: Settings
) -> None:
    await register(live, receiver.url + "/delighted", format="delighted")
    first = await live.client.post(
        "/v1/responses",
        json={"kind": "nps", "score": 1, "comment": "one", "channel": "web"},
        headers=live.headers,
    )
    assert first.status_code == 201, first.text
    async with sessions() as session:  # an event whose data lacks a field (older version, bug)
        await session.execute(
            text("UPDATE events SET data = data - 'kind' WHERE data->>'id' = :id"),
            {"id": first.json()["id"]},
        )
        await session.commit()
    second = await live.client.post(
        "/v1/responses",
        json={"kind": "nps", "score": 9, "comment": "two", "channel": "web"},
        headers=live.headers,
    )
    assert second.status_code == 201, second.text
    await deliver_all(sessions, app_settings)
    got = [json.loads(r.body)["event_data"]["id"] for r in receiver.received]
    assert second.json()["id"] in got  # now: nothing delivered, the job dies on a KeyError
