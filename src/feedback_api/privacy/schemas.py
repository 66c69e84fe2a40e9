from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from feedback_api.customers.schemas import CustomerRead
from feedback_api.invitations.schemas import InvitationRead
from feedback_api.responses.schemas import ResponseRead
from feedback_api.tickets.schemas import ExportedTicket


class ExportedResponse(ResponseRead):
    deleted_at: datetime | None


class CustomerExport(BaseModel):
    """Everything we hold about one customer (data-subject access request)."""

    exported_at: datetime
    customer: CustomerRead
    responses: list[ExportedResponse] = Field(description="Deleted ones included.")
    tickets: list[ExportedTicket] = Field(description="Follow-up tickets, with their timelines.")
    invitations: list[InvitationRead] = Field(description="Survey invitations sent or planned.")


class CustomerErased(BaseModel):
    """`data` of `customer.erased`: just enough to erase the customer downstream too."""

    external_ref: str
    erased_at: datetime
