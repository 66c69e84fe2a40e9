"""One-tap links and the keys that sign them, and the invitation as the API shows it
(`InvitationRead`, which carries its links while it can be answered)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.exceptions import FeedbackError
from feedback_api.invitations import tokens
from feedback_api.invitations.repository import InvitationRepository, InvitationRow
from feedback_api.invitations.schemas import InvitationLinks, InvitationRead, SigningKeyRead, Status
from feedback_api.kit.time import utcnow
from feedback_api.models import Invitation, SigningKey

ANSWERABLE = frozenset({Status.SCHEDULED, Status.SENT, Status.RESPONDED})


class Links:
    """Signs links with the tenant's newest key (loaded once per request or batch) under
    the service's public URL."""

    def __init__(self, key: SigningKey, public_url: str) -> None:
        self.key = key
        self.base_url = public_url.rstrip("/")

    def token(self, invitation: Invitation) -> str | None:
        if Status(invitation.status) not in ANSWERABLE or invitation.expires_at is None:
            return None
        claims = tokens.Claims(
            invitation.tenant_id, invitation.id, self.key.kid, invitation.expires_at
        )
        return tokens.sign(claims, self.key.secret)

    def url(self, token: str, suffix: str = "") -> str:
        return f"{self.base_url}/r/{token}{suffix}"

    def of(self, invitation: Invitation) -> InvitationLinks | None:
        """The invitation's links while it can be answered."""
        token = self.token(invitation)
        if token is None or invitation.expires_at is None:
            return None
        return InvitationLinks(
            token=token, landing_url=self.url(token), expires_at=invitation.expires_at
        )


class _Shown:
    """An invitation as `InvitationRead` reads it (`from_attributes`): its row's columns,
    and what the row has only by id (the survey's key, the customer's ref) or not at all
    (its links, signed now)."""

    __slots__ = ("_invitation", "customer", "links", "survey")

    def __init__(
        self, invitation: Invitation, survey: str, customer: str | None, links: Links
    ) -> None:
        self._invitation = invitation
        self.survey = survey
        self.customer = customer
        self.links = links.of(invitation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._invitation, name)


def show(
    invitation: Invitation, survey_key: str, customer_ref: str | None, links: Links
) -> InvitationRead:
    return InvitationRead.model_validate(
        _Shown(invitation, survey_key, customer_ref, links), from_attributes=True
    )


def show_row(row: InvitationRow, links: Links) -> InvitationRead:
    invitation, survey_key, customer_ref = row
    return show(invitation, survey_key, customer_ref, links)


class LinkService:
    async def signing_key(self, session: AsyncSession, tenant_id: UUID) -> SigningKey:
        """The key that signs new links; the tenant's first is made on first use."""
        repo = InvitationRepository(session)
        keys = await repo.signing_keys(tenant_id)
        if not keys:
            await repo.add_signing_key(tenant_id, 1, secrets.token_bytes(32))
            keys = await repo.signing_keys(tenant_id)
        return keys[-1]

    async def links(self, session: AsyncSession, tenant_id: UUID, settings: Settings) -> Links:
        return Links(await self.signing_key(session, tenant_id), settings.public_url)

    async def signing_keys(self, session: AsyncSession, tenant_id: UUID) -> list[SigningKeyRead]:
        await self.signing_key(session, tenant_id)
        keys = await InvitationRepository(session).signing_keys(tenant_id)
        return [
            SigningKeyRead(
                kid=k.kid, created_at=k.created_at, retires_at=k.retires_at, current=k is keys[-1]
            )
            for k in keys
        ]

    async def rotate(
        self, session: AsyncSession, tenant_id: UUID, grace: timedelta
    ) -> list[SigningKeyRead]:
        """A new key signs from now on; links signed with the older ones work for `grace`."""
        current = await self.signing_key(session, tenant_id)
        repo = InvitationRepository(session)
        if not await repo.add_signing_key(tenant_id, current.kid + 1, secrets.token_bytes(32)):
            raise FeedbackError("another rotation is under way; try again")
        await repo.retire_keys(tenant_id, current.kid + 1, utcnow() + grace)
        return await self.signing_keys(session, tenant_id)


links = LinkService()
