"""Features the learned ranker reads for each (question, candidate chunk) pair.

Retrieval scores (raw and standardised within the candidate list), the fused rank, how
well the chunk's title matches, and the feedback history of the chunk and its document:
how similar the new question is to past questions they helped answer, or failed to.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from datawheel.improve.memory import FeedbackMemory

FEATURES = (
    "fused",
    "bm25_z",
    "dense_z",
    "bm25",
    "dense",
    "rank",
    "title_overlap",
    "doc_helped_max",
    "doc_helped_sum",
    "doc_helped_n",
    "chunk_helped_max",
    "doc_failed_max",
    "doc_failed_n",
)


@dataclass(frozen=True)
class ChunkInfo:
    doc_id: str
    title_tokens: frozenset[str]


def _z(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() + 1e-9)


def candidate_features(
    qvec: np.ndarray,
    query_tokens: Collection[str],
    candidates: Sequence[tuple[str, float]],
    parts: Mapping[str, Mapping[str, float]],
    info: Mapping[str, ChunkInfo],
    memory: FeedbackMemory,
    exclude: Collection[int] = (),
) -> np.ndarray:
    """One row of ``FEATURES`` per candidate, in the candidates' (fused) order.

    ``exclude`` lists memory entries to ignore: the question's own feedback when building
    training rows, so the ranker never learns from a feature that leaks the label.
    """
    n = len(candidates)
    ids = [cid for cid, _ in candidates]
    fused = np.array([s for _, s in candidates], dtype=np.float64)
    bm25 = np.array([parts.get("bm25", {}).get(c, 0.0) for c in ids], dtype=np.float64)
    dense = np.array([parts.get("dense", {}).get(c, 0.0) for c in ids], dtype=np.float64)
    sims = memory.similarities(qvec).astype(np.float64)
    if len(exclude) and len(sims):
        sims[list(exclude)] = np.nan
    q = set(query_tokens)
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    out[:, 0], out[:, 1], out[:, 2] = fused, _z(bm25), _z(dense)
    out[:, 3], out[:, 4], out[:, 5] = bm25, dense, np.arange(n)
    for row, cid in enumerate(ids):
        chunk = info.get(cid)
        if chunk is None:
            continue
        out[row, 6] = len(q & chunk.title_tokens) / len(q) if q else 0.0
        helped = _valid(sims, memory.doc_helped.get(chunk.doc_id))
        out[row, 7] = helped.max() if len(helped) else 0.0
        out[row, 8] = np.clip(helped, 0, None).sum()
        out[row, 9] = len(helped)
        chunk_helped = _valid(sims, memory.chunk_helped.get(cid))
        out[row, 10] = chunk_helped.max() if len(chunk_helped) else 0.0
        failed = _valid(sims, memory.doc_failed.get(chunk.doc_id))
        out[row, 11] = failed.max() if len(failed) else 0.0
        out[row, 12] = len(failed)
    return out


def _valid(sims: np.ndarray, idx: list[int] | None) -> np.ndarray:
    if not idx:
        return np.zeros(0)
    values = sims[idx]
    return values[~np.isnan(values)]
