"""What the responses domain tells the others: `responses_stored` fires in the storing
transaction after responses are stored, or an invitation's answer changes its score.
Subscribers (tickets, later insights) are connected in `feedback_api.assembly`.

And what it asks of them: `token_answers` answers `POST /v1/responses` with an
`invitation_token` (provided in `feedback_api.assembly` by the domain that sent the
invitation; it checks the token and stores the answer back through
`ResponseService.store_answer`).

A subscriber that fails with a bug is set aside (kit/hooks.py): the response ids go into a
`responses.replay_hook` job, which runs that subscriber again over the responses as they
are then (deleted ones left out), with the job queue's retries and dead end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.auth.context import AuthContext
from feedback_api.config import Settings
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.hooks import Hook, Slot
from feedback_api.models import Response
from feedback_api.responses.schemas import Client, ResponseCreate, ResponseRead

REPLAY_JOB = "responses.replay_hook"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A stored response as subscribers see it (a plain dataclass: a batch builds a
    thousand of them on the ingest path)."""

    response_id: UUID
    kind: str
    score: int
    channel: str
    touchpoint: str | None
    tags: Sequence[str]
    comment: str | None
    customer_id: UUID | None
    customer_ref: str | None
    agent_ref: str | None
    location_ref: str | None
    occurred_at: datetime
    # False when only the comment changed (an invitation's answer edited with the same
    # score): nothing for reactions to the score, such as tickets, to do.
    rescored: bool = True
    # True when the response existed before (an invitation's changed answer, or a replay):
    # what was derived from it before is to be replaced, not added to.
    replaced: bool = False

    @classmethod
    def of_read(
        cls,
        read: ResponseRead,
        customer_id: UUID | None,
        *,
        rescored: bool = True,
        replaced: bool = False,
    ) -> StoredResponse:
        """From the answer just given for it (the read carries the ref, not the id)."""
        return cls(
            response_id=read.id,
            kind=read.kind.value,
            score=read.score,
            channel=read.channel.value,
            touchpoint=read.touchpoint,
            tags=read.tags,
            comment=read.comment,
            customer_id=customer_id,
            customer_ref=read.customer,
            agent_ref=read.agent_ref,
            location_ref=read.location_ref,
            occurred_at=read.occurred_at,
            rescored=rescored,
            replaced=replaced,
        )

    @classmethod
    def of(cls, r: Response, customer_ref: str | None) -> StoredResponse:
        """From the stored row (a replay: whatever a subscriber derived is replaced)."""
        return cls(
            response_id=r.id,
            kind=r.kind,
            score=r.score,
            channel=r.channel,
            touchpoint=r.touchpoint,
            tags=r.tags,
            comment=r.comment,
            customer_id=r.customer_id,
            customer_ref=customer_ref,
            agent_ref=r.agent_ref,
            location_ref=r.location_ref,
            occurred_at=r.occurred_at,
            replaced=True,
        )


responses_stored: Hook[StoredResponse] = Hook("responses.stored")


async def _set_aside(
    session: AsyncSession,
    hook: str,
    subscriber: str,
    tenant_id: UUID,
    items: Sequence[StoredResponse],
) -> None:
    await job_service.enqueue(
        session,
        REPLAY_JOB,
        tenant_id=tenant_id,
        payload={
            "hook": hook,
            "subscriber": subscriber,
            "response_ids": [str(i.response_id) for i in items],
        },
    )


responses_stored.on_failure = _set_aside


class TokenAnswerer(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        auth: AuthContext,
        item: ResponseCreate,
        *,
        settings: Settings,
        client: Client | None,
    ) -> tuple[ResponseRead, bool]:
        """Store `item` (which carries an `invitation_token`) as the invitation's answer;
        returns the response and whether it is new (False: a changed answer)."""
        ...


token_answers: Slot[TokenAnswerer] = Slot("responses.token_answers")


class Provenance(Protocol):
    async def __call__(
        self, session: AsyncSession, tenant_id: UUID, ip: str | None, user_agent: str | None
    ) -> tuple[str | None, str | None]:
        """Keyed hashes of a public submission's client IP and user agent (integrity
        counts duplicates and bursts by them)."""
        ...


#: Provided by integrity, which keys the hashes per tenant.
provenance: Slot[Provenance] = Slot("responses.provenance")
