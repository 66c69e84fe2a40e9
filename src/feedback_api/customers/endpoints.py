from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import Response

from feedback_api.auth.context import AuthContext
from feedback_api.auth.dependencies import require
from feedback_api.auth.scopes import Scope
from feedback_api.customers.schemas import CustomerRead, CustomerUpsert
from feedback_api.customers.service import customer as customer_service
from feedback_api.db import SessionDep
from feedback_api.exceptions import InvalidRequest
from feedback_api.kit.http import json_response
from feedback_api.kit.params import Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.privacy.schemas import CustomerExport
from feedback_api.privacy.service import privacy as privacy_service

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomersWrite = Annotated[AuthContext, Depends(require(Scope.CUSTOMERS_WRITE))]
CustomersRead = Annotated[AuthContext, Depends(require(Scope.CUSTOMERS_READ))]
Ref = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=r"^[^\s/?#]+$",
        description="Your system's id for the customer (no spaces, `/`, `?` or `#`).",
    ),
]
ATTRIBUTE_FILTER_PREFIX = "attr."


@router.put(
    "/{external_ref}",
    response_model=CustomerRead,
    responses={
        201: {"model": CustomerRead, "description": "Created."},
        **problem_responses(403, body=True),
    },
)
async def upsert_customer(
    external_ref: Ref, body: CustomerUpsert, session: SessionDep, auth: CustomersWrite
) -> Response:
    """Create or replace a customer, keyed by your system's id.

    Answers 201 when created, 200 when replaced. `PUT` replaces the whole record: send every
    field you want to keep. Safe to repeat."""
    values = body.model_dump(mode="json")
    customer, created = await customer_service.upsert(session, auth.tenant_id, external_ref, values)
    return json_response(201 if created else 200, CustomerRead.model_validate(customer))


@router.get("/{external_ref}", responses=problem_responses(403, 404))
async def get_customer(external_ref: Ref, session: SessionDep, auth: CustomersRead) -> CustomerRead:
    """One customer by your system's id."""
    return CustomerRead.model_validate(
        await customer_service.get(session, auth.tenant_id, external_ref)
    )


@router.get("", responses=problem_responses(403))
async def list_customers(
    request: Request,
    session: SessionDep,
    auth: CustomersRead,
    email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[CustomerRead]:
    """List customers, newest first.

    Filter by `email`, and by attributes with `attr.<name>=<value>` (e.g. `attr.tier=gold`;
    several are ANDed; values compare as strings)."""
    attributes = {
        name.removeprefix(ATTRIBUTE_FILTER_PREFIX): value
        for name, value in request.query_params.items()
        if name.startswith(ATTRIBUTE_FILTER_PREFIX)
    }
    if any(not name for name in attributes):
        raise InvalidRequest("attribute filters look like attr.<name>=<value>")
    after = parse_cursor(cursor, datetime, UUID)
    rows, next_cursor = await customer_service.list_page(
        session, auth.tenant_id, email=email, attributes=attributes, limit=limit, after=after
    )
    return Page(items=[CustomerRead.model_validate(c) for c in rows], next_cursor=next_cursor)


@router.get("/{external_ref}/export", responses=problem_responses(403, 404))
async def export_customer(
    external_ref: Ref, session: SessionDep, auth: CustomersRead
) -> CustomerExport:
    """Everything we hold about a customer, as JSON: answer a data-subject access request."""
    return await privacy_service.export(session, auth.tenant_id, external_ref)


@router.delete(
    "/{external_ref}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
async def erase_customer(external_ref: Ref, session: SessionDep, auth: CustomersWrite) -> None:
    """Erase a customer (right to be forgotten).

    The customer record goes; their responses stay in the numbers as anonymous scores, with
    comments, attributes and `external_id` removed. An audit entry without personal data
    records that the erasure happened. The external ref can be used again afterwards."""
    await privacy_service.erase(session, auth.tenant_id, external_ref, actor_key_id=auth.key_id)
