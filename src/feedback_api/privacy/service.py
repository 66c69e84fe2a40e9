"""Data-subject requests: export everything about a customer, or erase it.

Lives apart from customers and responses because it spans both (and tickets, invitations,
integrity, events, webhooks and idempotency): each domain contributes its part here.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.service import audit as audit_service
from feedback_api.config import Settings
from feedback_api.customers.schemas import CustomerRead
from feedback_api.customers.service import customer as customer_service
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.idempotency.service import idempotency as idempotency_service
from feedback_api.insights.service import theme as theme_service
from feedback_api.integrity.service import integrity as integrity_service
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.jobs.service import job as job_service
from feedback_api.kit.time import utcnow
from feedback_api.privacy.schemas import CustomerErased, CustomerExport, ExportedResponse
from feedback_api.responses.service import response as response_service
from feedback_api.tickets.service import ticket as ticket_service
from feedback_api.webhooks.service import webhook as webhook_service

# How long `customer.erased` carries the ref, so that integrations can erase the customer
# too: longer than a webhook delivery keeps retrying (about 3.5 days at most, see
# webhooks.delivery.RETRY_SCHEDULE), and days for readers of GET /v1/events. Then the job
# NOTICE_JOB removes it, and nothing of the ref is left.
NOTICE = timedelta(days=4)
NOTICE_JOB = "privacy.forget_notice"


class PrivacyService:
    async def export(
        self, session: AsyncSession, tenant_id: UUID, ref: str, *, settings: Settings
    ) -> CustomerExport:
        """Everything about the customer; `settings` for the invitations' links."""
        customer = await customer_service.get(session, tenant_id, ref)
        responses = await response_service.all_for_customer(session, tenant_id, customer.id)
        return CustomerExport(
            exported_at=utcnow(),
            customer=CustomerRead.model_validate(customer),
            responses=[ExportedResponse.of(r, ref) for r in responses],
            tickets=await ticket_service.export_customer(session, tenant_id, customer.id),
            invitations=await invitation_service.export_customer(
                session, tenant_id, customer.id, settings=settings
            ),
        )

    async def erase(
        self, session: AsyncSession, tenant_id: UUID, ref: str, *, actor_key_id: UUID
    ) -> None:
        """Remove the customer and everything that names them or ties their responses to
        each other. Their scores stay, anonymous and unlinked, so aggregates do not shift.
        What stays is a contact block under a keyed hash of the ref (never asked again),
        `customer.erased` with the ref for NOTICE, and an audit entry with counts."""
        customer = await customer_service.get(session, tenant_id, ref)
        anonymised = await response_service.anonymise_for_customer(session, tenant_id, customer.id)
        flag_events = await integrity_service.forget_responses(session, tenant_id, anonymised)
        await theme_service.forget(session, tenant_id, anonymised)
        tickets = await ticket_service.forget_customer(session, tenant_id, customer.id, anonymised)
        invitations = await invitation_service.forget_customer(
            session, tenant_id, customer.id, ref, email=customer.email, phone=customer.phone
        )
        await idempotency_service.forget_customer(session, tenant_id, ref, anonymised)
        scrubbed = await event_service.scrub_customer(session, tenant_id, ref)
        await webhook_service.forget_answers(session, tenant_id, [*scrubbed, *flag_events])
        await job_service.forget_failures(session, tenant_id, [*anonymised, *tickets, *invitations])
        block = await invitation_service.block_hash(session, tenant_id, ref)
        await customer_service.delete(session, tenant_id, customer.id)
        notice = await event_service.record(
            session,
            tenant_id,
            EventType.CUSTOMER_ERASED,
            CustomerErased(external_ref=ref, erased_at=utcnow()).model_dump(mode="json"),
        )
        await job_service.enqueue(
            session,
            NOTICE_JOB,
            tenant_id=tenant_id,
            payload={"event_id": str(notice.id)},
            run_at=utcnow() + NOTICE,
        )
        await audit_service.record(
            session,
            tenant_id,
            action="customer.erased",
            target_type="customer",
            # The keyed hash the contact block is stored under (not the customer's id, which
            # nothing else holds any more): the service can still tell whether a given ref
            # was erased, nobody without the tenant's key can.
            target_id=block,
            actor_key_id=actor_key_id,
            data={
                "responses_anonymised": len(anonymised),
                "tickets_redacted": len(tickets),
                "invitations_unlinked": len(invitations),
            },
        )

    async def forget_notice(self, session: AsyncSession, tenant_id: UUID, event_id: UUID) -> None:
        """The end of an erasure's notice: `customer.erased` no longer carries the ref, nor
        does what webhook receivers answered to its deliveries."""
        await event_service.blank(session, tenant_id, event_id, {"external_ref": None})
        await webhook_service.forget_answers(session, tenant_id, [event_id])


privacy = PrivacyService()
