from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from feedback_api.invitations.service import ref_hash
from feedback_api.migrate import downgrade, upgrade
from feedback_api.models import Base
from feedback_api.tickets.rules import DEFAULT_RULES
from feedback_api.tickets.service import DEFAULT_TARGETS
from tests.fixtures.database import create_database, drop_database

T = TypeVar("T")
TENANT = uuid.UUID("00000000-0000-7000-8000-000000000001")


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"fbt_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    yield url
    drop_database(name)


def _inspect(url: str, fn: Callable[[Connection], T]) -> T:
    async def run() -> T:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


class TestMigrations:
    def test_upgrade_downgrade_upgrade_and_no_drift(self, empty_database: str) -> None:
        upgrade(empty_database)
        assert {"tenants", "api_keys", "customers", "responses"} <= _inspect(
            empty_database, _tables
        )
        downgrade(empty_database, "base")
        assert _inspect(empty_database, _tables) == {"alembic_version"}
        upgrade(empty_database)
        assert _inspect(empty_database, _diff) == []

    @pytest.mark.slow
    def test_replicas_starting_together_take_turns(self, empty_database: str) -> None:
        env = {**os.environ, "FEEDBACK_DATABASE_URL": empty_database}
        replicas = [
            subprocess.Popen(
                [sys.executable, "-m", "feedback_api", "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = [replica.communicate(timeout=120)[0].decode() for replica in replicas]
        assert [r.returncode for r in replicas] == [0, 0, 0], outputs
        assert _inspect(empty_database, _diff) == []

    def test_metrics_migration_counts_existing_responses(self, empty_database: str) -> None:
        """Responses stored before the rollup existed are in the numbers after the upgrade."""
        upgrade(empty_database, "0004")

        async def seed_and_read() -> tuple[int, str | None]:
            engine = create_async_engine(empty_database)
            try:
                async with engine.begin() as conn:
                    await conn.execute(
                        text(
                            "INSERT INTO tenants (id, name, slug, timezone, created_at, "
                            "updated_at) VALUES (:t, 'Old', 'old', 'Asia/Tokyo', now(), now())"
                        ),
                        {"t": TENANT},
                    )
                    for score, deleted in ((9, False), (3, False), (5, True)):
                        await conn.execute(
                            text(
                                "INSERT INTO responses (tenant_id, id, kind, score, scale_min, "
                                "scale_max, channel, request_hash, occurred_at, deleted_at) "
                                "VALUES (:t, :id, 'nps', :s, 0, 10, 'crm', 'h', now(), "
                                "CASE WHEN :d THEN now() END)"
                            ),
                            {"t": TENANT, "id": uuid.uuid4(), "s": score, "d": deleted},
                        )
                await asyncio.to_thread(upgrade, empty_database)
                async with engine.connect() as conn:
                    deltas = await conn.scalar(text("SELECT sum(sign) FROM metric_deltas"))
                    zone = await conn.scalar(text("SELECT timezone FROM metric_rollup_state"))
                return int(deltas or 0), zone
            finally:
                await engine.dispose()

        assert asyncio.run(seed_and_read()) == (2, "Asia/Tokyo")

    def test_tickets_migration_gives_existing_tenants_the_defaults(
        self, empty_database: str
    ) -> None:
        """A tenant from before tickets gets what a new tenant gets: the same rules and the
        same standard policy."""
        upgrade(empty_database, "0005")

        async def seed_and_read() -> tuple[list[tuple[object, ...]], object]:
            engine = create_async_engine(empty_database)
            try:
                async with engine.begin() as conn:
                    await conn.execute(
                        text(
                            "INSERT INTO tenants (id, name, slug, created_at, updated_at) "
                            "VALUES (:t, 'Old', 'old', now(), now())"
                        ),
                        {"t": TENANT},
                    )
                await asyncio.to_thread(upgrade, empty_database)
                async with engine.connect() as conn:
                    rules = (
                        await conn.execute(
                            text(
                                "SELECT name, position, conditions, priority, sla_policy_id "
                                "FROM ticket_rules ORDER BY position"
                            )
                        )
                    ).all()
                    targets = await conn.scalar(
                        text(
                            "SELECT targets FROM sla_policies WHERE is_default AND key = 'standard'"
                        )
                    )
                return [tuple(r) for r in rules], targets
            finally:
                await engine.dispose()

        rules, targets = asyncio.run(seed_and_read())
        assert rules == [
            (
                r.name,
                r.position,
                {
                    k: v
                    for k, v in {
                        "kinds": sorted(r.conditions.kinds),
                        "score_min": r.conditions.score_min,
                        "score_max": r.conditions.score_max,
                    }.items()
                    if v is not None
                },
                r.action.priority.value,
                None,
            )
            for r in DEFAULT_RULES
        ]
        assert targets == DEFAULT_TARGETS

    def test_erasure_migration_rekeys_blocks_and_cleans_up_old_erasures(
        self, empty_database: str
    ) -> None:
        """Blocks stored under the unkeyed hash move to the keyed one (an erased customer's
        too, whose ref nobody knows any more); what earlier erasures left is cleaned up; a
        downgrade turns back the blocks of customers that still exist."""
        upgrade(empty_database, "0011")
        kept, gone = "still-here", "long-gone"
        erased_customer = uuid.uuid4()
        response, flag, audit = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

        def unkeyed(ref: str) -> str:
            return hashlib.sha256(f"{TENANT}:{ref}".encode()).hexdigest()

        async def run() -> dict[str, Any]:
            engine = create_async_engine(empty_database)
            try:
                async with engine.begin() as conn:
                    for sql, params in (
                        (
                            "INSERT INTO tenants (id, name, slug, created_at, updated_at) "
                            "VALUES (:t, 'Old', 'old', now(), now())",
                            {},
                        ),
                        ("INSERT INTO contact_rules (tenant_id) VALUES (:t)", {}),
                        (
                            "INSERT INTO customers (tenant_id, id, external_ref, created_at, "
                            "updated_at) VALUES (:t, :c, :ref, now(), now())",
                            {"c": uuid.uuid4(), "ref": kept},
                        ),
                        (
                            "INSERT INTO contact_blocks (tenant_id, ref_hash, channel, reason) "
                            "VALUES (:t, :a, 'sms', 'unsubscribed'), (:t, :b, '*', 'erased')",
                            {"a": unkeyed(kept), "b": unkeyed(gone)},
                        ),
                        (
                            "INSERT INTO responses (tenant_id, id, kind, score, scale_min, "
                            "scale_max, channel, request_hash, occurred_at) "
                            "VALUES (:t, :r, 'nps', 9, 0, 10, 'crm', 'h', now())",
                            {"r": response},
                        ),
                        (
                            "INSERT INTO reward_grants (tenant_id, response_id, customer_id) "
                            "VALUES (:t, :r, :c)",
                            {"r": response, "c": erased_customer},
                        ),
                        (
                            "INSERT INTO integrity_flags (tenant_id, id, type, subject_type, "
                            "subject_ref, strength, evidence, created_at, updated_at) VALUES "
                            "(:t, :f, 'duplicate', 'customer', :c, 0.9, '{}', now(), now())",
                            {"f": flag, "c": str(erased_customer)},
                        ),
                        (
                            "INSERT INTO events (tenant_id, id, type, occurred_at, data) VALUES "
                            "(:t, :e, 'integrity.flag_created', now(), "
                            "jsonb_build_object('id', CAST(:f AS text), 'subject_ref', "
                            "CAST(:c AS text)))",
                            {"e": uuid.uuid4(), "f": str(flag), "c": str(erased_customer)},
                        ),
                        (
                            "INSERT INTO audit_log (tenant_id, id, action, target_type, "
                            "target_id) VALUES (:t, :a, 'customer.erased', 'customer', :c)",
                            {"a": audit, "c": str(erased_customer)},
                        ),
                    ):
                        await conn.execute(text(sql), {"t": TENANT, **params})
                await asyncio.to_thread(upgrade, empty_database)

                async def read() -> dict[str, Any]:
                    async with engine.connect() as conn:
                        return {
                            "key": await conn.scalar(text("SELECT ref_key FROM contact_rules")),
                            "blocks": dict(
                                (
                                    await conn.execute(
                                        text("SELECT channel, ref_hash FROM contact_blocks")
                                    )
                                ).all()
                            ),
                            "grants": await conn.scalar(text("SELECT count(*) FROM reward_grants")),
                            "subject": await conn.scalar(
                                text("SELECT subject_ref FROM integrity_flags")
                            ),
                            "event": await conn.scalar(
                                text("SELECT data->>'subject_ref' FROM events")
                            ),
                            "audit": await conn.scalar(text("SELECT target_id FROM audit_log")),
                        }

                upgraded = await read()
                await asyncio.to_thread(downgrade, empty_database, "0011")
                async with engine.connect() as conn:
                    rows = await conn.execute(text("SELECT channel, ref_hash FROM contact_blocks"))
                    downgraded: dict[str, str] = dict(rows.all())
                return {**upgraded, "downgraded": downgraded}
            finally:
                await engine.dispose()

        found = asyncio.run(run())
        key = bytes(found["key"])
        assert len(key) == 32
        assert found["blocks"] == {
            "sms": ref_hash(key, TENANT, kept),
            "*": ref_hash(key, TENANT, gone),
        }
        assert found["grants"] == 0
        assert found["subject"] == found["event"] == str(flag)
        assert found["audit"] == str(audit)
        assert found["downgraded"] == {"sms": unkeyed(kept), "*": ref_hash(key, TENANT, gone)}

    def test_block_customers_migration_names_the_known_customers_of_old_blocks(
        self, empty_database: str
    ) -> None:
        """Opt-outs and bounces recorded before customers were named on their blocks get
        the customer whose ref hashes to them; a ref never seen and an erasure stay nameless."""
        upgrade(empty_database, "0018")
        known, bounced = uuid.uuid4(), uuid.uuid4()

        async def run() -> list[tuple[str, uuid.UUID | None]]:
            engine = create_async_engine(empty_database)
            try:
                async with engine.begin() as conn:
                    await conn.execute(
                        text(
                            "INSERT INTO tenants (id, name, slug, created_at, updated_at) "
                            "VALUES (:t, 'Old', 'old', now(), now())"
                        ),
                        {"t": TENANT},
                    )
                    await conn.execute(
                        text("INSERT INTO contact_rules (tenant_id) VALUES (:t)"), {"t": TENANT}
                    )
                    key = bytes(await conn.scalar(text("SELECT ref_key FROM contact_rules")))
                    for customer, ref in ((known, "ann"), (bounced, "bob"), (uuid.uuid4(), "x")):
                        await conn.execute(
                            text(
                                "INSERT INTO customers (tenant_id, id, external_ref, "
                                "created_at, updated_at) VALUES (:t, :c, :r, now(), now())"
                            ),
                            {"t": TENANT, "c": customer, "r": ref},
                        )
                    for ref, channel, reason in (
                        ("ann", "*", "unsubscribed"),
                        ("bob", "email", "bounced"),
                        ("ghost", "*", "unsubscribed"),
                        ("gone", "*", "erased"),
                    ):
                        await conn.execute(
                            text(
                                "INSERT INTO contact_blocks (tenant_id, ref_hash, channel, "
                                "reason) VALUES (:t, :h, :ch, :r)"
                            ),
                            {
                                "t": TENANT,
                                "h": ref_hash(key, TENANT, ref),
                                "ch": channel,
                                "r": reason,
                            },
                        )
                await asyncio.to_thread(upgrade, empty_database)
                async with engine.connect() as conn:
                    rows = await conn.execute(
                        text("SELECT reason, customer_id FROM contact_blocks")
                    )
                    return [(reason, c) for reason, c in rows.all()]
            finally:
                await engine.dispose()

        found = sorted(asyncio.run(run()), key=str)
        assert found == sorted(
            [
                ("bounced", bounced),
                ("erased", None),
                ("unsubscribed", known),
                ("unsubscribed", None),
            ],
            key=str,
        )
