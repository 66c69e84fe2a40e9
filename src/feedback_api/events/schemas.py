from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field


class EventRead(BaseModel):
    id: UUID
    type: str = Field(description="`noun.verb`, e.g. `response.created`.")
    occurred_at: datetime
    schema_version: int = Field(description="Rises when this type's `data` changes shape.")
    data: dict[str, Any] = Field(description="The resource as the API shows it.")


class EventPage(BaseModel):
    items: list[EventRead]
    next_cursor: str | None = Field(
        description="Where to continue: pass it as `after` next time, also when `items` was "
        "empty. Null only when there has never been an event to read."
    )
    has_more: bool = Field(description="More events are ready now: ask again at once.")
