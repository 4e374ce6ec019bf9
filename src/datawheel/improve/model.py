"""A RAG model version: fusion weight, learned ranker and feedback memory, saved together.

The version in use changes only by ``improve`` (promote) or ``rollback``. With no version
promoted yet the baseline applies: hybrid retrieval with the configured fusion weight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.improve.features import FEATURES, ChunkInfo, candidate_features
from datawheel.improve.memory import FeedbackMemory
from datawheel.store._files import write_atomic

if TYPE_CHECKING:
    from datawheel.apps.rag.retrieve import Ranking


@dataclass
class RagModel:
    version: str | None  # None: the baseline
    dense_weight: float
    memory: FeedbackMemory
    ranker: Any = None  # a lightgbm.Booster
    rerank_depth: int = 100
    embedder: str | None = None  # a fine-tuned model folder (relative); None: the config's
    selector: dict[str, Any] | None = None  # answer selector weights learned from feedback
    memory_similarity: float | None = None  # calibrated from feedback; None: the config's

    @property
    def ranker_name(self) -> str:
        return f"lambdarank@{self.version}" if self.ranker is not None else "none"

    def rerank(
        self,
        ranking: Ranking,
        qvec: np.ndarray,
        query_tokens: list[str],
        info: Mapping[str, ChunkInfo],
        k: int,
    ) -> list[tuple[str, float]]:
        if self.ranker is None or not ranking.hits:
            return ranking.hits[:k]
        head = ranking.hits[: self.rerank_depth]
        x = candidate_features(qvec, query_tokens, head, ranking.parts, info, self.memory)
        scores = self.ranker.predict(x, num_threads=1)
        order = np.argsort(-scores, kind="stable")
        reranked = [(head[i][0], float(scores[i])) for i in order]
        tail = ranking.hits[self.rerank_depth :]
        low = float(scores.min()) if len(scores) else 0.0
        return (reranked + [(cid, low - 1.0 - i) for i, (cid, _) in enumerate(tail)])[:k]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.memory.save(folder)
        if self.ranker is not None:
            text = self.ranker.model_to_string().encode()
            write_atomic(folder / "ranker.txt", lambda fh: fh.write(text))
        if self.selector is not None:
            weights = json.dumps(self.selector, indent=1).encode()
            write_atomic(folder / "selector.json", lambda fh: fh.write(weights))
        meta = json.dumps(
            {
                "version": self.version,
                "dense_weight": self.dense_weight,
                "features": list(FEATURES),
                "rerank_depth": self.rerank_depth,
                "embedder": self.embedder,
                "memory_similarity": self.memory_similarity,
            },
            indent=2,
        ).encode()
        write_atomic(folder / "model.json", lambda fh: fh.write(meta))

    @classmethod
    def load(cls, folder: Path, dim: int) -> RagModel:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        ranker = None
        if (folder / "ranker.txt").exists():
            import lightgbm as lgb

            if meta.get("features") != list(FEATURES):
                raise ValueError(f"{folder}: ranker features differ from this datawheel's")
            ranker = lgb.Booster(model_file=str(folder / "ranker.txt"))
        return cls(
            meta["version"],
            float(meta["dense_weight"]),
            FeedbackMemory.load(folder, dim),
            ranker,
            int(meta.get("rerank_depth", 100)),
            meta.get("embedder"),
            _selector(folder),
            meta.get("memory_similarity"),
        )


def _selector(folder: Path) -> dict[str, Any] | None:
    """The learned answer selector's weights, if this version has one and this datawheel
    knows its features (an older or newer layout falls back to the shipped selector)."""
    from datawheel.models.generators.select import QUESTION_FEATURES, SENTENCE_FEATURES

    path = folder / "selector.json"
    if not path.exists():
        return None
    weights = json.loads(path.read_text(encoding="utf-8"))
    if set(weights["sentence"]) != set(SENTENCE_FEATURES) or set(weights["question"]) != set(
        QUESTION_FEATURES
    ):
        return None
    return weights
