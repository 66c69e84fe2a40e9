from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Selection:
    """Which responses a metric counts. Text filters match exactly; `attributes` match the
    customer's attributes (as text)."""

    tenant_id: UUID
    kind: str
    scale_min: int
    scale_max: int
    channel: str | None = None
    touchpoint: str | None = None
    survey: str | None = None
    tag: str | None = None
    agent_ref: str | None = None
    location_ref: str | None = None
    language: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    verified_only: bool = False
    # Responses with at least one of these tags (None: with no tag), each counted once: the
    # `other` row of a breakdown by tag.
    tag_any: tuple[str | None, ...] = ()

    @property
    def rollup_ready(self) -> bool:
        """Whether the rollup holds what this selection filters on."""
        return (
            self.tag is None
            and self.agent_ref is None
            and self.location_ref is None
            and self.language is None
            and not self.attributes
            and not self.tag_any
        )
