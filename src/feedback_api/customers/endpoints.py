from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import Response
from pydantic_core import PydanticCustomError

from feedback_api.auth.context import AuthContext
from feedback_api.auth.dependencies import require
from feedback_api.auth.scopes import Scope
from feedback_api.customers.schemas import CustomerRead, CustomerUpsert
from feedback_api.customers.service import customer as customer_service
from feedback_api.db import SessionDep, SettingsDep
from feedback_api.exceptions import InvalidRequest
from feedback_api.kit.http import json_response
from feedback_api.kit.params import Cursor, Limit, parse_cursor
from feedback_api.kit.schemas import Page, problem_responses
from feedback_api.kit.types import (
    ATTRIBUTE_KEY_PATTERN,
    MAX_ATTRIBUTES_KEYS,
    ExternalRef,
    Text,
    check_storable,
)
from feedback_api.privacy.schemas import CustomerExport
from feedback_api.privacy.service import privacy as privacy_service

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomersWrite = Annotated[AuthContext, Depends(require(Scope.CUSTOMERS_WRITE))]
CustomersRead = Annotated[AuthContext, Depends(require(Scope.CUSTOMERS_READ))]
Ref = Annotated[
    ExternalRef,
    Path(description="Your system's id for the customer (no spaces, `/`, `?` or `#`)."),
]
ATTRIBUTE_FILTER_PREFIX = "attr."
MAX_ATTRIBUTE_FILTER_LENGTH = 1000
_ATTRIBUTE_NAME = re.compile(ATTRIBUTE_KEY_PATTERN)


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
    email: Annotated[Annotated[str, Text(max_length=320)] | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[CustomerRead]:
    """List customers, newest first.

    Filter by `email`, and by attributes with `attr.<name>=<value>` (e.g. `attr.tier=gold`;
    several are ANDed; values compare as strings). At most 50 attribute filters; a name
    is what an attribute's may be (letters, digits, `_`, `.`, `-`; up to 64), a value has
    at most 1,000 characters and no U+0000."""
    attributes = _attribute_filters(request)
    after = parse_cursor(cursor, datetime, UUID)
    rows, next_cursor = await customer_service.list_page(
        session, auth.tenant_id, email=email, attributes=attributes, limit=limit, after=after
    )
    return Page(items=[CustomerRead.model_validate(c) for c in rows], next_cursor=next_cursor)


def _attribute_filters(request: Request) -> dict[str, str]:
    """The `attr.<name>=<value>` filters, refused with a code when the name could not be an
    attribute's or the value could not be stored (NUL, lone surrogates)."""
    attributes: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for param, value in request.query_params.multi_items():
        if not param.startswith(ATTRIBUTE_FILTER_PREFIX):
            continue
        name = param.removeprefix(ATTRIBUTE_FILTER_PREFIX)
        loc = ("query", param)
        if not _ATTRIBUTE_NAME.fullmatch(name):
            errors.append(
                InvalidRequest.error(
                    loc,
                    "attribute_name",
                    f"attribute filters look like attr.<name>=<value>, the name "
                    f"matching {ATTRIBUTE_KEY_PATTERN}",
                )
            )
            continue
        if len(value) > MAX_ATTRIBUTE_FILTER_LENGTH:
            errors.append(
                InvalidRequest.error(
                    loc, "string_too_long", f"at most {MAX_ATTRIBUTE_FILTER_LENGTH} characters"
                )
            )
            continue
        try:
            check_storable(value)
        except PydanticCustomError as exc:
            errors.append(InvalidRequest.error(loc, exc.type, exc.message()))
            continue
        attributes[name] = value
    if not errors and len(attributes) > MAX_ATTRIBUTES_KEYS:
        errors.append(
            InvalidRequest.error(
                ("query",),
                "too_many_attributes",
                f"at most {MAX_ATTRIBUTES_KEYS} attribute filters",
            )
        )
    if errors:
        raise InvalidRequest("the attribute filters are not valid", errors=errors)
    return attributes


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
