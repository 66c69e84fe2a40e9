"""Data-subject requests: export everything about a customer, or erase it.

Lives apart from customers and responses because it spans both (and later tickets and
invitations): each domain contributes its part here.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.service import audit as audit_service
from feedback_api.customers.schemas import CustomerRead
from feedback_api.customers.service import customer as customer_service
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.idempotency.service import idempotency as idempotency_service
from feedback_api.integrity.service import integrity as integrity_service
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.time import utcnow
from feedback_api.privacy.schemas import CustomerErased, CustomerExport, ExportedResponse
from feedback_api.responses.service import response as response_service
from feedback_api.responses.service import to_read
from feedback_api.tickets.service import ticket as ticket_service


class PrivacyService:
    async def export(self, session: AsyncSession, tenant_id: UUID, ref: str) -> CustomerExport:
        customer = await customer_service.get(session, tenant_id, ref)
        responses = await response_service.all_for_customer(session, tenant_id, customer.id)
        return CustomerExport(
            exported_at=utcnow(),
            customer=CustomerRead.model_validate(customer),
            responses=[
                ExportedResponse(**to_read(r, ref).model_dump(), deleted_at=r.deleted_at)
                for r in responses
            ],
            tickets=await ticket_service.export_customer(session, tenant_id, customer.id),
            invitations=await invitation_service.export_customer(session, tenant_id, customer.id),
        )

    async def erase(
        self, session: AsyncSession, tenant_id: UUID, ref: str, *, actor_key_id: UUID
    ) -> None:
        """Remove the customer and their personal data. Their scores stay, anonymous, so
        aggregates do not shift; the audit entry records ids and counts, nothing personal."""
        customer = await customer_service.get(session, tenant_id, ref)
        anonymised = await response_service.anonymise_for_customer(session, tenant_id, customer.id)
        await integrity_service.forget_texts(session, tenant_id, anonymised)
        tickets = await ticket_service.forget_customer(session, tenant_id, customer.id)
        invitations = await invitation_service.forget_customer(session, tenant_id, customer.id, ref)
        await idempotency_service.forget_customer(session, tenant_id, ref)
        await event_service.scrub_customer(session, tenant_id, ref)
        await customer_service.delete(session, tenant_id, customer.id)
        await event_service.emit(
            session,
            tenant_id,
            EventType.CUSTOMER_ERASED,
            [CustomerErased(external_ref=ref, erased_at=utcnow())],
        )
        await audit_service.record(
            session,
            tenant_id,
            action="customer.erased",
            target_type="customer",
            target_id=str(customer.id),
            actor_key_id=actor_key_id,
            data={
                "responses_anonymised": len(anonymised),
                "tickets_redacted": tickets,
                "invitations_unlinked": invitations,
            },
        )


privacy = PrivacyService()
