"""Retrieval: BM25, dense and hybrid search over the workspace's indexes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from datawheel.apps.rag import fuse
from datawheel.config import MODES as CONFIG_MODES
from datawheel.errors import ConfigError
from datawheel.store.catalog import Filter

if TYPE_CHECKING:
    from datawheel.config import SearchConfig
    from datawheel.models.embedder import Embedder
    from datawheel.store.keyword import BM25Index
    from datawheel.store.vectors import VectorIndex

Mode = Literal["bm25", "dense", "hybrid"]
MODES = CONFIG_MODES


@dataclass
class Ranking:
    """Chunk ids best first, with the fused score and each retriever's raw score."""

    hits: list[tuple[str, float]]
    parts: dict[str, dict[str, float]] = field(default_factory=dict)


class Retriever:
    """Runs one search mode over the indexes; cheap to build, holds no state of its own."""

    def __init__(
        self,
        bm25: BM25Index,
        vectors: VectorIndex,
        embedder: Embedder,
        settings: SearchConfig,
    ) -> None:
        self.bm25, self.vectors, self.embedder, self.settings = bm25, vectors, embedder, settings

    def search(
        self,
        query: str,
        k: int,
        mode: str,
        flt: Filter | None = None,
        query_vector: np.ndarray | None = None,
        dense_weight: float | None = None,
    ) -> Ranking:
        if mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r}; valid modes: {', '.join(MODES)}")
        depth = max(k, self.settings.candidates)
        sparse = self.bm25.search(query, depth, flt) if mode in ("bm25", "hybrid") else []
        dense: list[tuple[str, float]] = []
        if mode in ("dense", "hybrid"):
            qvec = self.embedder.embed([query])[0] if query_vector is None else query_vector
            dense = self.vectors.search(qvec, depth, flt)
        parts = {"bm25": dict(sparse), "dense": dict(dense)}
        if mode == "bm25":
            return Ranking(sparse[:k], parts)
        if mode == "dense":
            return Ranking(dense[:k], parts)
        if self.settings.fusion == "rrf":
            return Ranking(fuse.rrf([sparse, dense], k=self.settings.rrf_k)[:k], parts)
        # Score every candidate with both retrievers before fusing (see fuse.convex).
        union = parts["bm25"].keys() | parts["dense"].keys()
        for name, have, score in (
            ("bm25", parts["bm25"], lambda ids: self.bm25.scores(query, ids)),
            ("dense", parts["dense"], lambda ids: self.vectors.scores(qvec, ids)),
        ):
            todo = [cid for cid in union if cid not in have]
            if todo:
                full = dict(have)
                full.update(zip(todo, score(todo), strict=True))
                parts[name] = full
        weight = self.settings.dense_weight if dense_weight is None else dense_weight
        fused = fuse.convex(parts["bm25"], parts["dense"], weight)
        return Ranking(fused[:k], parts)
