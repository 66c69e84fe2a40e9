"""Near-duplicate texts: the same comment, give or take a few characters, from different
people: a ring of paid or fake reviews.

Rule: comments are normalised (NFKC, lower case, punctuation dropped, Chinese segmented into
words by jieba) and comments shorter than `near_duplicate_min_tokens` words are ignored,
since honest customers often write the same short praise. Candidates are found through
MinHash LSH (64 permutations in 16 bands of 4 over character 3-grams, stored per response in
`integrity_text_bands`; a candidate shares at least 3 bands), then compared exactly: a
normalised edit similarity (rapidfuzz's `ratio`) of at least `near_duplicate_similarity`
links two comments. Linked comments form rings; a ring with at least
`near_duplicate_min_ring` distinct authors (customers, else devices) within
`near_duplicate_window_days` is flagged, every member with it. Strength 0.8 at the minimum
ring size, rising by 0.03 per further author to 0.95.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from datasketch import MinHash

# numpy, rjieba, datasketch (which loads scipy) and rapidfuzz are imported where they are
# used: screening runs in the worker, and an API process should not carry them (about
# 120 MB of its memory, docs/benchmarks.md).

from feedback_api.integrity.records import Finding, Record

NUM_PERM = 64
ROWS = 4  # per band; 16 bands: texts with Jaccard 0.7 share a band with probability 0.99
SHINGLE = 3
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    norm = unicodedata.normalize("NFKC", text).lower()
    found: list[str] = []
    for word in WORD.findall(norm):
        if CJK.search(word):
            # A run can mix scripts ("iphone很好用"): segment the Chinese, keep the rest.
            for part in re.split(f"({CJK.pattern})", word):
                if not part:
                    continue
                if CJK.fullmatch(part):
                    import rjieba

                    found.extend(t for t in rjieba.cut(part) if t.strip())
                else:
                    found.append(part)
        else:
            found.append(word)
    return found


def canonical(text: str) -> str:
    return " ".join(tokens(text))


@lru_cache(maxsize=1)
def _template() -> MinHash:
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=20261123)


def bands(text: str) -> list[int]:
    """The LSH band hashes of a canonical text, as signed 64-bit integers."""
    import numpy as np
    from datasketch import MinHash

    template = _template()
    sketch = MinHash(
        num_perm=NUM_PERM,
        seed=20261123,
        permutations=template.permutations,
        scheme=template.scheme,
    )
    grams = {text[i : i + SHINGLE] for i in range(max(len(text) - SHINGLE + 1, 1))}
    sketch.update_batch([g.encode() for g in grams])
    values = np.asarray(sketch.hashvalues, dtype=np.uint64)
    out = []
    for band in range(NUM_PERM // ROWS):
        chunk = values[band * ROWS : (band + 1) * ROWS].tobytes()
        digest = hashlib.blake2b(chunk, digest_size=8, person=band.to_bytes(2, "big")).digest()
        out.append(int.from_bytes(digest, "big", signed=True))
    return out


def eligible(comment: str | None, min_tokens: int) -> str | None:
    """The canonical text when the comment is long enough to compare, else None."""
    if not comment:
        return None
    words = tokens(comment)
    return " ".join(words) if len(words) >= min_tokens else None


def strength(authors: int, min_ring: int) -> float:
    return round(min(0.95, 0.8 + 0.03 * (authors - min_ring)), 3)


def find(
    records: Sequence[Record],
    new: set[UUID],
    *,
    similarity: float,
    min_ring: int,
    min_tokens: int,
) -> list[Finding]:
    """Rings among `records` (new comments and the candidates that share a band with them)
    that include at least one new comment."""
    texts: list[str] = []
    members: list[Record] = []
    for record in records:
        text = eligible(record.comment, min_tokens)
        if text is not None:
            texts.append(text)
            members.append(record)
    fresh = [i for i, r in enumerate(members) if r.id in new]
    if not fresh or len(members) < min_ring:
        return []
    findings = []
    for ring in _rings(texts, fresh, similarity * 100):
        authors = {members[i].author for i in ring}
        if len(authors) < min_ring or not any(members[i].id in new for i in ring):
            continue
        ring.sort(key=lambda i: (members[i].occurred_at, str(members[i].id)))
        first = members[ring[0]]
        findings.append(
            Finding(
                type="near_duplicate",
                subject_type="text",
                subject_ref=str(first.id),
                strength=strength(len(authors), min_ring),
                evidence={
                    "authors": len(authors),
                    "responses": len(ring),
                    "similarity_at_least": similarity,
                    "first_response_id": str(first.id),
                    "sample_response_ids": [str(members[i].id) for i in ring[:10]],
                },
                response_ids=[members[i].id for i in ring],
            )
        )
    return findings


def _rings(texts: list[str], fresh: list[int], cutoff: float) -> list[list[int]]:
    """The texts (by index) grouped into rings: linked when one of them is fresh and their
    similarity is at least `cutoff` (0-100), rings being what links join (union-find)."""
    import numpy as np
    from rapidfuzz import fuzz
    from rapidfuzz.process import cdist

    scores = cdist(
        [texts[i] for i in fresh], texts, scorer=fuzz.ratio, score_cutoff=cutoff, workers=1
    )
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for row, i in enumerate(fresh):
        for j in np.nonzero(scores[row] >= cutoff)[0]:
            a, b = root(i), root(int(j))
            if a != b:
                parent[a] = b
    rings: dict[int, list[int]] = {}
    for i in range(len(texts)):
        rings.setdefault(root(i), []).append(i)
    return list(rings.values())
