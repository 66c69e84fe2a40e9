"""Erasure leaves nothing: after `DELETE /v1/customers/{ref}` no table holds the person's
name, e-mail, phone, ref, texts, trigger refs or ids, nor anything that ties their
anonymous scores to each other or that a guess could be checked against; their scores
still count as before. Their contact block outlives them and cannot be lifted."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import httpx
from sqlalchemy import select

from feedback_api.db import asyncpg_dsn
from feedback_api.integrity.repository import DETACHED
from feedback_api.invitations.service import ref_hash
from feedback_api.models import AuditLog, ContactBlock, ContactRules, Event, IntegrityFlag, Job
from feedback_api.privacy.service import NOTICE, NOTICE_JOB
from feedback_api.privacy.service import privacy as privacy_service
from feedback_api.webhooks.delivery import RETRY_SCHEDULE
from tests.fixtures.auth import TenantHandle, assert_problem, bearer
from tests.fixtures.integrity import post as post_one
from tests.fixtures.integrity import screen
from tests.fixtures.processes import Processes
from tests.fixtures.processes import own_processes as own_processes  # the fixture
from tests.fixtures.receiver import Answer, Receiver
from tests.fixtures.waiting import until

REF = "crm-7f3a-quin"
PERSON: dict[str, Any] = {
    "name": "Quintessa Varnhagen",
    "email": "quintessa.varnhagen@example.org",
    "phone": "+41 44 668 18 00",
    "locale": "rm-CH-sursilv",
    "timezone": "Pacific/Chatham",
    "attributes": {"loyalty_code": "LX-99-ZEBRA", "tier": "gold"},
}
PHONE = "+41446681800"  # as stored (E.164)
RING = "The barista was super friendly and the latte art was amazing, best cafe in town"
COMMENTS = {
    "dup1": "Quintessa here: the courier Flurinbeck frobnicated my parcel over the fence",
    "dup2": "Still waiting, the zanzibarian van never came back to Varnhagen street",
    "ring": f"{RING} zorblax",
    "incentive": "店员说五星好评返现5元 quokkafish",
    "batch": "The fitting room mirror was wobbly, ask for Quintessa at the till",
    "answer": "Quick answer through the link, thanks marmelduck",
}
TRIGGERS = ("TRIG-QV-0001", "TRIG-QV-0002")
IDEMPOTENCY_KEYS = ("idem-quin-single", "idem-quin-batch")
TICKET_TEXTS = {
    "note": "Called Quintessa Varnhagen on +41 44 668 18 00, she was upset",
    "reply": "Dear Quintessa, we are sorry about the parcel (ref crm-7f3a-quin)",
    "summary": "Refunded Ms Varnhagen in full, voucher code PLUMQUAIL",
    "follow_up": "Not solved, the refund never reached quintessa.varnhagen@example.org",
    "subject": "Complaint by Quintessa Varnhagen",
    "description": "Her e-mail is quintessa.varnhagen@example.org, parcel lost twice",
}
# Words of the texts above that nothing else says.
DISTINCTIVE = (
    "quintessa",
    "varnhagen",
    "flurinbeck",
    "frobnicated",
    "zanzibarian",
    "zorblax",
    "quokkafish",
    "wobbly",
    "marmelduck",
    "plumquail",
    "lx-99-zebra",
    "ord-qv-1001",
    "ext-quin-",
    "pacific/chatham",
    "sursilv",
)
UA = "burst-client/1.0 (erasure test)"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class EchoReceiver(Receiver):
    """A webhook receiver that answers with the start of what it was sent, as some do:
    the answers we store must not keep the person either."""

    async def _answer(self, writer: asyncio.StreamWriter, answer: Answer) -> None:
        echoed = b"got " + self.received[-1].body[:600]
        await super()._answer(writer, Answer(status=200, body=echoed))


async def dump(conn: asyncpg.Connection, tenant_id: UUID) -> dict[str, list[str]]:
    """Every row of every table, as JSON text: the tenant's rows of tables that have a
    tenant, all rows of the others. A table added later is dumped without anyone asking."""
    tables = await conn.fetch(
        "SELECT t.table_name, EXISTS (SELECT 1 FROM information_schema.columns c "
        "WHERE c.table_schema = 'public' AND c.table_name = t.table_name "
        "AND c.column_name = 'tenant_id') AS scoped FROM information_schema.tables t "
        "WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE' ORDER BY 1"
    )
    rows: dict[str, list[str]] = {}
    for table in tables:
        name = table["table_name"]
        where = " WHERE t.tenant_id = $1 OR t.tenant_id IS NULL" if table["scoped"] else ""
        args = [tenant_id] if table["scoped"] else []
        found = await conn.fetch(f'SELECT row_to_json(t)::text AS j FROM "{name}" t{where}', *args)
        rows[name] = [r["j"] for r in found]
    return rows


def hits(rows: dict[str, list[str]], needles: Iterable[str]) -> dict[str, list[str]]:
    """needle → the rows (`table: row`) that hold it, case-insensitively."""
    found: dict[str, list[str]] = {}
    lowered = [(t, r, r.lower()) for t, rs in rows.items() for r in rs]
    for needle in needles:
        low = needle.lower()
        where = [f"{t}: {r[:300]}" for t, r, text in lowered if low in text]
        if where:
            found[needle] = where
    return found


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def events_of(client: httpx.AsyncClient, type_: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"type": type_, "limit": 100}
        if cursor:
            params["after"] = cursor
        page = (await client.get("/v1/events", params=params)).json()
        found += page["items"]
        if not page["items"]:
            return found
        cursor = page["next_cursor"]


async def post(client: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any) -> str:
    answer = await client.post("/v1/responses", json={"kind": "nps", **body}, **kwargs)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_erasure_leaves_nothing_of_the_person(own_processes: Processes) -> None:
    """The whole product, real API and worker processes: a customer with every kind of
    data the service keeps, erased; then every table is searched for them."""
    own_processes.env.update(
        {"FEEDBACK_WEBHOOKS_ALLOW_HTTP": "true", "FEEDBACK_WEBHOOKS_ALLOW_PRIVATE": "true"}
    )
    database = own_processes.env["FEEDBACK_DATABASE_URL"]
    admin = own_processes.tenant("Shop")
    other_admin = own_processes.tenant("Other shop")
    base = f"http://127.0.0.1:{own_processes.serve()}"
    own_processes.start("worker", "worker")
    own_processes.wait_for("worker", "worker_started")
    receiver = EchoReceiver()
    await receiver.start()
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        async with (
            httpx.AsyncClient(base_url=base, headers=bearer(admin), timeout=30) as api,
            httpx.AsyncClient(base_url=base, headers=bearer(other_admin), timeout=30) as other,
            httpx.AsyncClient(base_url=base, timeout=30) as public,
        ):
            tenant_id = UUID((await api.get("/v1/tenant")).json()["id"])
            await _make_the_person(api, public, receiver)
            await _wait_for_the_worker(conn, tenant_id)
            export = (await api.get(f"/v1/customers/{REF}/export")).json()
            customer_id = export["customer"]["id"]
            response_ids = {r["id"] for r in export["responses"]}
            assert len(response_ids) == 6
            ticket_ids = {t["id"] for t in export["tickets"]}
            assert len(ticket_ids) == 2
            before = await dump(conn, tenant_id)
            person_rows = {
                r["id"]: r
                for r in map(json.loads, before["responses"])
                if r["customer_id"] == customer_id
            }
            plain = [REF, PERSON["name"], PERSON["email"], PHONE, customer_id, *TRIGGERS]
            plain += [*COMMENTS.values(), *TICKET_TEXTS.values(), *DISTINCTIVE]
            # The search finds them all before the erasure: it is not looking past them.
            assert set(hits(before, plain)) == set(plain)
            metrics_before = await _numbers(api)
            flags_before = {
                f["type"] for f in (await api.get("/v1/integrity/flags?limit=100")).json()["items"]
            }
            assert {"duplicate", "near_duplicate", "incentive", "burst"} <= flags_before

            await _another_tenant_cannot(other, export)
            assert (await api.delete(f"/v1/customers/{REF}")).status_code == 204
            await _another_tenant_cannot(other, export)

            # Integrators hear of it, with the ref, so that they can erase downstream too.
            async def told() -> bool:
                return any(b'"customer.erased"' in r.body for r in receiver.received)

            await until(told, within=90)
            (notice,) = [r for r in receiver.received if b'"customer.erased"' in r.body]
            assert json.loads(notice.body)["data"]["external_ref"] == REF
            # ... for NOTICE; then the follow-up job takes the ref out of that too.
            due = await conn.fetchval(
                "SELECT run_at - now() FROM jobs WHERE kind = $1 AND tenant_id = $2",
                NOTICE_JOB,
                tenant_id,
            )
            assert NOTICE - timedelta(minutes=1) < due <= NOTICE
            await conn.execute("UPDATE jobs SET run_at = now() WHERE kind = $1", NOTICE_JOB)

            async def notice_done() -> bool:
                left = await conn.fetchval("SELECT count(*) FROM jobs WHERE kind = $1", NOTICE_JOB)
                return bool(left == 0)

            await until(notice_done, within=90)
            await _wait_for_the_worker(conn, tenant_id)

            after = await dump(conn, tenant_id)
            hashed = [
                sha256(v)
                for v in (REF, f"{tenant_id}:{REF}", PERSON["email"], PHONE, PERSON["name"])
            ]
            hashed += [sha256(c) for c in COMMENTS.values()]
            needles = [*plain, PERSON["phone"], *IDEMPOTENCY_KEYS, *hashed]
            assert hits(after, needles) == {}

            # No row ties two of their responses together ...
            for table, rows in after.items():
                for row in rows:
                    theirs = [i for i in response_ids if i in row]
                    assert len(theirs) <= 1 or table == "responses", (table, row)
            # ... no flag, no ticket links them, and their rows hold nothing in common.
            links = await conn.fetch(
                "SELECT flag_id, count(*) AS n FROM integrity_flag_responses "
                "WHERE tenant_id = $1 AND response_id = ANY($2::uuid[]) GROUP BY flag_id",
                tenant_id,
                list(response_ids),
            )
            assert links
            assert all(link["n"] == 1 for link in links)
            detached = await conn.fetch(
                "SELECT * FROM integrity_flags WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
                tenant_id,
                [link["flag_id"] for link in links],
            )
            assert all(json.loads(f["evidence"]) == {DETACHED: True} for f in detached)
            assert all(f["response_count"] == 1 for f in detached)
            assert not await conn.fetchval(
                "SELECT count(*) FROM ticket_responses WHERE tenant_id = $1 "
                "AND response_id = ANY($2::uuid[])",
                tenant_id,
                list(response_ids),
            )
            for row in map(json.loads, after["responses"]):
                if row["id"] in response_ids:
                    was = person_rows[row["id"]]
                    assert (row["customer_id"], row["ip_hash"], row["ua_hash"]) == (None,) * 3
                    assert row["request_hash"] == ""
                    assert (row["score"], row["excluded"]) == (was["score"], was["excluded"])
                    assert row["updated_at"] == was["updated_at"]  # no shared erasure time
            assert not [r for r in after["reward_grants"] if any(i in r for i in response_ids)]

            # The scores still count exactly as before, excluded ones still excluded.
            assert await _numbers(api) == metrics_before
            # What the service keeps: the block (keyed), and an audit entry with counts.
            blocks = [json.loads(b) for b in after["contact_blocks"]]
            key = await conn.fetchval(
                "SELECT ref_key FROM contact_rules WHERE tenant_id = $1", tenant_id
            )
            # Keyed hashes of the ref and of the addresses (an import that knows the person
            # by address only must not bring them back), each an erasure of every channel.
            remembered = [REF, f"mailto:{PERSON['email']}", f"tel:{PHONE}"]
            assert sorted((b["ref_hash"], b["channel"], b["reason"]) for b in blocks) == sorted(
                (ref_hash(key, tenant_id, r), "*", "erased") for r in remembered
            )
            (block,) = [b for b in blocks if b["ref_hash"] == ref_hash(key, tenant_id, REF)]
            (audit,) = [
                a for a in map(json.loads, after["audit_log"]) if a["action"] == "customer.erased"
            ]
            assert audit["target_id"] == block["ref_hash"]
            assert audit["data"] == {
                "responses_anonymised": 6,
                "tickets_redacted": 2,
                "invitations_unlinked": 2,
            }
        assert "Traceback" not in own_processes.log("worker")
    finally:
        await conn.close()
        await receiver.stop()


async def _numbers(api: httpx.AsyncClient) -> list[tuple[Any, ...]]:
    found = []
    for params in ({}, {"integrity": "all"}, {"touchpoint": "delivery"}):
        got = (await api.get("/v1/metrics/nps", params=params)).json()
        found.append((got["n"], got["excluded"], got["value"]))
    return found


async def _make_the_person(
    api: httpx.AsyncClient, public: httpx.AsyncClient, receiver: Receiver
) -> None:
    ok = [200, 201]
    for call in (
        api.patch("/v1/integrity/settings", json={"rewards_enabled": True}),
        api.patch("/v1/contact-rules", json={"quiet_hours": None, "frequency_days": 0}),
        api.post(
            "/v1/surveys",
            json={
                "key": "after-order",
                "kind": "nps",
                "question": {"en": "How likely are you to recommend us?"},
                "delay_minutes": 0,
            },
        ),
        api.post("/v1/webhook-endpoints", json={"url": receiver.url}),
        api.put(f"/v1/customers/{REF}", json=PERSON),
        api.put("/v1/customers/bob-keep", json={"name": "Bob Keeper", "locale": "en"}),
    ):
        answer = await call
        assert answer.status_code in ok, answer.text

    # A detractor (a ticket), then a duplicate of it (attached to the ticket, flagged).
    await post(
        api,
        {
            "score": 1,
            "channel": "email",
            "touchpoint": "delivery",
            "customer": REF,
            "comment": COMMENTS["dup1"],
            "external_id": "ext-quin-1",
            "language": "rm-sursilv",
            "attributes": {"order": "ORD-QV-1001"},
        },
        headers={"Idempotency-Key": IDEMPOTENCY_KEYS[0]},
    )
    await post(
        api,
        {
            "score": 2,
            "channel": "email",
            "touchpoint": "delivery",
            "customer": REF,
            "comment": COMMENTS["dup2"],
            "external_id": "ext-quin-2",
        },
    )
    # A ring of near-identical texts by three people, one of them the person.
    ring = ((REF, COMMENTS["ring"]), ("bob-keep", RING + "!"), ("carol", RING + "!!"))
    for who, text in ring:
        body = {"score": 10, "channel": "app", "touchpoint": "checkout", "comment": text}
        await post(api, {**body, "customer": who})
    await post(
        api,
        {
            "score": 10,
            "channel": "app",
            "touchpoint": "returns",
            "customer": REF,
            "comment": COMMENTS["incentive"],
        },
    )
    batch = await api.post(
        "/v1/responses/batch",
        json={
            "items": [
                {
                    "kind": "nps",
                    "score": 8,
                    "channel": "web",
                    "touchpoint": "fitting_room",
                    "customer": REF,
                    "comment": COMMENTS["batch"],
                    "external_id": "ext-quin-3",
                },
                {"kind": "nps", "score": 7, "channel": "web", "customer": "bob-keep"},
            ]
        },
        headers={"Idempotency-Key": IDEMPOTENCY_KEYS[1]},
    )
    assert batch.json()["failed"] == 0, batch.text

    # Invitations with trigger refs; the worker sends them (invitation.due: the recipient).
    invitations = []
    for trigger in TRIGGERS:
        created = await api.post(
            "/v1/invitations",
            json={
                "customer": REF,
                "survey": "after-order",
                "trigger_ref": trigger,
                "context": {"touchpoint": "survey-link", "attributes": {"campaign": "QV-autumn"}},
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "scheduled", created.text
        invitations.append(created.json()["id"])

    async def sent() -> list[dict[str, Any]]:
        return [e["data"] for e in await events_of(api, "invitation.due")]

    async def both_sent() -> bool:
        return len(await sent()) == 2

    await until(both_sent, within=90)
    first = next(d for d in await sent() if d["id"] == invitations[0])
    # Answered through its link, from a client that then bursts anonymous ratings.
    answered = await public.post(
        path_of(first["message"]["landing_url"]),
        json={"score": 9, "comment": COMMENTS["answer"]},
        headers={"User-Agent": UA},
    )
    assert answered.status_code == 201, answered.text
    app_key = (await api.post("/v1/api-keys", json={"name": "app", "publishable": True})).json()
    for _ in range(5):
        await post(
            public,
            {"score": 10, "channel": "app"},
            headers={**bearer(app_key["secret"]), "User-Agent": UA},
        )
    bounced = await api.post(
        f"/v1/invitations/{invitations[1]}/delivery", json={"status": "bounced"}
    )
    assert bounced.status_code == 200, bounced.text
    unsubscribed = await api.post(f"/v1/customers/{REF}/unsubscribe", params={"channel": "sms"})
    assert unsubscribed.status_code == 200, unsubscribed.text

    # Their ticket, worked on; and one opened by hand.
    (ticket,) = (await api.get("/v1/tickets", params={"customer": REF})).json()["items"]
    url = f"/v1/tickets/{ticket['id']}"
    messages: list[tuple[str, dict[str, Any]]] = [
        (f"{url}/notes", {"body": TICKET_TEXTS["note"], "author": "agent-11"}),
        (f"{url}/replies", {"body": TICKET_TEXTS["reply"], "author": "agent-11"}),
    ]
    for path, body in messages:
        answer = await api.post(path, json=body)
        assert answer.status_code == 201, answer.text
    for change in (
        {"status": "in_progress"},
        {
            "status": "resolved",
            "root_cause": "courier",
            "resolution_summary": TICKET_TEXTS["summary"],
        },
    ):
        answer = await api.patch(url, json=change)
        assert answer.status_code == 200, answer.text
    answer = await api.post(
        f"{url}/follow-up", json={"solved": False, "comment": TICKET_TEXTS["follow_up"]}
    )
    assert answer.status_code == 200, answer.text
    manual = await api.post(
        "/v1/tickets",
        json={
            "customer": REF,
            "subject": TICKET_TEXTS["subject"],
            "description": TICKET_TEXTS["description"],
        },
    )
    assert manual.status_code == 201, manual.text


async def _wait_for_the_worker(conn: asyncpg.Connection, tenant_id: UUID) -> None:
    """Until the worker has screened everything and delivered every event."""

    async def idle() -> bool:
        busy = await conn.fetchval(
            "SELECT (SELECT count(*) FROM responses WHERE tenant_id = $1 AND screened_at IS NULL)"
            " + (SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1"
            " AND status = 'pending') + (SELECT count(*) FROM events e WHERE e.tenant_id = $1"
            " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.tenant_id = $1"
            " AND d.event_id = e.id))",
            tenant_id,
        )
        return bool(busy == 0)

    await until(idle, within=120, every=0.2)


async def _another_tenant_cannot(other: httpx.AsyncClient, export: dict[str, Any]) -> None:
    for path in (f"/v1/customers/{REF}", f"/v1/customers/{REF}/export"):
        assert_problem(await other.get(path), 404, "not_found")
    assert_problem(await other.delete(f"/v1/customers/{REF}"), 404, "not_found")
    for response in export["responses"][:2]:
        assert_problem(await other.get(f"/v1/responses/{response['id']}"), 404, "not_found")
    for ticket in export["tickets"]:
        assert_problem(await other.get(f"/v1/tickets/{ticket['id']}"), 404, "not_found")
    assert (await other.get("/v1/integrity/flags")).json()["items"] == []
    assert (await other.get("/v1/events")).json()["items"] == []


# --- the block that outlives the customer -----------------------------------------------


async def _survey(tenant: TenantHandle) -> None:
    created = await tenant.post(
        "/v1/surveys",
        json={"key": "s", "kind": "nps", "question": {"en": "Recommend us?"}, "delay_minutes": 0},
    )
    assert created.status_code == 201, created.text
    rules = await tenant.patch("/v1/contact-rules", json={"quiet_hours": None, "frequency_days": 0})
    assert rules.status_code == 200, rules.text


async def _invite(tenant: TenantHandle, ref: str) -> dict[str, Any]:
    created = await tenant.post("/v1/invitations", json={"customer": ref, "survey": "s"})
    assert created.status_code in (200, 201), created.text
    result: dict[str, Any] = created.json()
    return result


async def _eligible(tenant: TenantHandle, ref: str) -> tuple[bool, str | None]:
    got = (await tenant.get(f"/v1/customers/{ref}/eligibility")).json()
    return got["eligible"], got["reason"]


class TestTheErasureBlock:
    async def test_survives_and_cannot_be_lifted(
        self, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await _survey(tenant)
        await tenant.put("/v1/customers/gone", json={"name": "Gone Person"})
        sent = await _invite(tenant, "gone")
        token = sent["links"]["token"]
        await tenant.post("/v1/customers/stays/unsubscribe")
        assert (await tenant.delete("/v1/customers/gone")).status_code == 204
        assert await _eligible(tenant, "gone") == (False, "erased")

        # Neither the API, nor the one-tap unsubscribe page of a link they were sent ...
        assert (await tenant.delete("/v1/customers/gone/unsubscribe")).status_code == 204
        assert (
            await tenant.delete("/v1/customers/gone/unsubscribe?channel=email")
        ).status_code == 204
        page = await tenant.client.get(f"/r/{token}/unsubscribe")
        assert page.headers["content-type"].startswith("text/html")
        page = await tenant.client.post(f"/r/{token}/unsubscribe")
        assert page.headers["content-type"].startswith("text/html")
        # ... nor a record made again with the same ref lifts the block.
        assert (await tenant.put("/v1/customers/gone", json={"name": "Again"})).status_code == 201
        assert (await tenant.delete("/v1/customers/gone/unsubscribe")).status_code == 204
        assert (await tenant.post("/v1/customers/gone/unsubscribe")).status_code == 200
        assert (await tenant.delete("/v1/customers/gone/unsubscribe")).status_code == 204
        assert await _eligible(tenant, "gone") == (False, "erased")
        again = await _invite(tenant, "gone")
        assert (again["status"], again["suppression_reason"]) == ("suppressed", "erased")
        # Another tenant's key acts on its own customers only.
        assert (await other_tenant.delete("/v1/customers/gone/unsubscribe")).status_code == 204
        assert_problem(await other_tenant.delete("/v1/customers/gone"), 404, "not_found")
        assert await _eligible(tenant, "gone") == (False, "erased")

        # Another customer's opt-out is still theirs to lift.
        assert await _eligible(tenant, "stays") == (False, "unsubscribed")
        assert (await tenant.delete("/v1/customers/stays/unsubscribe")).status_code == 204
        assert await _eligible(tenant, "stays") == (True, None)
        assert (await _invite(tenant, "stays"))["status"] == "scheduled"

    async def test_is_keyed_and_replaces_the_customers_other_blocks(
        self, tenant: TenantHandle
    ) -> None:
        await tenant.put("/v1/customers/gone", json={})
        await tenant.post("/v1/customers/gone/unsubscribe?channel=sms")
        assert (await tenant.delete("/v1/customers/gone")).status_code == 204
        session = tenant.session
        blocks = (
            await session.scalars(select(ContactBlock).where(ContactBlock.tenant_id == tenant.id))
        ).all()
        assert [(b.channel, b.reason) for b in blocks] == [("*", "erased")]
        key = await session.scalar(
            select(ContactRules.ref_key).where(ContactRules.tenant_id == tenant.id)
        )
        assert key is not None
        assert len(key) == 32
        (block,) = blocks
        assert block.ref_hash == ref_hash(key, tenant.id, "gone")
        # Not what a guess of the ref, with or without the tenant id, hashes to.
        guesses = {sha256("gone"), sha256(f"{tenant.id}:gone")}
        assert block.ref_hash not in guesses
        assert (
            block.ref_hash
            == hmac.new(key, sha256(f"{tenant.id}:gone").encode(), "sha256").hexdigest()
        )
        audit = await session.scalar(
            select(AuditLog).where(
                AuditLog.tenant_id == tenant.id, AuditLog.action == "customer.erased"
            )
        )
        assert audit is not None
        assert audit.target_id == block.ref_hash


class TestTheNotice:
    def test_outlasts_every_webhook_retry(self) -> None:
        # A delivery of `customer.erased` retries for up to sum(RETRY_SCHEDULE) (+10 % jitter).
        assert timedelta(seconds=sum(RETRY_SCHEDULE) * 1.1) + timedelta(hours=6) < NOTICE

    async def test_the_ref_goes_when_it_ends(self, tenant: TenantHandle) -> None:
        await tenant.put("/v1/customers/gone", json={})
        assert (await tenant.delete("/v1/customers/gone")).status_code == 204
        session = tenant.session
        erased = await session.scalar(
            select(Event).where(Event.tenant_id == tenant.id, Event.type == "customer.erased")
        )
        assert erased is not None
        assert erased.data["external_ref"] == "gone"
        job = await session.scalar(
            select(Job).where(Job.tenant_id == tenant.id, Job.kind == NOTICE_JOB)
        )
        assert job is not None
        assert job.payload == {"event_id": str(erased.id)}
        assert job.run_at - datetime.now(UTC) > NOTICE - timedelta(minutes=1)
        await privacy_service.forget_notice(session, tenant.id, erased.id)
        await session.refresh(erased)
        assert erased.data["external_ref"] is None
        assert set(erased.data) == {"external_ref", "erased_at"}


# --- flags: each erased response on its own, excluded as before --------------------------


class TestFlagsAfterErasure:
    async def test_decided_flags_split_and_the_numbers_stay(self, tenant: TenantHandle) -> None:
        first = await post_one(tenant, score=10, customer="gone", comment=RING + " mine")
        again = await post_one(
            tenant, score=10, customer="gone", occurred_at="2026-11-10T13:00:00Z"
        )
        await post_one(tenant, score=10, customer="gone", occurred_at="2026-11-10T14:00:00Z")
        others = [
            await post_one(tenant, score=10, customer=f"r-{i}", comment=RING + "!" * i)
            for i in range(3)
        ]
        await screen(tenant)
        flags = {f["type"]: f for f in (await tenant.get("/v1/integrity/flags")).json()["items"]}
        duplicate, ring = flags["duplicate"], flags["near_duplicate"]
        assert duplicate["response_count"] == 2
        assert ring["response_count"] == 4
        decided = await tenant.post(
            f"/v1/integrity/flags/{duplicate['id']}/confirm", json={"reason": "Gone Person again"}
        )
        assert decided.status_code == 200, decided.text
        period = "from=2026-11-01&to=2026-12-01"
        metric = (await tenant.get(f"/v1/metrics/nps?{period}")).json()

        assert (await tenant.delete("/v1/customers/gone")).status_code == 204

        assert (await tenant.get(f"/v1/metrics/nps?{period}")).json() == metric
        listed = (await tenant.get("/v1/integrity/flags?limit=100")).json()["items"]
        assert duplicate["id"] not in {f["id"] for f in listed}  # only about the person: gone
        mine = {f["subject_ref"]: f for f in listed if f["evidence"] == {DETACHED: True}}
        # Each of their flagged responses has a flag of its own, as decided as before.
        assert sorted(mine) == sorted([first, again, str(await _third(tenant, first, again))])
        by_type = {(f["type"], f["subject_ref"]): f for f in mine.values()}
        assert all(f["response_count"] == 1 for f in mine.values())
        confirmed = [f for f in mine.values() if f["type"] == "duplicate"]
        assert len(confirmed) == 2
        assert all(f["status"] == "confirmed" for f in confirmed)
        assert all(f["reason"] is None for f in confirmed)
        assert ("near_duplicate", first) in by_type
        # The ring stays for the others, without the erased response's id.
        kept = (await tenant.get(f"/v1/integrity/flags/{ring['id']}")).json()
        assert sorted(kept["response_ids"]) == sorted(others)
        assert kept["response_count"] == 3
        assert first not in json.dumps(kept)
        events = (
            await tenant.session.scalars(
                select(Event).where(
                    Event.tenant_id == tenant.id, Event.type.startswith("integrity.")
                )
            )
        ).all()
        assert all(
            first not in json.dumps(e.data) and again not in json.dumps(e.data) for e in events
        )
        audit = (
            await tenant.session.scalars(
                select(AuditLog).where(
                    AuditLog.tenant_id == tenant.id, AuditLog.target_id == duplicate["id"]
                )
            )
        ).all()
        assert [a.data for a in audit] == [{"from": "open", "to": "confirmed", "reason": None}]
        # Later decisions and threshold changes leave the detached flags' responses as they were.
        await tenant.post(f"/v1/integrity/flags/{ring['id']}/dismiss", json={"reason": "honest"})
        await tenant.patch("/v1/integrity/settings", json={"exclude_threshold": 0.85})
        await tenant.patch("/v1/integrity/settings", json={"exclude_threshold": 0.8})
        for rid in (first, again):
            assert (await tenant.get(f"/v1/responses/{rid}")).json()["excluded"] is True
        # A detached flag never takes in anyone else's responses.
        await screen(tenant)
        stored = await tenant.session.scalars(
            select(IntegrityFlag).where(
                IntegrityFlag.tenant_id == tenant.id, IntegrityFlag.evidence.has_key(DETACHED)
            )
        )
        assert all(f.response_count == 1 for f in stored)


async def _third(tenant: TenantHandle, *known: str) -> str:
    """The person's third response (the second duplicate)."""
    items = (await tenant.get("/v1/responses?limit=100")).json()["items"]
    (third,) = [
        r["id"]
        for r in items
        if r["customer"] is None and r["comment"] is None and r["id"] not in known
    ]
    return str(third)
