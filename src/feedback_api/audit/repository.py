from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.models import AuditLog


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, entry: AuditLog) -> None:
        self.session.add(entry)
