"""Payload formats beside Standard Webhooks, chosen per endpoint (`format`): each is
provided, through a slot connected at assembly, by the layer that knows it (`delighted`:
the Delighted compatibility layer), so the webhooks domain imports none of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import InvalidRequest
from feedback_api.kit.hooks import Slot
from feedback_api.models import Event

STANDARD = "standard"

#: (session, tenant, events) → each expressible event's body, by event id; reads only. An
#: event left out is one the format cannot express: its delivery fails without being sent.
Shaper = Callable[[AsyncSession, UUID, Sequence[Event]], Awaitable[dict[UUID, str]]]


@dataclass(frozen=True, slots=True)
class WebhookFormat:
    #: The event types it can express: an endpoint of this format subscribes to these only
    #: (all of them when it names none).
    event_types: tuple[str, ...]
    #: Of those, the events it expresses (e.g. only opt-outs of e-mail).
    wants: Callable[[Event], bool]
    shape: Shaper
    #: (the endpoint's secret, the body) → the headers that go with it, signature included.
    sign: Callable[[str, str], dict[str, str]]


formats: Slot[Mapping[str, WebhookFormat]] = Slot("webhooks.formats")


def format_of(name: str) -> WebhookFormat | None:
    """None for Standard Webhooks."""
    return None if name == STANDARD else formats.get()[name]


def checked_event_types(name: str, event_types: list[str]) -> list[str]:
    """The filter an endpoint of this format keeps: a format's endpoint gets only what the
    format can express (all of it when the filter is empty)."""
    shape = format_of(name)
    if shape is None:
        return event_types
    if not event_types:
        return list(shape.event_types)
    refused = [t for t in event_types if t not in shape.event_types]
    if refused:
        raise InvalidRequest.at(
            ("body", "event_types"),
            "event_type_not_in_format",
            f"the {name} format carries only {', '.join(shape.event_types)}; "
            f"not {', '.join(refused)}",
        )
    return event_types
