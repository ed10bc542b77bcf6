"""Near-duplicate removal with datasketch's MinHash LSH.

Rows are shingled into word 5-grams (3-grams for short rows); MinHash with 64 permutations
estimates Jaccard similarity and LSH finds candidate pairs without comparing every pair, so
100,000 rows take seconds, not hours. The first row of a cluster is kept.
"""

from __future__ import annotations

import re

from tuitune.core.data.rows import Item, StepReport, row_text

NUM_PERM = 64
_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, n: int = 5) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < n * 2:
        n = 3
    if len(words) < n:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def near_dedup_step(items: list[Item], step: StepReport, *, threshold: float) -> list[Item]:
    """Drop rows whose estimated Jaccard similarity to an earlier kept row is >= threshold."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    # Generating permutations is most of MinHash's construction cost: make them once.
    proto = MinHash(num_perm=NUM_PERM, seed=1)
    hashes: dict[str, MinHash] = {}
    kept = []
    for idx, item in enumerate(items):
        sh = shingles(row_text(item.row))
        if not sh:
            kept.append(item)
            continue
        mh = MinHash(
            num_perm=NUM_PERM, seed=1, permutations=proto.permutations, scheme=proto.scheme
        )
        mh.update_batch(list(sh))
        dup_of = None
        for key in lsh.query(mh):
            if hashes[key].jaccard(mh) >= threshold:
                dup_of = key
                break
        if dup_of is not None:
            step.dropped += 1
            step.example(item.origin, row_text(item.row), reason=f"near-duplicate of {dup_of}")
            continue
        key = f"{item.origin}#{idx}" if item.origin in hashes else item.origin
        lsh.insert(key, mh)
        hashes[key] = mh
        kept.append(item)
    step.details["threshold"] = threshold
    return kept
