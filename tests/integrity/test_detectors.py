"""The detectors' rules on crafted cases, and the peer test's statistics. Pure."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from feedback_api.integrity import bursts, duplicates, near_duplicates, solicitation, spikes
from feedback_api.integrity.provenance import ip_hash, ua_hash
from feedback_api.integrity.records import Finding, Record

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def rec(**kw: object) -> Record:
    base: dict[str, object] = {
        "id": uuid.uuid4(),
        "kind": "nps",
        "score": 10,
        "scale_max": 10,
        "occurred_at": T0,
        "touchpoint": "checkout",
    }
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


class TestDuplicates:
    def test_a_customer_rating_the_same_touchpoint_again_within_the_window(self) -> None:
        customer = uuid.uuid4()
        first = rec(customer_id=customer)
        again = rec(customer_id=customer, occurred_at=T0 + 2 * HOUR)
        third = rec(customer_id=customer, occurred_at=T0 + 23 * HOUR)
        found = duplicates.find([first, again, third], 24 * HOUR, {again.id, third.id})
        assert sorted(f.response_ids[0] for f in found) == sorted([again.id, third.id])
        assert all(f.evidence["first_response_id"] == str(first.id) for f in found)
        assert all(f.strength == 0.9 and f.subject_type == "customer" for f in found)

    def test_outside_the_window_or_elsewhere_is_no_duplicate(self) -> None:
        customer = uuid.uuid4()
        first = rec(customer_id=customer)
        later = rec(customer_id=customer, occurred_at=T0 + 25 * HOUR)
        other_touchpoint = rec(customer_id=customer, touchpoint="delivery")
        other_kind = rec(customer_id=customer, kind="csat", score=5, scale_max=5)
        someone_else = rec(customer_id=uuid.uuid4())
        anonymous = [rec(), rec()]
        records = [first, later, other_touchpoint, other_kind, someone_else, *anonymous]
        assert duplicates.find(records, 24 * HOUR, {r.id for r in records}) == []

    def test_a_new_window_starts_after_the_old_one_ends(self) -> None:
        customer = uuid.uuid4()
        rs = [rec(customer_id=customer, occurred_at=T0 + h * HOUR) for h in (0, 25, 26)]
        found = duplicates.find(rs, 24 * HOUR, {r.id for r in rs})
        assert [f.response_ids for f in found] == [[rs[2].id]]
        assert found[0].evidence["first_response_id"] == str(rs[1].id)

    def test_an_anonymous_device_is_weaker_evidence(self) -> None:
        a = rec(ip_hash="i", ua_hash="u")
        b = rec(ip_hash="i", ua_hash="u", occurred_at=T0 + HOUR)
        (found,) = duplicates.find([a, b], 24 * HOUR, {b.id})
        assert found.subject_type == "source"
        assert found.strength == 0.6

    def test_only_findings_about_new_responses(self) -> None:
        customer = uuid.uuid4()
        a, b = rec(customer_id=customer), rec(customer_id=customer, occurred_at=T0 + HOUR)
        assert duplicates.find([a, b], 24 * HOUR, {a.id}) == []


class TestBursts:
    LIMITS = {"ip": 5, "device": 3, "key": None}

    def test_more_than_the_limit_from_one_ip_within_the_window(self) -> None:
        rs = [rec(ip_hash="bot", occurred_at=T0 + timedelta(seconds=30 * i)) for i in range(8)]
        (found,) = bursts.find(rs, timedelta(minutes=10), self.LIMITS, {rs[-1].id})
        assert found.subject_ref == "ip:bot"
        assert found.response_ids == [r.id for r in rs]
        assert found.evidence["peak"] == 8
        assert found.evidence["limit"] == 5
        assert found.strength == bursts.strength(8, 5) > 0.8

    def test_the_same_count_spread_out_is_no_burst(self) -> None:
        rs = [rec(ip_hash="shop", occurred_at=T0 + timedelta(minutes=3 * i)) for i in range(12)]
        assert bursts.find(rs, timedelta(minutes=10), self.LIMITS, {r.id for r in rs}) == []

    def test_a_device_burst_is_one_finding_not_two(self) -> None:
        rs = [
            rec(ip_hash="ip", ua_hash="ua", occurred_at=T0 + timedelta(seconds=i)) for i in range(6)
        ]
        found = bursts.find(rs, timedelta(minutes=10), self.LIMITS, {r.id for r in rs})
        assert len(found) == 1
        assert found[0].subject_ref == "ip:ip"

    def test_keys_count_only_with_a_limit(self) -> None:
        key = uuid.uuid4()
        rs = [rec(publishable_key_id=key, occurred_at=T0) for _ in range(50)]
        new = {r.id for r in rs}
        assert bursts.find(rs, timedelta(minutes=10), self.LIMITS, new) == []
        limits = {**self.LIMITS, "key": 40}
        (found,) = bursts.find(rs, timedelta(minutes=10), limits, new)
        assert found.subject_ref == f"key:{key}"


RING = [
    "The barista was super friendly and the latte art was amazing, best cafe in town!",
    "The barista was super friendly and the latte art was amazing, best cafe in town!!",
    "the barista was super friendly and the latte art was amazing - best cafe in town",
    "The barista was super friendly and the latte-art was amazing, best café in town!",
]
RING_ZH = [
    "服务员态度非常好，咖啡也很好喝，环境干净整洁，下次还会再来！",
    "服务员态度非常好，咖啡也很好喝，环境干净整洁，下次还会再来!!",
    "服务员态度非常好,咖啡也很好喝,环境干净整洁,下次还会再来",
]


class TestNearDuplicates:
    def _find(self, texts: list[str], **kw: object) -> list[Finding]:
        records = [rec(customer_id=uuid.uuid4(), comment=t) for t in texts]
        params: dict[str, object] = {"similarity": 0.85, "min_ring": 3, "min_tokens": 6}
        params.update(kw)
        return near_duplicates.find(records, {r.id for r in records}, **params)  # type: ignore[arg-type]

    @pytest.mark.parametrize("texts", [RING, RING_ZH], ids=["english", "chinese"])
    def test_a_ring_of_near_identical_texts(self, texts: list[str]) -> None:
        (found,) = self._find(texts)
        assert found.type == "near_duplicate"
        assert len(found.response_ids) == len(texts)
        assert found.evidence["authors"] == len(texts)

    def test_different_texts_short_texts_and_small_rings_are_not(self) -> None:
        honest = [
            "The coffee was cold and the queue took twenty minutes, not coming back.",
            "Lovely staff, but the music was far too loud for a quiet morning read.",
            "Parking was impossible; the cake however was worth the trouble today.",
        ]
        assert self._find(honest) == []
        assert self._find(["Great service!"] * 5) == []  # short praise is common
        assert self._find(["很好"] * 5) == []
        assert self._find(RING[:2]) == []  # two authors are not a ring

    def test_one_author_repeating_is_not_a_ring(self) -> None:
        customer = uuid.uuid4()
        records = [rec(customer_id=customer, comment=t) for t in RING]
        assert (
            near_duplicates.find(
                records, {r.id for r in records}, similarity=0.85, min_ring=3, min_tokens=6
            )
            == []
        )

    def test_near_identical_texts_share_an_lsh_band(self) -> None:
        a, b = (near_duplicates.canonical(t) for t in RING[:2])
        assert set(near_duplicates.bands(a)) & set(near_duplicates.bands(b))
        c = near_duplicates.canonical("Completely unrelated words about a broken washing machine")
        assert not set(near_duplicates.bands(a)) & set(near_duplicates.bands(c))

    def test_chinese_is_segmented_into_words(self) -> None:
        assert near_duplicates.tokens("五星好评返现！iPhone 服务员态度") == [
            "五星",
            "好评",
            "返现",
            "iphone",
            "服务员",
            "态度",
        ]


class TestPeerStatistics:
    def test_two_proportion_z_by_hand(self) -> None:
        # 60/100 against 45/150: pooled 105/250 = 0.42,
        # se = sqrt(0.42 * 0.58 * (1/100 + 1/150)) = 0.063718, z = 0.30 / 0.063718 = 4.7082
        z, p = solicitation.two_proportion_z(60, 100, 45, 150)
        assert z == pytest.approx(4.7082, abs=1e-4)
        assert p == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-9)
        assert solicitation.two_proportion_z(0, 0, 5, 10) == (0.0, 1.0)
        assert solicitation.two_proportion_z(10, 10, 20, 20) == (0.0, 1.0)

    def test_benjamini_hochberg_on_the_published_example(self) -> None:
        # Benjamini & Hochberg (1995), section 4: 15 p-values; at q = 0.05 the first
        # four hypotheses are rejected.
        p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
             0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000]  # fmt: skip
        q = solicitation.benjamini_hochberg(p)
        assert [x < 0.05 for x in q] == [True] * 4 + [False] * 11
        assert q[3] == pytest.approx(0.0095 * 15 / 4)

    def _groups(self, in_person: int) -> list[solicitation.Skew]:
        groups = [
            solicitation.GroupCounts("location", "L1", "nps", "store", 200, 180, in_person),
            solicitation.GroupCounts("location", "L2", "nps", "store", 200, 90, 10),
            solicitation.GroupCounts("location", "L3", "nps", "store", 200, 96, 10),
            solicitation.GroupCounts("location", "L4", "nps", "store", 20, 20, 20),
        ]
        totals: dict[tuple[str, str | None], solicitation.PeerTotals] = {
            ("nps", "store"): solicitation.PeerTotals(620, 386)
        }
        return solicitation.test_groups(
            groups, totals, min_n=30, fdr=0.01, min_uplift=0.1, in_person_share=0.5
        )

    def test_a_skewed_group_collected_in_person_is_flagged(self) -> None:
        skews = {s.group.ref: s for s in self._groups(in_person=150)}
        assert set(skews) == {"L1", "L2", "L3"}  # L4 is below min_n
        l1 = skews["L1"]
        assert l1.peer_n == 420
        assert l1.peer_share == pytest.approx(206 / 420)
        assert l1.skewed
        assert l1.flagged
        assert l1.q_value < 1e-10
        assert l1.strength == pytest.approx(0.8 + 0.15 * 150 / 180, abs=1e-3)
        assert not skews["L2"].skewed
        assert not skews["L3"].skewed

    def test_a_skewed_group_praised_online_is_reported_not_flagged(self) -> None:
        l1 = next(s for s in self._groups(in_person=20) if s.group.ref == "L1")
        assert l1.skewed
        assert not l1.flagged


class TestSpikes:
    def test_a_pile_of_top_scores_against_a_quiet_history(self) -> None:
        bucket = spikes.Bucket("location", "L1", top=40, history_top=56, history_buckets=672)
        spike = spikes.check(bucket, min_count=15, p_value=1e-6)
        assert spike is not None
        assert spike.expected == pytest.approx(56 / 672)
        assert spike.p_value < 1e-30
        assert 0.8 < spike.strength <= 0.95

    def test_a_busy_place_being_busy_is_no_spike(self) -> None:
        bucket = spikes.Bucket("location", "L1", top=40, history_top=672 * 30, history_buckets=672)
        assert spikes.check(bucket, min_count=15, p_value=1e-6) is None
        few = spikes.Bucket("location", "L1", top=10, history_top=0, history_buckets=672)
        assert spikes.check(few, min_count=15, p_value=1e-6) is None


class TestProvenance:
    def test_keyed_stable_and_never_the_ip(self) -> None:
        salt, other = b"s" * 32, b"t" * 32
        assert ip_hash(salt, "203.0.113.9") == ip_hash(salt, "203.0.113.9")
        assert ip_hash(salt, "203.0.113.9") != ip_hash(other, "203.0.113.9")
        assert "203" not in (ip_hash(salt, "203.0.113.9") or "")
        assert len(ip_hash(salt, "203.0.113.9") or "") == 32
        assert ip_hash(salt, "testclient") is None
        assert ip_hash(salt, None) is None
        assert ua_hash(salt, "Mozilla/5.0") != ip_hash(salt, "Mozilla/5.0")

    def test_ipv6_by_network_and_mapped_ipv4_as_ipv4(self) -> None:
        salt = b"s" * 32
        assert ip_hash(salt, "2001:db8:1:2::1") == ip_hash(salt, "2001:db8:1:2:ffff::9")
        assert ip_hash(salt, "2001:db8:1:2::1") != ip_hash(salt, "2001:db8:1:3::1")
        assert ip_hash(salt, "::ffff:203.0.113.9") == ip_hash(salt, "203.0.113.9")
