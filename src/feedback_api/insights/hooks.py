"""What the insights domain needs from domains above it, provided at assembly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.insights.schemas import Effort
from feedback_api.kit.hooks import Slot

#: (session, tenant, low-effort days) → effort by (dimension, key): the priority matrix's
#: efforts, from the improvement actions linked to themes and touchpoints.
EffortSource = Callable[[AsyncSession, UUID, float], Awaitable[Mapping[tuple[str, str], Effort]]]
efforts: Slot[EffortSource] = Slot("insights.efforts")
