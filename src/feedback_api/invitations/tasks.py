from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.config import Settings
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.kit.time import utcnow


async def process_due(session: AsyncSession, settings: Settings) -> int:
    """Each worker tick: send, remind and expire what is due (a partial index makes an idle
    check one index probe). A batch commits with its events; a crash repeats nothing."""
    return await invitation_service.process_due(session, utcnow(), settings=settings)
