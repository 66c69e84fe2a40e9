"""Duplicates: one person rating the same thing again and again.

Rule: responses of one customer (or, when anonymous, one device) about the same kind and
touchpoint (else survey) are ordered in time; the first counts, and every later one within
`duplicate_window_hours` of it is a duplicate. A response outside the window starts a new
window. An identified customer gives strength 0.9; a device (IP and user-agent hash, which a
household or office can share) 0.6, below the default exclusion threshold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from uuid import UUID

from feedback_api.integrity.records import Finding, Record

CUSTOMER_STRENGTH = 0.9
DEVICE_STRENGTH = 0.6


def _key(record: Record) -> tuple[str, str, str] | None:
    about = record.touchpoint or (f"survey:{record.survey}" if record.survey else None)
    if about is None:
        return None  # nothing says two answers are about the same thing
    if record.customer_id is not None:
        return ("customer", str(record.customer_id), f"{record.kind}:{about}")
    if record.device is not None:
        return ("device", record.device, f"{record.kind}:{about}")
    return None


def find(records: Iterable[Record], window: timedelta, new: set[UUID]) -> list[Finding]:
    """Duplicates among `records` (the new ones and their context); only findings that
    involve a response in `new` are returned."""
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in records:
        key = _key(record)
        if key is not None:
            groups[key].append(record)
    findings: list[Finding] = []
    for (subject, ref, about), members in groups.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda r: (r.occurred_at, str(r.id)))
        first = members[0]
        for record in members[1:]:
            if record.occurred_at - first.occurred_at > window:
                first = record
                continue
            if record.id not in new:
                continue
            findings.append(
                Finding(
                    type="duplicate",
                    subject_type="customer" if subject == "customer" else "source",
                    subject_ref=ref,
                    strength=CUSTOMER_STRENGTH if subject == "customer" else DEVICE_STRENGTH,
                    evidence={
                        "by": subject,
                        "about": about,
                        "first_response_id": str(first.id),
                        "seconds_after_first": int(
                            (record.occurred_at - first.occurred_at).total_seconds()
                        ),
                        "window_hours": window.total_seconds() / 3600,
                    },
                    response_ids=[record.id],
                )
            )
    return findings
