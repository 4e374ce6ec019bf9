"""Fusing the BM25 and dense rankings: convex score fusion and reciprocal rank fusion.

Convex fusion scores every candidate that either retriever found with *both* retrievers
(a chunk missing from one top list still has a real score there, so it is looked up, not
taken as zero), standardises each retriever's scores over the candidates (z-scores), and
mixes them with a weight. Measured on SciFact (README), this beats zero-filled min-max
fusion and RRF.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Ranked = Sequence[tuple[str, float]]


def standardise(scores: Mapping[str, float]) -> dict[str, float]:
    """z-scores; all-equal scores (no signal) become 0."""
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if std <= 1e-12:
        return dict.fromkeys(scores, 0.0)
    return {cid: (s - mean) / std for cid, s in scores.items()}


def convex(
    sparse: Mapping[str, float], dense: Mapping[str, float], dense_weight: float
) -> list[tuple[str, float]]:
    """``(1 - w) * z(bm25) + w * z(dense)`` over candidates scored by both, best first."""
    a, b = standardise(sparse), standardise(dense)
    fused = {
        cid: (1.0 - dense_weight) * a.get(cid, 0.0) + dense_weight * b.get(cid, 0.0)
        for cid in a.keys() | b.keys()
    }
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def rrf(lists: Sequence[Ranked], k: int = 60) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: sum of ``1 / (k + rank)`` over the lists, best first."""
    fused: dict[str, float] = {}
    for hits in lists:
        for rank, (cid, _) in enumerate(hits, start=1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
