"""Bursts: many public submissions from one source in a short time.

Rule: for each source (IP hash, device = IP and user-agent hash, and, when the tenant sets a
limit, publishable key), responses are ordered in time; whenever more than the source's
limit fall within `burst_window_minutes`, every response in that window is part of the
burst. One finding per source covers all of its burst responses. Strength grows with how far
the limit is exceeded: 0.8 just over it, 0.95 at three times it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from uuid import UUID

from feedback_api.integrity.records import Finding, Record


def strength(count: int, limit: int) -> float:
    return round(min(0.95, 0.8 + 0.075 * (count / limit - 1)), 3)


def _sources(record: Record) -> list[tuple[str, str]]:
    found = []
    if record.ip_hash:
        found.append(("ip", record.ip_hash))
    if record.device:
        found.append(("device", record.device))
    if record.publishable_key_id:
        found.append(("key", str(record.publishable_key_id)))
    return found


def find(
    records: Iterable[Record], window: timedelta, limits: dict[str, int | None], new: set[UUID]
) -> list[Finding]:
    by_source: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        for source in _sources(record):
            if limits.get(source[0]) is not None:
                by_source[source].append(record)
    findings: list[Finding] = []
    claimed: set[UUID] = set()  # a response joins one burst finding, the first source's
    order = {"ip": 0, "device": 1, "key": 2}
    for (kind, ref), members in sorted(by_source.items(), key=lambda i: order[i[0][0]]):
        limit = limits[kind]
        assert limit is not None
        if len(members) <= limit:
            continue
        members.sort(key=lambda r: r.occurred_at)
        in_burst: set[int] = set()
        peak = 0
        start = 0
        for end in range(len(members)):
            while members[end].occurred_at - members[start].occurred_at > window:
                start += 1
            count = end - start + 1
            if count > limit:
                in_burst.update(range(start, end + 1))
                peak = max(peak, count)
        ids = [members[i].id for i in sorted(in_burst) if members[i].id not in claimed]
        if not ids or not new.intersection(ids):
            continue
        findings.append(
            Finding(
                type="burst",
                subject_type="source",
                subject_ref=f"{kind}:{ref}",
                strength=strength(peak, limit),
                evidence={
                    "source": kind,
                    "peak": peak,
                    "limit": limit,
                    "window_minutes": window.total_seconds() / 60,
                    "first_at": members[min(in_burst)].occurred_at.isoformat(),
                    "last_at": members[max(in_burst)].occurred_at.isoformat(),
                },
                response_ids=ids,
            )
        )
        claimed.update(ids)
    return findings
