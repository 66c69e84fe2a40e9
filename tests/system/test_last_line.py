"""The last line of defence: what validation at the edge is meant to make impossible still
answers a problem, never loses valid items, and never breaks the client's connection.

The database is made to refuse things it would otherwise accept with triggers created in
the test's own transaction (rolled back afterwards), so each failure is real PostgreSQL
behaviour reached through the real request path."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.fixtures.auth import TenantHandle, assert_problem
from tests.fixtures.database import execute_sql
from tests.fixtures.processes import Processes
from tests.fixtures.processes import own_processes as own_processes  # the fixture

MARK = "refuse-me"


async def _refuse_comments(session: AsyncSession, errcode: str, *, once: bool = False) -> None:
    """Make inserting a response whose comment starts with MARK fail with `errcode`
    (every time, or only the first time: a sequence is not rolled back with the retry)."""
    await session.execute(text("CREATE TEMPORARY SEQUENCE refusals"))
    condition = "nextval('refusals') = 1" if once else "true"
    await session.execute(
        text(
            f"""
            CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.comment LIKE '{MARK}%' AND {condition} THEN
                    RAISE EXCEPTION 'refused by the test' USING ERRCODE = '{errcode}';
                END IF;
                RETURN NEW;
            END $$
            """
        )
    )
    await session.execute(
        text(
            "CREATE TRIGGER refuse BEFORE INSERT ON responses "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()"
        )
    )
    # Into the test's transaction, out of the savepoint a failed request rolls back.
    await session.commit()


def _item(comment: str | None = None, external_id: str | None = None) -> dict[str, object]:
    item: dict[str, object] = {"kind": "csat", "score": 5, "channel": "web"}
    if comment is not None:
        item["comment"] = comment
    if external_id is not None:
        item["external_id"] = external_id
    return item


class TestBatch:
    async def test_an_item_refused_at_the_edge_does_not_cost_the_others(
        self, tenant: TenantHandle
    ) -> None:
        answer = await tenant.post(
            "/v1/responses/batch",
            json={"items": [_item("fine"), _item("bad\u0000byte"), _item("also fine")]},
        )
        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        assert [i["status"] for i in items] == [201, 422, 201]
        assert items[1]["error"]["errors"][0]["code"] == "nul_character"
        assert items[1]["error"]["errors"][0]["loc"] == ["body", "items", 1, "comment"]
        listed = await tenant.get("/v1/responses")
        assert {r["comment"] for r in listed.json()["items"]} == {"fine", "also fine"}

    async def test_an_item_the_database_refuses_answers_422_and_the_rest_are_stored(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await _refuse_comments(session, "22000")  # data_exception
        items = [_item(f"ok {i}", external_id=f"e{i}") for i in range(7)]
        items[4] = _item(f"{MARK} 4", external_id="e4")
        answer = await tenant.post("/v1/responses/batch", json={"items": items})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [i["status"] for i in body["items"]] == [201, 201, 201, 201, 422, 201, 201]
        assert body["items"][4]["error"]["errors"][0]["code"] == "invalid_value"
        assert (body["created"], body["failed"]) == (6, 1)
        stored = await tenant.get("/v1/responses", params={"limit": 50})
        assert sorted(r["external_id"] for r in stored.json()["items"]) == [
            "e0",
            "e1",
            "e2",
            "e3",
            "e5",
            "e6",
        ]
        # Every stored item got its event; the refused one did not.
        events = await session.execute(
            text("SELECT count(*) FROM events WHERE tenant_id = :t AND type = 'response.created'"),
            {"t": tenant.id},
        )
        assert events.scalar_one() == 6

    async def test_a_failure_that_is_not_about_an_item_fails_the_batch_whole(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await _refuse_comments(session, "XX000")  # internal_error: not the item's fault
        answer = await tenant.post(
            "/v1/responses/batch", json={"items": [_item("fine"), _item(MARK)]}
        )
        assert_problem(answer, 500, "internal_error")
        assert (await tenant.get("/v1/responses")).json()["items"] == []


class TestSingleRequests:
    async def test_data_the_database_refuses_is_a_422_not_a_500(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await _refuse_comments(session, "22021")  # character_not_in_repertoire
        answer = await tenant.post("/v1/responses", json=_item(MARK))
        assert_problem(answer, 422, "invalid_value")

    async def test_a_deadlock_is_retried_and_the_write_lands_once(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await _refuse_comments(session, "40P01", once=True)  # deadlock_detected, once
        answer = await tenant.post("/v1/responses", json=_item(f"{MARK} retried"))
        assert answer.status_code == 201, answer.text
        listed = (await tenant.get("/v1/responses")).json()["items"]
        assert [r["comment"] for r in listed] == [f"{MARK} retried"]
        tries = await session.execute(text("SELECT last_value FROM refusals"))
        assert tries.scalar_one() == 2  # refused once, then stored

    async def test_contention_that_persists_is_a_503_with_retry_after(
        self, tenant: TenantHandle, session: AsyncSession
    ) -> None:
        await _refuse_comments(session, "40001")  # serialization_failure, every time
        answer = await tenant.post("/v1/responses", json=_item(MARK))
        assert_problem(answer, 503, "database_contention")
        assert answer.headers["retry-after"] == "1"

    @pytest.mark.parametrize("value", ["\u0000", "\ud800"])
    async def test_a_forged_cursor_is_refused_before_it_reaches_sql(
        self, tenant: TenantHandle, value: str
    ) -> None:
        # base64url of ["<value>"]: a survey-key cursor the database could not compare with
        forged = base64.urlsafe_b64encode(json.dumps([value]).encode()).decode().rstrip("=")
        assert_problem(
            await tenant.get("/v1/surveys", params={"cursor": forged}), 422, "invalid_cursor"
        )

    async def test_405_names_every_method_of_the_path(self, tenant: TenantHandle) -> None:
        answer = await tenant.request("PUT", "/v1/contact-rules")
        assert_problem(answer, 405, "method_not_allowed")
        assert answer.headers["allow"] == "GET, PATCH"


# --- a real server: the connection outlives an error --------------------------------------


@pytest.fixture
def refusing_database(own_processes: Processes) -> Iterator[None]:
    url = own_processes.env["FEEDBACK_DATABASE_URL"]
    execute_sql(
        url,
        f"""
        CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.comment = '{MARK}' THEN
                RAISE EXCEPTION 'a bug' USING ERRCODE = 'XX000';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse BEFORE INSERT ON responses
            FOR EACH ROW EXECUTE FUNCTION test_refuse();
        """,
    )
    yield
    execute_sql(url, "DROP TRIGGER IF EXISTS test_refuse ON responses; DROP FUNCTION test_refuse()")


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes, bytes]:
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), head, rest


def _serve(processes: Processes, tenant: str) -> tuple[str, int]:
    key = processes.tenant(tenant)
    return key, processes.serve()


def test_a_500_keeps_the_connection_for_the_next_request(
    own_processes: Processes, refusing_database: None
) -> None:
    processes = own_processes
    key, port = _serve(processes, "Keep-alive")

    def post(comment: str) -> bytes:
        body = json.dumps({"kind": "nps", "score": 9, "channel": "web", "comment": comment})
        return (
            f"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        status, head, body = _exchange(sock, post(MARK))
        assert status == 500, body
        assert json.loads(body)["code"] == "internal_error"
        assert b"connection: close" not in head.lower()
        status, _, body = _exchange(sock, post("the next, innocent request"))
        assert status == 201, body
    assert "unhandled_error" in processes.log("api")


def test_a_body_cut_short_by_a_disconnect_is_not_stored(own_processes: Processes) -> None:
    """A phone loses its connection while posting the one-tap form: `score=1` of
    `score=10&comment=…` arrived. That fragment is not an answer (it would store a
    detractor and open a ticket); the customer sent nothing."""
    key, port = _serve(own_processes, "Cut short")
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        survey = {"key": "cut", "kind": "nps", "question": {"en": "Recommend us?"}}
        assert client.post("/v1/surveys", json=survey).status_code == 201
        assert client.put("/v1/customers/cut-1", json={}).status_code in (200, 201)
        invitation = client.post(
            "/v1/invitations",
            json={"customer": "cut-1", "survey": "cut", "channel": "app", "delay_seconds": 0},
        ).json()
        token = invitation["links"]["token"]
        meant = b"score=10&comment=Great+service"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                f"POST /r/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(meant)}\r\n\r\n".encode()
                + meant[:7]  # b"score=1"
            )
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(65536) == b""  # no answer: there is nobody to give it to
        time.sleep(2)  # the server would store the fragment after closing the connection
        page = client.get(f"/r/{token}", headers={"Accept": "application/json"}).json()
        assert page["answer"] is None
        status = client.get(f"/v1/invitations/{invitation['id']}").json()["status"]
        assert status != "responded"
        assert client.get("/v1/tickets", params={"customer": "cut-1"}).json()["items"] == []


def test_overload_answers_503_with_retry_after_never_500(own_processes: Processes) -> None:
    """One pooled connection, held by a request stuck behind a lock: that request is
    cancelled by the statement timeout, and the one queued for a connection gives up at the
    pool timeout; both answer 503 `database_busy` with Retry-After, and the service recovers
    once the lock is gone."""
    processes = own_processes
    processes.env.update(
        FEEDBACK_DB_POOL_SIZE="1",
        FEEDBACK_DB_POOL_TIMEOUT_SECONDS="1",
        FEEDBACK_DB_STATEMENT_TIMEOUT_SECONDS="2",
    )
    key, port = _serve(processes, "Overload")
    headers = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, headers=headers, timeout=20) as client:
        assert client.put("/v1/customers/busy-1", json={}).status_code == 201
        url = processes.env["FEEDBACK_DATABASE_URL"].replace("+asyncpg", "")
        locker = subprocess.Popen(
            [
                "psql",
                url,
                "-q",
                "-c",
                "BEGIN; SELECT 1 FROM customers WHERE external_ref = 'busy-1' FOR UPDATE;"
                " SELECT pg_sleep(5); COMMIT;",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(1)  # the lock is taken
            with ThreadPoolExecutor(2) as pool:
                stuck = pool.submit(client.put, "/v1/customers/busy-1", json={"name": "x"})
                time.sleep(0.3)
                queued = pool.submit(client.get, "/v1/tenant")
                answers = [stuck.result(), queued.result()]
        finally:
            locker.wait(timeout=30)
    for answer in answers:
        assert_problem(answer, 503, "database_busy")
        assert int(answer.headers["Retry-After"]) >= 1
    with httpx.Client(base_url=base, headers=headers, timeout=20) as client:
        assert client.put("/v1/customers/busy-1", json={"name": "x"}).status_code == 200
    assert "unhandled_error" not in processes.log("api")
