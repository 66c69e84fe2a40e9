"""Integrity: the screen (every new response, by the worker), the pattern detectors
(solicitation and spikes, periodically), the review queue, settings and rewards.
See docs/integrity.md for the model and every detector's rule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.service import audit as audit_service
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import InvalidRequest
from feedback_api.integrity import bursts, duplicates, near_duplicates, solicitation, spikes
from feedback_api.integrity.incentive import incentive_signal
from feedback_api.integrity.params import DetectorParams
from feedback_api.integrity.provenance import ip_hash, ua_hash
from feedback_api.integrity.records import Finding, Record
from feedback_api.integrity.repository import IntegrityRepository
from feedback_api.integrity.schemas import (
    Decision,
    FlagDetail,
    FlagRead,
    FlagStatus,
    Report,
    ScreenFailure,
    SettingsRead,
    SkewRow,
    TrendRow,
    Uplift,
)
from feedback_api.jobs.failures import WorkFailureRepository
from feedback_api.kit.pagination import paginate
from feedback_api.kit.poison import describe, isolate
from feedback_api.kit.schemas import field_errors
from feedback_api.kit.time import utcnow
from feedback_api.metrics import measures
from feedback_api.metrics.measures import Histogram
from feedback_api.metrics.schemas import Bounds, Period
from feedback_api.models import IntegrityFlag, IntegritySettings

SCREEN_BATCH = 500
# Where the screen's set-aside responses are recorded (work_failures.source).
SCREEN_SOURCE = "integrity.screen"
PATTERNS_SOURCE = "integrity.patterns"
# How many candidate texts one batch compares with at most (a huge ring is still found:
# every member matches the most recent ones).
TEXT_CANDIDATES = 2000
STRONG_INCENTIVE = 0.9
# Spikes: how far back each periodic run looks for spiking buckets.
SPIKE_LOOKBACK = timedelta(hours=24)


def params_of(settings: IntegritySettings) -> DetectorParams:
    # Stored parameters were valid when saved; unknown ones (from a newer version rolled
    # back) are dropped rather than failing the screen.
    known = {k: v for k, v in settings.detectors.items() if k in DetectorParams.model_fields}
    return DetectorParams(**known)


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


def excludes(flag: IntegrityFlag, threshold: float) -> bool:
    return flag.status == "confirmed" or (flag.status == "open" and flag.strength >= threshold)


def flag_read(flag: IntegrityFlag, threshold: float) -> FlagRead:
    return FlagRead(
        id=flag.id,
        type=flag.type,  # type: ignore[arg-type]
        subject_type=flag.subject_type,  # type: ignore[arg-type]
        subject_ref=flag.subject_ref,
        strength=flag.strength,
        evidence=flag.evidence,
        status=flag.status,  # type: ignore[arg-type]
        excludes=excludes(flag, threshold),
        response_count=flag.response_count,
        reason=flag.reason,
        decided_by_key_id=flag.decided_by_key_id,
        decided_at=flag.decided_at,
        created_at=flag.created_at,
        updated_at=flag.updated_at,
    )


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


class IntegrityService:
    # -- provenance ------------------------------------------------------------------------

    async def provenance(
        self, session: AsyncSession, tenant_id: UUID, ip: str | None, user_agent: str | None
    ) -> tuple[str | None, str | None]:
        """Keyed hashes of a public submission's client IP and user agent."""
        salt = await IntegrityRepository(session).salt(tenant_id)
        return ip_hash(salt, ip), ua_hash(salt, user_agent)

    # -- settings --------------------------------------------------------------------------

    def _settings_read(self, settings: IntegritySettings) -> SettingsRead:
        return SettingsRead(
            exclude_threshold=settings.exclude_threshold,
            rewards_enabled=settings.rewards_enabled,
            reward_interval_days=settings.reward_interval_days,
            detectors=params_of(settings),
            updated_at=settings.updated_at,
        )

    async def settings(self, session: AsyncSession, tenant_id: UUID) -> SettingsRead:
        return self._settings_read(await IntegrityRepository(session).settings(tenant_id))

    async def update_settings(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        changes: dict[str, Any],
        *,
        actor_key_id: UUID | None,
    ) -> SettingsRead:
        repo = IntegrityRepository(session)
        settings = await repo.settings(tenant_id)
        now = utcnow()
        if "detectors" in changes:
            merged = {**params_of(settings).model_dump(), **changes["detectors"]}
            try:
                settings.detectors = DetectorParams(**merged).model_dump()
            except ValidationError as exc:
                raise InvalidRequest(
                    "invalid detector parameters",
                    errors=field_errors(exc.errors(include_url=False), ["body", "detectors"]),
                ) from None
        for name in ("exclude_threshold", "reward_interval_days"):
            if name in changes:
                setattr(settings, name, changes[name])
        if "rewards_enabled" in changes:
            if changes["rewards_enabled"] and not settings.rewards_enabled:
                settings.rewards_since = now
            settings.rewards_enabled = changes["rewards_enabled"]
        settings.updated_at = now
        await session.flush()
        if "exclude_threshold" in changes:
            await repo.apply_exclusion(tenant_id, settings.exclude_threshold, None)
        await audit_service.record(
            session,
            tenant_id,
            action="integrity.settings_updated",
            target_type="integrity_settings",
            target_id=str(tenant_id),
            actor_key_id=actor_key_id,
            data={"changed": sorted(changes)},
        )
        return self._settings_read(settings)

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
        repo = IntegrityRepository(session)
        touched: set[UUID] = set()
        created: list[IntegrityFlag] = []
        now = utcnow()
        for finding in findings:
            if not finding.response_ids:
                continue
            flag = await repo.open_flag(
                tenant_id, finding.type, finding.subject_type, finding.subject_ref
            ) or await repo.flag_linking(tenant_id, finding.type, finding.response_ids)
            if flag is None:
                flag = IntegrityFlag(
                    tenant_id=tenant_id,
                    type=finding.type,
                    subject_type=finding.subject_type,
                    subject_ref=finding.subject_ref[:255],
                    strength=finding.strength,
                    evidence=finding.evidence,
                    status="open",
                    response_count=0,
                    created_at=now,
                    updated_at=now,
                )
                await repo.add_flag(flag)
                created.append(flag)
            elif (flag.subject_type, flag.subject_ref) == (
                finding.subject_type,
                finding.subject_ref[:255],
            ):
                # The same subject seen again: the latest evidence, the strongest strength.
                if flag.status == "open":
                    flag.strength = max(flag.strength, finding.strength)
                flag.evidence = finding.evidence
                flag.updated_at = now
            # else: another subject's finding about responses this flag holds (an agent of a
            # flagged location): those join this flag; its evidence stays its own.
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

    # -- the screen (worker ticker) --------------------------------------------------------

    async def screen(
        self, session: AsyncSession, limit: int = SCREEN_BATCH, tenant_id: UUID | None = None
    ) -> int:
        """Screen up to `limit` new responses: duplicates, bursts, near-duplicate texts and
        incentive wording; then rewards. Claimed with SKIP LOCKED, so workers share the
        queue; the flags, exclusions, events and `screened_at` commit together.

        A batch that fails is retried in halves until the responses that fail alone are
        found; those are set aside (`GET /v1/integrity/screen-failures`, marked screened so
        they are not claimed again) and the rest of the batch is screened."""
        repo = IntegrityRepository(session)
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

    async def screen_failures(
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

    async def retry_screen(
        self, session: AsyncSession, tenant_id: UUID, response_ids: list[UUID] | None
    ) -> int:
        """Forget set-aside responses (these, or all) and queue them for the screen again."""
        cleared = await WorkFailureRepository(session).clear(
            tenant_id,
            SCREEN_SOURCE,
            None if response_ids is None else [str(i) for i in response_ids],
        )
        ids = [UUID(i) for i in cleared]
        await IntegrityRepository(session).mark_unscreened(tenant_id, ids)
        return len(ids)

    async def _screen_tenant(
        self, session: AsyncSession, tenant_id: UUID, ids: list[UUID], now: datetime
    ) -> None:
        repo = IntegrityRepository(session)
        settings = await repo.settings(tenant_id)
        params = params_of(settings)
        batch = await repo.records(tenant_id, ids)
        if batch:
            findings = await self._find(repo, tenant_id, params, batch)
            await self.record_findings(session, tenant_id, settings, findings)
        await repo.mark_screened(tenant_id, ids, now)
        if settings.rewards_enabled and batch:
            await self._rewards(session, tenant_id, settings, [r.id for r in batch])

    async def _find(
        self,
        repo: IntegrityRepository,
        tenant_id: UUID,
        params: DetectorParams,
        batch: list[Record],
    ) -> list[Finding]:
        new = {r.id for r in batch}
        first = min(r.occurred_at for r in batch)
        last = max(r.occurred_at for r in batch)
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
            first - reach,
            last + reach,
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

        band_rows = []
        for record in batch:
            text = near_duplicates.eligible(record.comment, params.near_duplicate_min_tokens)
            if text is not None:
                for band, value in enumerate(near_duplicates.bands(text)):
                    band_rows.append((record.id, band, value, record.occurred_at))
        if band_rows:
            await repo.add_bands(tenant_id, band_rows)
            reach_text = timedelta(days=params.near_duplicate_window_days)
            candidates = await repo.band_candidates(
                tenant_id,
                {(band, value) for _, band, value, _ in band_rows},
                first - reach_text,
                last + reach_text,
                TEXT_CANDIDATES,
            )
            texts = {r.id: r for r in [*candidates, *batch]}
            findings += near_duplicates.find(
                list(texts.values()),
                new,
                similarity=params.near_duplicate_similarity,
                min_ring=params.near_duplicate_min_ring,
                min_tokens=params.near_duplicate_min_tokens,
            )

        findings += incentive_findings(batch)
        surveys = await repo.surveys_with_texts(tenant_id, {r.survey for r in batch if r.survey})
        findings += survey_incentives(surveys, batch)
        return findings

    async def _rewards(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        settings: IntegritySettings,
        ids: list[UUID],
    ) -> None:
        """`reward.eligible` for valid responses of identified customers, at most one per
        customer per `reward_interval_days`. The score is never read."""
        repo = IntegrityRepository(session)
        since = settings.rewards_since
        interval = timedelta(days=settings.reward_interval_days)
        rewarded = await repo.grant_rewards(tenant_id, ids, since, interval)
        await event_service.emit(session, tenant_id, EventType.REWARD_ELIGIBLE, rewarded)

    # -- patterns (periodic) ---------------------------------------------------------------

    async def patterns(
        self, session: AsyncSession, now: datetime | None = None, tenant_id: UUID | None = None
    ) -> int:
        """Solicitation and spikes for every tenant with recent responses (or one tenant).
        Returns how many responses were newly linked to flags."""
        now = now or utcnow()
        tenants = [tenant_id] if tenant_id is not None else await self.pattern_tenants(session, now)
        linked = 0
        for tenant in tenants:
            linked += await self.patterns_of(session, tenant, now)
        return linked

    async def pattern_tenants(self, session: AsyncSession, now: datetime) -> list[UUID]:
        return await IntegrityRepository(session).active_tenants(now - timedelta(days=2))

    async def patterns_of(self, session: AsyncSession, tenant_id: UUID, now: datetime) -> int:
        """One tenant's patterns, in a savepoint: if they fail, the failure is recorded in
        work_failures (`integrity.patterns`, until a later run succeeds) and the other
        tenants' patterns go on."""
        repo = IntegrityRepository(session)
        failures = WorkFailureRepository(session)
        linked = 0

        async def work(_: Sequence[UUID]) -> None:
            nonlocal linked
            settings = await repo.settings(tenant_id)
            params = params_of(settings)
            findings = await self._solicitation(repo, tenant_id, params, now)
            findings += await self._spikes(repo, tenant_id, params, now)
            linked = len(await self.record_findings(session, tenant_id, settings, findings))
            await failures.clear(tenant_id, PATTERNS_SOURCE, [str(tenant_id)])

        async def set_aside(_: UUID, exc: Exception) -> None:
            error_type, error = describe(exc)
            await failures.record(tenant_id, PATTERNS_SOURCE, str(tenant_id), error_type, error)

        await isolate(session, PATTERNS_SOURCE, [tenant_id], work, set_aside)
        return linked

    async def skews(
        self,
        repo: IntegrityRepository,
        tenant_id: UUID,
        params: DetectorParams,
        start: datetime,
        end: datetime,
    ) -> list[solicitation.Skew]:
        found: list[solicitation.Skew] = []
        for dimension in ("location", "agent"):
            rows = await repo.group_counts(tenant_id, start, end, dimension)
            totals = {
                (kind, tp): solicitation.PeerTotals(n, pos, ip)
                for ref, kind, tp, n, pos, ip in rows
                if ref is None
            }
            groups = [
                solicitation.GroupCounts(dimension, ref, kind, tp, n, pos, ip)
                for ref, kind, tp, n, pos, ip in rows
                if ref is not None
            ]
            found += solicitation.test_groups(
                groups,
                totals,
                min_n=params.solicitation_min_n,
                fdr=params.solicitation_fdr,
                min_uplift=params.solicitation_min_uplift,
                in_person_share=params.solicitation_in_person_share,
            )
        return found

    async def _solicitation(
        self, repo: IntegrityRepository, tenant_id: UUID, params: DetectorParams, now: datetime
    ) -> list[Finding]:
        start = now - timedelta(days=params.solicitation_period_days)
        findings = []
        for skew in await self.skews(repo, tenant_id, params, start, now):
            if not skew.flagged:
                continue
            g = skew.group
            ids = await repo.in_person_positive(
                tenant_id, g.dimension, g.ref, g.kind, g.touchpoint, start, now
            )
            findings.append(
                Finding(
                    type="solicitation",
                    subject_type=g.dimension,
                    subject_ref=g.ref,
                    strength=skew.strength,
                    evidence={
                        "kind": g.kind,
                        "touchpoint": g.touchpoint,
                        "period_from": start.isoformat(),
                        "period_to": now.isoformat(),
                        "n": g.n,
                        "positive_share": round(skew.share, 4),
                        "peer_n": skew.peer_n,
                        "peer_positive_share": round(skew.peer_share, 4),
                        "z": round(skew.z, 3),
                        "p_value": skew.p_value,
                        "q_value": skew.q_value,
                        "fdr": params.solicitation_fdr,
                        "in_person_share": round(skew.in_person_share, 4),
                        "peer_in_person_share": round(skew.peer_in_person_share, 4),
                    },
                    response_ids=ids,
                )
            )
        return findings

    async def _spikes(
        self, repo: IntegrityRepository, tenant_id: UUID, params: DetectorParams, now: datetime
    ) -> list[Finding]:
        width = timedelta(hours=params.spike_window_hours)
        history = timedelta(days=params.spike_history_days)
        findings = []
        for dimension in ("location", "agent"):
            rows = await repo.top_buckets(
                tenant_id, dimension, now - SPIKE_LOOKBACK - history, now, params.spike_window_hours
            )
            series: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
            for ref, start, count in rows:
                series[ref].append((start, count))
            for ref, points in series.items():
                points.sort()
                earliest = points[0][0]
                for start, count in points:
                    if start < now - SPIKE_LOOKBACK or count < params.spike_min_count:
                        continue
                    if start - earliest < history / 2:
                        continue  # too little history to call anything sudden
                    before = sum(c for s, c in points if start - history <= s < start)
                    bucket = spikes.Bucket(dimension, ref, count, before, history / width)
                    spike = spikes.check(
                        bucket, min_count=params.spike_min_count, p_value=params.spike_p_value
                    )
                    if spike is None:
                        continue
                    ids = await repo.top_ids(tenant_id, dimension, ref, start, start + width)
                    findings.append(
                        Finding(
                            type="spike",
                            subject_type=dimension,
                            subject_ref=ref,
                            strength=spike.strength,
                            evidence={
                                "bucket_from": start.isoformat(),
                                "bucket_hours": params.spike_window_hours,
                                "top_scores": count,
                                "expected": round(spike.expected, 4),
                                "history_days": params.spike_history_days,
                                "p_value": spike.p_value,
                            },
                            response_ids=ids,
                        )
                    )
        return findings

    # -- review queue ----------------------------------------------------------------------

    async def get(self, session: AsyncSession, tenant_id: UUID, flag_id: UUID) -> FlagDetail:
        repo = IntegrityRepository(session)
        flag = await repo.flag(tenant_id, flag_id)
        settings = await repo.settings(tenant_id)
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
        repo = IntegrityRepository(session)
        flag = await repo.flag(tenant_id, flag_id, lock=True)
        settings = await repo.settings(tenant_id)
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
        repo = IntegrityRepository(session)
        wanted = list(dict.fromkeys(response_ids))
        found = await repo.existing_responses(tenant_id, wanted)
        missing = [str(r) for r in wanted if r not in found]
        if missing:
            raise InvalidRequest(
                "unknown responses",
                errors=[
                    {"loc": ["body", "response_ids"], "code": "not_found", "message": m}
                    for m in missing[:20]
                ],
            )
        settings = await repo.settings(tenant_id)
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
        repo = IntegrityRepository(session)
        settings = await repo.settings(tenant_id)
        rows = list(await repo.flag_page(tenant_id, after=after, limit=limit + 1, **filters))
        page, cursor = paginate(rows, limit, lambda f: (f.created_at, f.id))
        return [flag_read(f, settings.exclude_threshold) for f in page], cursor

    async def report(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        start: datetime,
        end: datetime,
        period: Period,
    ) -> Report:
        repo = IntegrityRepository(session)
        settings = await repo.settings(tenant_id)
        params = params_of(settings)
        n, verified, excluded = await repo.totals(tenant_id, start, end)
        skewed = [
            SkewRow(
                dimension=k.group.dimension,
                ref=k.group.ref,
                kind=k.group.kind,
                touchpoint=k.group.touchpoint,
                n=k.group.n,
                positive_share=round(k.share, 4),
                peer_n=k.peer_n,
                peer_positive_share=round(k.peer_share, 4),
                uplift=round(k.uplift, 4),
                z=round(k.z, 3),
                p_value=k.p_value,
                q_value=k.q_value,
                in_person_share=round(k.in_person_share, 4),
                flagged=k.flagged,
            )
            for k in await self.skews(repo, tenant_id, params, start, end)
            if k.skewed
        ]
        skewed.sort(key=lambda row: row.q_value)
        in_person, other = Histogram(0, 10), Histogram(0, 10)
        for is_in_person, score, count in await repo.nps_by_in_person(tenant_id, start, end):
            (in_person if is_in_person else other).add(score, count)
        raw = measures.compare("nps", other, in_person)
        uplift = Uplift(
            in_person_n=in_person.n,
            other_n=other.n,
            in_person_nps=measures.measure("nps", in_person, 0.95).value,
            other_nps=measures.measure("nps", other, 0.95).value,
            difference=None if raw is None else round(raw.delta, 3),
            interval=None
            if raw is None or raw.interval is None
            else Bounds(low=raw.interval.low, high=raw.interval.high),
            p_value=None if raw is None else raw.p_value,
        )
        zone = period.timezone
        trend = [
            TrendRow(
                start=week.replace(tzinfo=ZoneInfo(zone)) if week.tzinfo is None else week,
                responses=a,
                verified=b,
                excluded=c,
                flags_created=d,
            )
            for week, a, b, c, d in await repo.weekly(tenant_id, start, end, zone)
        ]
        return Report(
            period=period,
            responses=n,
            verified=verified,
            verified_share=round(verified / n, 4) if n else None,
            excluded=excluded,
            excluded_by_type=await repo.excluded_by_type(
                tenant_id, start, end, settings.exclude_threshold
            ),
            flags_by_type=await repo.flags_by_type(tenant_id, start, end),
            skewed=skewed,
            in_person_uplift=uplift,
            trend=trend,
        )

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
        repo = IntegrityRepository(session)
        await repo.forget_texts(tenant_id, response_ids)
        await repo.forget_rewards(tenant_id, response_ids)
        flags, remaining = await repo.detach(tenant_id, response_ids)
        erased = {str(i) for i in response_ids}
        emptied: list[UUID] = []
        replacements: dict[str, str | None] = {}
        for flag in flags:
            first = remaining[flag.id]
            if first is None:
                emptied.append(flag.id)
                replacements[str(flag.id)] = None
                continue
            replacement = replacements[str(flag.id)] = str(first)
            subject = replacement if flag.subject_ref in erased else flag.subject_ref
            evidence = without_responses(flag.evidence, erased, replacement)
            if (subject, evidence) != (flag.subject_ref, flag.evidence):
                await repo.rewrite_flag(tenant_id, flag.id, subject, evidence)
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


integrity = IntegrityService()
