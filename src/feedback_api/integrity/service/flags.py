"""Flags: findings stored as flags (and the exclusion they decide), and the review queue
where people confirm, dismiss or raise them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.service import audit as audit_service
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import InvalidRequest, NotFound
from feedback_api.integrity.records import Finding
from feedback_api.integrity.repository import FlagRepository
from feedback_api.integrity.schemas import Decision, FlagDetail, FlagRead, FlagStatus
from feedback_api.integrity.service.settings import settings as settings_service
from feedback_api.kit.pagination import paginate
from feedback_api.kit.time import utcnow
from feedback_api.models import IntegrityFlag, IntegritySettings

# FlagRead's fields that are the flag's own columns (`excludes` depends on the settings).
_COLUMNS = tuple(name for name in FlagRead.model_fields if name != "excludes")


def excludes(flag: IntegrityFlag, threshold: float) -> bool:
    return flag.status == "confirmed" or (flag.status == "open" and flag.strength >= threshold)


def flag_read(flag: IntegrityFlag, threshold: float) -> FlagRead:
    values = {name: getattr(flag, name) for name in _COLUMNS}
    return FlagRead.model_validate({**values, "excludes": excludes(flag, threshold)})


class FlagService:
    # -- findings --------------------------------------------------------------------------

    async def record_findings(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        settings: IntegritySettings,
        findings: Sequence[Finding],
    ) -> set[UUID]:
        """Store findings as flags (extending the open flag about the same subject, or the
        flag that already holds one of its responses), link their responses, emit
        `integrity.flag_created`, and update exclusion. Returns the responses linked."""
        repo = FlagRepository(session)
        touched: set[UUID] = set()
        created: list[IntegrityFlag] = []
        now = utcnow()
        for finding in findings:
            if not finding.response_ids:
                continue
            flag, new = await self._flag_for(repo, tenant_id, finding, now)
            if new:
                created.append(flag)
            linked = await repo.link(tenant_id, flag.id, finding.type, finding.response_ids)
            touched.update(linked)
        if touched:
            await repo.apply_exclusion(tenant_id, settings.exclude_threshold, touched)
        if created:
            # response_count changed in SQL (link): read it back in one query, not per flag
            counts = await repo.response_counts(tenant_id, [f.id for f in created])
            for flag in created:
                flag.response_count = counts[flag.id]
            await event_service.emit(
                session,
                tenant_id,
                EventType.INTEGRITY_FLAG_CREATED,
                [flag_read(f, settings.exclude_threshold) for f in created],
            )
        return touched

    async def _flag_for(
        self, repo: FlagRepository, tenant_id: UUID, finding: Finding, now: datetime
    ) -> tuple[IntegrityFlag, bool]:
        """The flag a finding goes to, and whether it is new."""
        subject_ref = finding.subject_ref[:255]
        flag = await repo.open_flag(
            tenant_id, finding.type, finding.subject_type, finding.subject_ref
        ) or await repo.flag_linking(tenant_id, finding.type, finding.response_ids)
        if flag is None:
            flag = IntegrityFlag(
                tenant_id=tenant_id,
                type=finding.type,
                subject_type=finding.subject_type,
                subject_ref=subject_ref,
                strength=finding.strength,
                evidence=finding.evidence,
                status="open",
                response_count=0,
                created_at=now,
                updated_at=now,
            )
            await repo.add_flag(flag)
            return flag, True
        if (flag.subject_type, flag.subject_ref) == (finding.subject_type, subject_ref):
            # The same subject seen again: the latest evidence, the strongest strength.
            if flag.status == "open":
                flag.strength = max(flag.strength, finding.strength)
            flag.evidence = finding.evidence
            flag.updated_at = now
        # else: another subject's finding about responses this flag holds (an agent of a
        # flagged location): those join this flag; its evidence stays its own.
        return flag, False

    # -- review queue ----------------------------------------------------------------------

    async def get(self, session: AsyncSession, tenant_id: UUID, flag_id: UUID) -> FlagDetail:
        repo = FlagRepository(session)
        flag = await repo.flag(tenant_id, flag_id)
        if flag is None:
            raise NotFound("no such flag")
        settings = await settings_service.load(session, tenant_id)
        decisions = [
            Decision(
                status=entry.data.get("to", "open"),
                reason=entry.data.get("reason"),
                key_id=entry.actor_key_id,
                at=entry.created_at,
            )
            for entry in await repo.decisions(tenant_id, flag_id)
        ]
        return FlagDetail(
            **flag_read(flag, settings.exclude_threshold).model_dump(),
            response_ids=await repo.linked_ids(tenant_id, flag_id, limit=1000),
            decisions=decisions,
        )

    async def decide(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        flag_id: UUID,
        status: FlagStatus,
        reason: str,
        *,
        actor_key_id: UUID,
    ) -> FlagDetail:
        """Confirm or dismiss (again: a decision can be changed, and each is audited)."""
        repo = FlagRepository(session)
        flag = await repo.flag(tenant_id, flag_id, lock=True)
        if flag is None:
            raise NotFound("no such flag")
        settings = await settings_service.load(session, tenant_id)
        before = flag.status
        now = utcnow()
        flag.status = status.value
        flag.reason = reason
        flag.decided_by_key_id = actor_key_id
        flag.decided_at = now
        flag.updated_at = now
        await session.flush()
        # In SQL, not through a list of ids: a flag may hold many thousands of responses.
        await repo.apply_exclusion(tenant_id, settings.exclude_threshold, None, flag_id=flag_id)
        await audit_service.record(
            session,
            tenant_id,
            action=f"integrity.flag_{status.value}",
            target_type="integrity_flag",
            target_id=str(flag_id),
            actor_key_id=actor_key_id,
            data={"from": before, "to": status.value, "reason": reason},
        )
        await session.refresh(flag)
        await event_service.emit(
            session,
            tenant_id,
            EventType.INTEGRITY_FLAG_RESOLVED,
            [flag_read(flag, settings.exclude_threshold)],
        )
        return await self.get(session, tenant_id, flag_id)

    async def create_manual(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        response_ids: Sequence[UUID],
        reason: str,
        *,
        actor_key_id: UUID,
    ) -> FlagDetail:
        """A person's flag: confirmed at once, so its responses leave the metrics; it can
        be dismissed later like any other."""
        repo = FlagRepository(session)
        wanted = list(dict.fromkeys(response_ids))
        found = await repo.existing_responses(tenant_id, wanted)
        missing = [str(r) for r in wanted if r not in found]
        if missing:
            loc = ("body", "response_ids")
            raise InvalidRequest(
                "unknown responses",
                errors=[InvalidRequest.error(loc, "not_found", m) for m in missing[:20]],
            )
        settings = await settings_service.load(session, tenant_id)
        now = utcnow()
        flag = IntegrityFlag(
            tenant_id=tenant_id,
            type="manual",
            subject_type="response",
            subject_ref=str(wanted[0]),
            strength=1.0,
            evidence={"responses": len(wanted)},
            status="confirmed",
            response_count=0,
            reason=reason,
            decided_by_key_id=actor_key_id,
            decided_at=now,
        )
        await repo.add_flag(flag)
        await repo.link(tenant_id, flag.id, "manual", wanted)
        await repo.apply_exclusion(tenant_id, settings.exclude_threshold, wanted)
        await audit_service.record(
            session,
            tenant_id,
            action="integrity.flag_confirmed",
            target_type="integrity_flag",
            target_id=str(flag.id),
            actor_key_id=actor_key_id,
            data={"from": None, "to": "confirmed", "reason": reason},
        )
        await session.refresh(flag)
        read = flag_read(flag, settings.exclude_threshold)
        await event_service.emit(session, tenant_id, EventType.INTEGRITY_FLAG_CREATED, [read])
        return await self.get(session, tenant_id, flag.id)

    async def page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        filters: dict[str, Any],
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> tuple[list[FlagRead], str | None]:
        settings = await settings_service.load(session, tenant_id)
        repo = FlagRepository(session)
        rows = list(await repo.flag_page(tenant_id, after=after, limit=limit + 1, **filters))
        page, cursor = paginate(rows, limit, lambda f: (f.created_at, f.id))
        return [flag_read(f, settings.exclude_threshold) for f in page], cursor


flags = FlagService()
