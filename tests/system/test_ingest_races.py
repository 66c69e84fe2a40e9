"""The ingest path's fast lanes as an attack found them: the one-dependency route admits
the same `Authorization` headers as `require()` (two spaces after Bearer), and a customer
erased while a response names it is created anew, not a 409."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from feedback_api.db import asyncpg_dsn
from tests.fixtures.live import Live
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture

ONE = {"kind": "nps", "score": 9, "channel": "crm"}


async def test_bearer_with_two_spaces_is_admitted_as_require_admits_it(live: Live) -> None:
    """keys.dependencies.bearer_secret does not strip the credentials as HTTPBearer
    (fastapi.security.utils.get_authorization_scheme_param) does: `Bearer  <key>` is a
    valid key on every route that uses require() and 401 on POST /v1/responses only."""
    secret = live.headers["Authorization"].split(" ", 1)[1]
    headers = {"Authorization": "Bearer  " + secret}
    batch = await live.client.post("/v1/responses/batch", json={"items": [ONE]}, headers=headers)
    assert batch.status_code == 200, batch.text
    single = await live.client.post("/v1/responses", json=ONE, headers=headers)
    assert single.status_code == 201, single.text


async def test_bearer_with_two_spaces_over_a_live_server(
    processes: Processes, database_url: str
) -> None:
    name = "attack-" + uuid.uuid4().hex[:8]
    secret = processes.tenant(name)
    port = processes.serve()
    headers = {"Authorization": "Bearer  " + secret}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            batch = await client.post("/v1/responses/batch", json={"items": [ONE]}, headers=headers)
            single = await client.post("/v1/responses", json=ONE, headers=headers)
    finally:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        await conn.execute("DELETE FROM tenants WHERE name = $1", name)
        await conn.close()
    assert batch.status_code == 200, batch.text
    assert single.status_code == 201, single.text


async def test_customer_deleted_while_a_response_names_it(live: Live, database_url: str) -> None:
    """Not a regression (the code before aa3ba5f answers 409 too), but the new statement
    has the right id in hand and drops it: ensure_ids' INSERT waits for the deleting
    transaction, inserts the ref anew (RETURNING the new id), while the UNION ALL's SELECT,
    on the statement's snapshot, still returns the deleted row; the dict keeps the deleted
    id and the response's insert fails its foreign key: 409 `conflict` for a valid POST."""
    c, h = live.client, live.headers
    assert (
        await c.post("/v1/responses", json={**ONE, "customer": "gone"}, headers=h)
    ).status_code == 201
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("DELETE FROM responses WHERE tenant_id = $1", live.tenant_id)
        tr = conn.transaction()
        await tr.start()
        await conn.execute(
            "DELETE FROM customers WHERE tenant_id = $1 AND external_ref = 'gone'", live.tenant_id
        )
        post = asyncio.create_task(
            c.post("/v1/responses", json={**ONE, "customer": "gone"}, headers=h)
        )
        await asyncio.sleep(0.5)  # the POST now waits on the deleted row's lock
        await tr.commit()
        r = await post
    finally:
        await conn.close()
    assert r.status_code == 201, r.text
    assert r.json()["customer"] == "gone"
