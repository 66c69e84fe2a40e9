"""In-transaction hooks: a downstream rule's bug never costs the write that fired it; the
work is set aside for a job that runs the subscriber again. And slots: the one provider a
domain hands work up to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction

from feedback_api.config import Settings
from feedback_api.kit.hooks import Hook, Slot
from feedback_api.models import Job, Response, Ticket
from feedback_api.responses.hooks import REPLAY_JOB, token_answers
from feedback_api.worker import TASKS, Worker
from tests.fixtures.live import Live
from tests.fixtures.live import live as live  # the fixture

MARK = "hook-poison"
BREAK_TICKETS = f"""
CREATE FUNCTION test_break_tickets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.description LIKE '{MARK}%' THEN
        RAISE EXCEPTION 'a bug in ticket routing';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_break_tickets BEFORE INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION test_break_tickets()
"""
FIX_TICKETS = "DROP TRIGGER test_break_tickets ON tickets; DROP FUNCTION test_break_tickets()"


def _failures() -> float:
    value = REGISTRY.get_sample_value(
        "feedback_hook_failures_total", {"hook": "responses.stored", "subscriber": "tickets"}
    )
    return value or 0.0


async def test_a_failing_subscriber_does_not_lose_the_response(
    live: Live, settings: Settings
) -> None:
    sessions = live.sessionmaker
    async with sessions() as session:
        for statement in BREAK_TICKETS.split(";\nCREATE TRIGGER"):
            if not statement.lstrip().startswith("CREATE FUNCTION"):
                statement = "CREATE TRIGGER" + statement
            await session.execute(text(statement))
        await session.commit()
    before = _failures()
    try:
        body = {
            "kind": "nps",
            "score": 2,
            "channel": "crm",
            "customer": "hooked-1",
            "comment": f"{MARK}: the parcel never came",
        }
        answer = await live.client.post("/v1/responses", json=body, headers=live.headers)
        # The response is acknowledged and stored although opening its ticket failed.
        assert answer.status_code == 201, answer.text
        response_id = answer.json()["id"]
        assert _failures() == before + 1
        async with sessions() as session:
            stored = await session.scalar(select(Response).where(Response.id == response_id))
            assert stored is not None
            assert stored.score == 2
            tickets = await session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.tenant_id == live.tenant_id)
            )
            assert tickets == 0
            job = await session.scalar(
                select(Job).where(Job.kind == REPLAY_JOB, Job.tenant_id == live.tenant_id)
            )
            assert job is not None
            assert job.payload == {
                "hook": "responses.stored",
                "subscriber": "tickets",
                "response_ids": [response_id],
            }
    finally:
        async with sessions() as session:
            for statement in FIX_TICKETS.split("; "):
                await session.execute(text(statement))
            await session.commit()

    # Once the bug is gone, the job opens the ticket the response should have opened.
    async with asyncio.timeout(30):
        await Worker(sessions, settings, tasks=TASKS, periodic=(), tickers=()).run_until_idle()
    async with sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.tenant_id == live.tenant_id))
        assert ticket is not None
        assert str(ticket.response_id) == response_id
        left = await session.scalar(
            select(func.count()).select_from(Job).where(Job.kind == REPLAY_JOB)
        )
        assert left == 0


async def test_a_subscriber_gets_only_what_it_wants(session: AsyncSession) -> None:
    """Anonymous feedback wants no ticket: the tickets subscriber is not even run (no
    savepoint on the ingest path) unless a stored response may open one."""
    hook: Hook[int] = Hook("test.numbers")
    calls: list[list[int]] = []

    async def even(_: AsyncSession, __: UUID, items: Sequence[int]) -> None:
        calls.append(list(items))

    hook.subscribe("even", even, wants=lambda n: n % 2 == 0)
    tenant = uuid4()
    await hook.fire(session, tenant, [1, 3, 5])
    assert calls == []
    await hook.fire(session, tenant, [1, 2, 3, 4])
    assert calls == [[2, 4]]


async def test_a_gate_keeps_a_subscriber_with_nothing_to_do_out_of_a_savepoint(
    session: AsyncSession,
) -> None:
    """A gate answers outside the savepoint (a tenant without a theme term, a promoter no
    rule matches: no SAVEPOINT, no RELEASE); a bug in a gate lets the subscriber run in
    its savepoint, where failures are kept for later; the database's refusal goes up."""
    hook: Hook[int] = Hook("test.gated")
    calls: list[list[int]] = []
    answers: list[object] = [False, True, ValueError("a bug in the gate")]

    async def gate(_: AsyncSession, __: UUID, items: Sequence[int]) -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    async def work(_: AsyncSession, __: UUID, items: Sequence[int]) -> None:
        calls.append(list(items))

    hook.subscribe("gated", work, gate=gate)
    tenant = uuid4()
    savepoints: list[object] = []

    def on_create(_: object, transaction: SessionTransaction) -> None:
        if transaction.nested:
            savepoints.append(transaction)

    event.listen(session.sync_session, "after_transaction_create", on_create)
    try:
        await hook.fire(session, tenant, [1])
        assert (calls, savepoints) == ([], [])
        await hook.fire(session, tenant, [2])
        assert len(savepoints) == 1
    finally:
        event.remove(session.sync_session, "after_transaction_create", on_create)
    await hook.fire(session, tenant, [3])
    assert calls == [[2], [3]]

    async def refused(session: AsyncSession, _: UUID, __: Sequence[int]) -> bool:
        await session.execute(text("SELECT 1/0"))
        return True

    hook.subscribe("gated", work, gate=refused)
    with pytest.raises(Exception, match="division by zero"):
        async with session.begin_nested():
            await hook.fire(session, tenant, [4])


def test_a_slot_hands_work_to_its_one_provider() -> None:
    slot: Slot[Callable[[int], int]] = Slot("test.double")
    with pytest.raises(RuntimeError, match="nothing provides 'test.double'"):
        slot.get()
    slot.provide(lambda n: 2 * n)
    assert slot.get()(21) == 42
    slot.provide(lambda n: 3 * n)  # assembly may run twice: the last provider is the one
    assert slot.get()(2) == 6


def test_assembly_provides_the_token_answers() -> None:
    """`POST /v1/responses` with an invitation_token needs it (tests connect as the app does)."""
    token_answers.get()
