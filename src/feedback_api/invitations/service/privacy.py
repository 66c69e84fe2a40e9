"""The invitations' part of data-subject requests (privacy/service.py runs them): what an
export shows, and what an erasure removes and keeps (a block, never to ask them again)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.invitations.repository import InvitationRepository
from feedback_api.invitations.rules import ALL_CHANNELS
from feedback_api.invitations.schemas import InvitationRead
from feedback_api.invitations.service.contacts import address_refs
from feedback_api.invitations.service.contacts import contacts as contact_service
from feedback_api.invitations.service.links import links as link_service
from feedback_api.invitations.service.links import show_row


class PrivacyService:
    async def export_customer(
        self, session: AsyncSession, tenant_id: UUID, customer_id: UUID, *, settings: Settings
    ) -> list[InvitationRead]:
        rows = await InvitationRepository(session).all_for_customer(tenant_id, customer_id)
        links = await link_service.links(session, tenant_id, settings)
        return [show_row(r, links) for r in rows]

    async def forget_customer(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        customer_id: UUID,
        ref: str,
        *,
        email: str | None = None,
        phone: str | None = None,
    ) -> list[UUID]:
        """Erasure: unlink their invitations and drop what they said about the person (trigger
        ref, context, the customer's locale and time zone), stop what was pending, and
        remember (by keyed hashes of the ref, and of the e-mail address and phone number)
        never to invite them again, nor to import them back. Returns the invitations
        unlinked."""
        repo = InvitationRepository(session)
        for erased in (ref, *address_refs(email, phone)):
            hashed = await contact_service.block_hash(session, tenant_id, erased)
            await repo.replace_blocks(tenant_id, hashed, ALL_CHANNELS, "erased")
        return await repo.forget_customer(tenant_id, customer_id)


privacy = PrivacyService()
