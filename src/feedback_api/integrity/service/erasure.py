"""Integrity's part of erasing a customer (privacy.service), whose responses stay, anonymous."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.service import audit as audit_service
from feedback_api.events.service import event as event_service
from feedback_api.integrity.repository import FlagRepository, QueueRepository, RewardRepository
from feedback_api.models import IntegrityFlag


def without_responses(
    evidence: dict[str, Any], erased: set[str], replacement: str | None
) -> dict[str, Any]:
    """A flag's evidence without these responses' ids: dropped from lists, and a single one
    (`first_response_id`) replaced by `replacement` (the flag's earliest remaining
    response) or, without one, dropped."""
    kept: dict[str, Any] = {}
    for key, value in evidence.items():
        if isinstance(value, str) and value in erased:
            if replacement is not None:
                kept[key] = replacement
        elif isinstance(value, list):
            kept[key] = [v for v in value if not (isinstance(v, str) and v in erased)]
        else:
            kept[key] = value
    return kept


class ErasureService:
    async def forget_responses(
        self, session: AsyncSession, tenant_id: UUID, response_ids: Sequence[UUID]
    ) -> list[UUID]:
        """Erasure of a customer whose responses stay, anonymous: drop what was derived from
        their comments (text bands) and their reward grants, and untie the responses from
        each other in the flags. Each response leaves every flag it was in for a flag of its
        own (`evidence: {"detached": true}`, same type, status and strength), so what was
        excluded stays excluded and no number moves; a flag left with no response (one about
        the customer alone: their duplicates, their incentive wording) goes, with the
        reasons its decisions gave. The flags that stay lose these responses' ids from
        subject and evidence, and so do the stored payloads of every flag's
        `integrity.flag_*` events. Returns the events rewritten."""
        if not response_ids:
            return []
        await QueueRepository(session).forget_texts(tenant_id, response_ids)
        await RewardRepository(session).forget(tenant_id, response_ids)
        repo = FlagRepository(session)
        flags, remaining = await repo.detach(tenant_id, response_ids)
        erased = {str(i) for i in response_ids}
        replacements = await self._rewrite_flags(repo, tenant_id, flags, remaining, erased)
        emptied = [flag.id for flag in flags if remaining[flag.id] is None]
        await repo.delete_flags(tenant_id, emptied)
        await audit_service.forget_texts(
            session, tenant_id, "integrity_flag", [str(i) for i in emptied], ["reason"]
        )

        def change(data: dict[str, Any]) -> dict[str, Any]:
            replacement = replacements[str(data.get("id"))]
            if replacement is None:  # the flag is gone: so is what it said
                return {**data, "subject_ref": None, "evidence": {}, "reason": None}
            subject = data.get("subject_ref")
            return {
                **data,
                "subject_ref": replacement if subject in erased else subject,
                "evidence": without_responses(data.get("evidence") or {}, erased, replacement),
            }

        return await event_service.rewrite(
            session, tenant_id, "integrity.flag_", "id", list(replacements), change
        )

    async def _rewrite_flags(
        self,
        repo: FlagRepository,
        tenant_id: UUID,
        flags: Sequence[IntegrityFlag],
        remaining: dict[UUID, UUID | None],
        erased: set[str],
    ) -> dict[str, str | None]:
        """Each flag's earliest remaining response, which takes the erased ones' place in
        its subject and evidence (None: the flag has none left)."""
        replacements: dict[str, str | None] = {}
        for flag in flags:
            first = remaining[flag.id]
            if first is None:
                replacements[str(flag.id)] = None
                continue
            replacement = replacements[str(flag.id)] = str(first)
            subject = replacement if flag.subject_ref in erased else flag.subject_ref
            evidence = without_responses(flag.evidence, erased, replacement)
            if (subject, evidence) != (flag.subject_ref, flag.evidence):
                await repo.rewrite_flag(tenant_id, flag.id, subject, evidence)
        return replacements


erasure = ErasureService()
