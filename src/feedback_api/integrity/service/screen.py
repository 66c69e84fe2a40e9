"""The screen: every new response, by the worker, through the per-response detectors
(duplicates, bursts, near-duplicate texts, incentive wording), then rewards."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.integrity import bursts, duplicates, near_duplicates
from feedback_api.integrity.incentive import incentive_signal
from feedback_api.integrity.params import DetectorParams
from feedback_api.integrity.records import Finding, Record
from feedback_api.integrity.repository import QueueRepository, RewardRepository
from feedback_api.integrity.schemas import RewardEligible, ScreenFailure
from feedback_api.integrity.service.flags import flags as flag_service
from feedback_api.integrity.service.settings import params_of
from feedback_api.integrity.service.settings import settings as settings_service
from feedback_api.jobs.failures import WorkFailureRepository
from feedback_api.kit.pagination import paginate
from feedback_api.kit.poison import describe, isolate
from feedback_api.kit.time import utcnow
from feedback_api.models import IntegritySettings

SCREEN_BATCH = 500
# Where the screen's set-aside responses are recorded (work_failures.source).
SCREEN_SOURCE = "integrity.screen"
# How many candidate texts one batch compares with at most (a huge ring is still found:
# every member matches the most recent ones).
TEXT_CANDIDATES = 2000
STRONG_INCENTIVE = 0.9


def incentive_findings(batch: Sequence[Record]) -> list[Finding]:
    findings = []
    for record in batch:
        signal = incentive_signal(record.comment)
        if signal.strength >= STRONG_INCENTIVE:
            findings.append(
                Finding(
                    type="incentive",
                    subject_type="response",
                    subject_ref=str(record.id),
                    strength=signal.strength,
                    evidence={"in": "comment", "matches": [m[:80] for m in signal.matches[:5]]},
                    response_ids=[record.id],
                )
            )
    return findings


def survey_incentives(surveys: Sequence[Any], batch: Sequence[Record]) -> list[Finding]:
    """Responses to a survey whose own texts offer a reward for a rating."""
    findings = []
    for survey in surveys:
        texts = [
            text
            for field in (survey.question, survey.follow_up, survey.thank_you)
            for text in (field or {}).values()
        ]
        signals = [incentive_signal(t) for t in texts]
        strong = [m for s in signals if s.strength >= STRONG_INCENTIVE for m in s.matches]
        ids = [r.id for r in batch if r.survey == survey.key]
        if strong and ids:
            findings.append(
                Finding(
                    type="incentive",
                    subject_type="survey",
                    subject_ref=survey.key,
                    strength=STRONG_INCENTIVE,
                    evidence={"in": "survey", "matches": [m[:80] for m in strong[:5]]},
                    response_ids=ids,
                )
            )
    return findings


class ScreenService:
    async def screen(
        self, session: AsyncSession, limit: int = SCREEN_BATCH, tenant_id: UUID | None = None
    ) -> int:
        """Screen up to `limit` new responses: duplicates, bursts, near-duplicate texts and
        incentive wording; then rewards. Claimed with SKIP LOCKED, so workers share the
        queue; the flags, exclusions, events and `screened_at` commit together.

        A batch that fails is retried in halves until the responses that fail alone are
        found; those are set aside (`GET /v1/integrity/screen-failures`, marked screened so
        they are not claimed again) and the rest of the batch is screened."""
        repo = QueueRepository(session)
        claimed = await repo.claim_unscreened(limit, tenant_id)
        by_tenant: dict[UUID, list[UUID]] = defaultdict(list)
        for tenant_id, response_id in claimed:
            by_tenant[tenant_id].append(response_id)
        now = utcnow()
        for tenant_id, ids in by_tenant.items():

            async def work(part: Sequence[UUID], tenant_id: UUID = tenant_id) -> None:
                await self._screen_tenant(session, tenant_id, list(part), now)

            async def set_aside(
                response_id: UUID, exc: Exception, tenant_id: UUID = tenant_id
            ) -> None:
                error_type, error = describe(exc)
                await WorkFailureRepository(session).record(
                    tenant_id, SCREEN_SOURCE, str(response_id), error_type, error
                )
                await repo.mark_screened(tenant_id, [response_id], now)

            await isolate(session, SCREEN_SOURCE, ids, work, set_aside)
        return len(claimed)

    async def failures(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[ScreenFailure], str | None]:
        rows = await WorkFailureRepository(session).page(
            tenant_id, SCREEN_SOURCE, limit=limit + 1, after=after
        )
        rows, cursor = paginate(rows, limit, lambda f: (f.failed_at, f.id))
        return [
            ScreenFailure(
                response_id=UUID(f.subject_id),
                error_type=f.error_type,
                error=f.error,
                failed_at=f.failed_at,
            )
            for f in rows
        ], cursor

    async def retry(
        self, session: AsyncSession, tenant_id: UUID, response_ids: list[UUID] | None
    ) -> int:
        """Forget set-aside responses (these, or all) and queue them for the screen again."""
        cleared = await WorkFailureRepository(session).clear(
            tenant_id,
            SCREEN_SOURCE,
            None if response_ids is None else [str(i) for i in response_ids],
        )
        ids = [UUID(i) for i in cleared]
        await QueueRepository(session).mark_unscreened(tenant_id, ids)
        return len(ids)

    async def _screen_tenant(
        self, session: AsyncSession, tenant_id: UUID, ids: list[UUID], now: datetime
    ) -> None:
        repo = QueueRepository(session)
        settings = await settings_service.load(session, tenant_id)
        params = params_of(settings)
        batch = await repo.records(tenant_id, ids)
        if batch:
            findings = await self._find(repo, tenant_id, params, batch)
            await flag_service.record_findings(session, tenant_id, settings, findings)
        await repo.mark_screened(tenant_id, ids, now)
        if settings.rewards_enabled and batch:
            await self._rewards(session, tenant_id, settings, [r.id for r in batch])

    async def _find(
        self, repo: QueueRepository, tenant_id: UUID, params: DetectorParams, batch: list[Record]
    ) -> list[Finding]:
        findings = await self._by_source(repo, tenant_id, params, batch)
        findings += await self._by_text(repo, tenant_id, params, batch)
        findings += incentive_findings(batch)
        surveys = await repo.surveys_with_texts(tenant_id, {r.survey for r in batch if r.survey})
        findings += survey_incentives(surveys, batch)
        return findings

    async def _by_source(
        self, repo: QueueRepository, tenant_id: UUID, params: DetectorParams, batch: list[Record]
    ) -> list[Finding]:
        """Duplicates and bursts: the batch against what its customers, IPs and keys sent
        around the same time."""
        new = {r.id for r in batch}
        dup_window = timedelta(hours=params.duplicate_window_hours)
        burst_window = timedelta(minutes=params.burst_window_minutes)
        reach = max(dup_window, burst_window)
        limits: dict[str, int | None] = {
            "ip": params.burst_ip_max,
            "device": params.burst_device_max,
            "key": params.burst_key_max,
        }
        context = await repo.context(
            tenant_id,
            min(r.occurred_at for r in batch) - reach,
            max(r.occurred_at for r in batch) + reach,
            customer_ids={r.customer_id for r in batch if r.customer_id},
            ip_hashes={r.ip_hash for r in batch if r.ip_hash},
            key_ids=(
                {r.publishable_key_id for r in batch if r.publishable_key_id}
                if params.burst_key_max is not None
                else set()
            ),
        )
        pool = {r.id: r for r in [*context, *batch]}
        findings = duplicates.find(pool.values(), dup_window, new)
        findings += bursts.find(pool.values(), burst_window, limits, new)
        return findings

    async def _by_text(
        self, repo: QueueRepository, tenant_id: UUID, params: DetectorParams, batch: list[Record]
    ) -> list[Finding]:
        """Near-duplicate texts: stores the batch's text bands, then compares with the
        texts that share enough of them."""
        band_rows = []
        for record in batch:
            text = near_duplicates.eligible(record.comment, params.near_duplicate_min_tokens)
            if text is not None:
                for band, value in enumerate(near_duplicates.bands(text)):
                    band_rows.append((record.id, band, value, record.occurred_at))
        if not band_rows:
            return []
        await repo.add_bands(tenant_id, band_rows)
        reach = timedelta(days=params.near_duplicate_window_days)
        candidates = await repo.band_candidates(
            tenant_id,
            {(band, value) for _, band, value, _ in band_rows},
            min(r.occurred_at for r in batch) - reach,
            max(r.occurred_at for r in batch) + reach,
            TEXT_CANDIDATES,
        )
        texts = {r.id: r for r in [*candidates, *batch]}
        return near_duplicates.find(
            list(texts.values()),
            {r.id for r in batch},
            similarity=params.near_duplicate_similarity,
            min_ring=params.near_duplicate_min_ring,
            min_tokens=params.near_duplicate_min_tokens,
        )

    async def _rewards(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        settings: IntegritySettings,
        ids: list[UUID],
    ) -> None:
        """`reward.eligible` for valid responses of identified customers, at most one per
        customer per `reward_interval_days`. The score is never read."""
        since = settings.rewards_since
        interval = timedelta(days=settings.reward_interval_days)
        granted = await RewardRepository(session).grant(tenant_id, ids, since, interval)
        rewarded = [RewardEligible.model_validate(g, from_attributes=True) for g in granted]
        await event_service.emit(session, tenant_id, EventType.REWARD_ELIGIBLE, rewarded)


screening = ScreenService()
