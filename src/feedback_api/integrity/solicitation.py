"""Solicitation: a location or agent whose customers are significantly more positive than
comparable peers, with most of that praise collected face to face.

Rule: within one period (`solicitation_period_days`), kind and touchpoint, every location and
every agent with at least `solicitation_min_n` responses is compared with all other
responses of that kind and touchpoint (its peers) by a one-sided pooled two-proportion
z-test of the positive share (NPS 9–10, CSAT 4–5, CES 5–7, a rating's top score). The
p-values of all groups tested together are adjusted by Benjamini–Hochberg, controlling the
false discovery rate at `solicitation_fdr`. A group is *skewed* when its adjusted p-value is
below that rate and its share exceeds its peers' by at least `solicitation_min_uplift`; the
integrity report lists skewed groups. A skewed group is *flagged* when at least
`solicitation_in_person_share` of its positive answers, and at least twice the share of its
peers' positive answers, were collected in person: then its
in-person positive answers of the period are linked to the flag. Strength 0.8 + 0.15 × the
in-person share (0.875 at one half). Ratings (mixed scales) are not compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GroupCounts:
    dimension: str  # "location" | "agent"
    ref: str
    kind: str
    touchpoint: str | None
    n: int
    positive: int
    in_person_positive: int


@dataclass(frozen=True, slots=True)
class PeerTotals:
    n: int
    positive: int
    in_person_positive: int = 0


@dataclass(frozen=True, slots=True)
class Skew:
    group: GroupCounts
    share: float
    peer_n: int
    peer_share: float
    uplift: float
    z: float
    p_value: float
    q_value: float
    in_person_share: float
    peer_in_person_share: float
    skewed: bool
    flagged: bool

    @property
    def strength(self) -> float:
        return round(min(0.95, 0.8 + 0.15 * self.in_person_share), 3)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """One-sided pooled z-test of p1 > p2: (z, p). p = 1 when either sample is empty or
    the pooled share is 0 or 1 (no variance: nothing to detect)."""
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / se
    from scipy.stats import norm  # loaded where the test runs (the worker), see near_duplicates

    return z, float(norm.sf(z))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (q-values), in the input order."""
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    return [float(q) for q in false_discovery_control(list(p_values), method="bh")]


def test_groups(
    groups: Sequence[GroupCounts],
    totals: dict[tuple[str, str | None], PeerTotals],
    *,
    min_n: int,
    fdr: float,
    min_uplift: float,
    in_person_share: float,
) -> list[Skew]:
    """Every group with at least `min_n` responses, tested against its peers (the totals
    of its kind and touchpoint minus itself), with BH over all of them."""
    tested = [g for g in groups if g.n >= min_n]
    raw: list[tuple[GroupCounts, PeerTotals, int, int, float, float]] = []
    for g in tested:
        total = totals[(g.kind, g.touchpoint)]
        peer_n, peer_pos = total.n - g.n, total.positive - g.positive
        z, p = two_proportion_z(g.positive, g.n, peer_pos, peer_n)
        raw.append((g, total, peer_n, peer_pos, z, p))
    q_values = benjamini_hochberg([r[5] for r in raw])
    out = []
    for (g, total, peer_n, peer_pos, z, p), q in zip(raw, q_values, strict=True):
        share = g.positive / g.n
        peer_share = peer_pos / peer_n if peer_n else 0.0
        uplift = share - peer_share
        skewed = peer_n > 0 and q < fdr and uplift >= min_uplift
        ip_share = g.in_person_positive / g.positive if g.positive else 0.0
        peer_ip = total.in_person_positive - g.in_person_positive
        peer_ip_share = peer_ip / peer_pos if peer_pos else 0.0
        out.append(
            Skew(
                group=g,
                share=share,
                peer_n=peer_n,
                peer_share=peer_share,
                uplift=uplift,
                z=z,
                p_value=p,
                q_value=q,
                in_person_share=ip_share,
                peer_in_person_share=peer_ip_share,
                skewed=skewed,
                flagged=skewed and ip_share >= max(in_person_share, 2 * peer_ip_share),
            )
        )
    return out
