"""The pattern detectors, periodically: solicitation (a location or agent whose in-person
responses are more positive than their peers') and spikes (a sudden run of top scores)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.integrity import solicitation, spikes
from feedback_api.integrity.params import DetectorParams
from feedback_api.integrity.records import Finding
from feedback_api.integrity.repository import PatternRepository
from feedback_api.integrity.service.flags import flags as flag_service
from feedback_api.integrity.service.settings import params_of
from feedback_api.integrity.service.settings import settings as settings_service
from feedback_api.jobs.failures import WorkFailureRepository
from feedback_api.kit.poison import describe, isolate
from feedback_api.kit.time import utcnow

PATTERNS_SOURCE = "integrity.patterns"
# Spikes: how far back each periodic run looks for spiking buckets.
SPIKE_LOOKBACK = timedelta(hours=24)


def spiking(
    params: DetectorParams,
    now: datetime,
    dimension: str,
    ref: str,
    points: list[tuple[datetime, int]],
) -> list[tuple[datetime, spikes.Spike]]:
    """The recent buckets of one location's or agent's series of (bucket start, top
    scores), sorted, that spike against the history before them."""
    width = timedelta(hours=params.spike_window_hours)
    history = timedelta(days=params.spike_history_days)
    earliest = points[0][0]
    found = []
    for start, count in points:
        if start < now - SPIKE_LOOKBACK or count < params.spike_min_count:
            continue
        if start - earliest < history / 2:
            continue  # too little history to call anything sudden
        before = sum(c for s, c in points if start - history <= s < start)
        bucket = spikes.Bucket(dimension, ref, count, before, history / width)
        spike = spikes.check(bucket, min_count=params.spike_min_count, p_value=params.spike_p_value)
        if spike is not None:
            found.append((start, spike))
    return found


class PatternService:
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
        return await PatternRepository(session).active_tenants(now - timedelta(days=2))

    async def patterns_of(self, session: AsyncSession, tenant_id: UUID, now: datetime) -> int:
        """One tenant's patterns, in a savepoint: if they fail, the failure is recorded in
        work_failures (`integrity.patterns`, until a later run succeeds) and the other
        tenants' patterns go on."""
        repo = PatternRepository(session)
        failures = WorkFailureRepository(session)
        linked = 0

        async def work(_: Sequence[UUID]) -> None:
            nonlocal linked
            settings = await settings_service.load(session, tenant_id)
            params = params_of(settings)
            findings = await self._solicitation(repo, tenant_id, params, now)
            findings += await self._spikes(repo, tenant_id, params, now)
            linked = len(await flag_service.record_findings(session, tenant_id, settings, findings))
            await failures.clear(tenant_id, PATTERNS_SOURCE, [str(tenant_id)])

        async def set_aside(_: UUID, exc: Exception) -> None:
            error_type, error = describe(exc)
            await failures.record(tenant_id, PATTERNS_SOURCE, str(tenant_id), error_type, error)

        await isolate(session, PATTERNS_SOURCE, [tenant_id], work, set_aside)
        return linked

    async def skews(
        self,
        repo: PatternRepository,
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
        self, repo: PatternRepository, tenant_id: UUID, params: DetectorParams, now: datetime
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
        self, repo: PatternRepository, tenant_id: UUID, params: DetectorParams, now: datetime
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
                for start, spike in spiking(params, now, dimension, ref, points):
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
                                "top_scores": spike.bucket.top,
                                "expected": round(spike.expected, 4),
                                "history_days": params.spike_history_days,
                                "p_value": spike.p_value,
                            },
                            response_ids=ids,
                        )
                    )
        return findings


patterns = PatternService()
