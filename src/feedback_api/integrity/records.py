"""What the detectors read and what they find. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

IN_PERSON_CHANNELS = frozenset({"in_person"})
# The lowest score counted as positive ("top") per kind; ratings use their scale's maximum.
POSITIVE_FROM = {"nps": 9, "csat": 4, "ces": 5}


@dataclass(frozen=True, slots=True)
class Record:
    id: UUID
    kind: str
    score: int
    scale_max: int
    occurred_at: datetime
    channel: str = "web"
    customer_id: UUID | None = None
    touchpoint: str | None = None
    survey: str | None = None
    agent_ref: str | None = None
    location_ref: str | None = None
    ip_hash: str | None = None
    ua_hash: str | None = None
    publishable_key_id: UUID | None = None
    comment: str | None = None

    @property
    def positive(self) -> bool:
        return self.score >= POSITIVE_FROM.get(self.kind, self.scale_max)

    @property
    def in_person(self) -> bool:
        return self.channel in IN_PERSON_CHANNELS

    @property
    def device(self) -> str | None:
        if self.ip_hash is None or self.ua_hash is None:
            return None
        return f"{self.ip_hash}:{self.ua_hash}"

    @property
    def author(self) -> str:
        """Who wrote it, as far as we can tell: the customer, else the device, else nobody
        known (the response itself)."""
        if self.customer_id is not None:
            return f"customer:{self.customer_id}"
        return f"device:{self.device}" if self.device else f"response:{self.id}"


@dataclass(slots=True)
class Finding:
    """One detector's conclusion about a subject, with the responses it concerns."""

    type: str
    subject_type: str
    subject_ref: str
    strength: float
    evidence: dict[str, Any]
    response_ids: list[UUID] = field(default_factory=list)
