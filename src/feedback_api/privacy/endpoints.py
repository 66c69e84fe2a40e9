"""The data-subject requests, under the customer they concern: `GET
/v1/customers/{ref}/export` (access) and `DELETE /v1/customers/{ref}` (erasure). Their own
router, so that the customers domain knows nothing of what erasure reaches."""

from __future__ import annotations

from fastapi import APIRouter, status

from feedback_api.customers.params import CustomersRead, CustomersWrite, Ref
from feedback_api.db import SessionDep, SettingsDep
from feedback_api.kit.schemas import problem_responses
from feedback_api.privacy.schemas import CustomerExport
from feedback_api.privacy.service import privacy as privacy_service

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{external_ref}/export", responses=problem_responses(403, 404))
async def export_customer(
    external_ref: Ref, session: SessionDep, settings: SettingsDep, auth: CustomersRead
) -> CustomerExport:
    """Everything we hold about a customer, as JSON: answer a data-subject access request."""
    return await privacy_service.export(session, auth.tenant_id, external_ref, settings=settings)


@router.delete(
    "/{external_ref}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
async def erase_customer(external_ref: Ref, session: SessionDep, auth: CustomersWrite) -> None:
    """Erase a customer (right to be forgotten).

    The customer record goes, and with it everything that names them or ties their
    responses to each other: comments, attributes, `external_id`, trigger refs, ticket
    texts, flag evidence, and the same in stored event payloads. Their responses stay in
    the numbers as anonymous, unlinked scores. The ref stays barred from invitations (a
    block under a keyed hash, which nothing lifts), and `customer.erased` carries it for 4
    days so that your systems can erase the customer too. An audit entry with counts
    records the erasure. The ref can name a new record afterwards (never invited)."""
    await privacy_service.erase(session, auth.tenant_id, external_ref, actor_key_id=auth.key_id)
