"""Feedback memory: past questions, the sources that helped them, and curated answers.

Three uses: a new question close enough to a curated one (a 👍 answer or a correction) is
answered from it; one close enough to a past question whose asker marked sources helpful
is answered from those sources; and the learned ranker reads how similar the new question
is to past questions each document helped (or failed) to answer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from datawheel.store._files import write_atomic


@dataclass
class MemoryEntry:
    interaction_id: str
    question: str
    vote: str  # up, down
    helpful_chunks: list[str] = field(default_factory=list)
    helpful_docs: list[str] = field(default_factory=list)
    shown_docs: list[str] = field(default_factory=list)  # shown but not marked helpful
    answer: str | None = None  # the curated answer: a 👍 answer or a correction
    citations: list[dict[str, str]] = field(default_factory=list)  # {n, chunk_id, title}
    author: str | None = None  # who wrote the curated answer
    approved_by: str | None = None  # who approved it


class FeedbackMemory:
    def __init__(self, entries: list[MemoryEntry], vectors: np.ndarray) -> None:
        if len(entries) != len(vectors):
            raise ValueError("one vector per memory entry")
        self.entries = entries
        self.vectors = _normalise(vectors.astype(np.float32)) if len(vectors) else vectors
        self.doc_helped: dict[str, list[int]] = defaultdict(list)
        self.chunk_helped: dict[str, list[int]] = defaultdict(list)
        self.doc_failed: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(entries):
            for d in e.helpful_docs:
                self.doc_helped[d].append(i)
            for c in e.helpful_chunks:
                self.chunk_helped[c].append(i)
            for d in e.shown_docs:
                self.doc_failed[d].append(i)
        self.curated = np.array([i for i, e in enumerate(entries) if e.answer], dtype=np.int64)
        self.vouching = np.array(
            [i for i, e in enumerate(entries) if e.helpful_chunks], dtype=np.int64
        )

    @classmethod
    def empty(cls, dim: int) -> FeedbackMemory:
        return cls([], np.zeros((0, dim), np.float32))

    def __len__(self) -> int:
        return len(self.entries)

    def similarities(self, qvec: np.ndarray) -> np.ndarray:
        if not len(self.entries):
            return np.zeros(0, np.float32)
        return self.vectors @ _normalise(qvec.astype(np.float32)[None, :])[0]

    def closest_curated(self, qvec: np.ndarray) -> tuple[MemoryEntry, float] | None:
        if not len(self.curated):
            return None
        sims = self.vectors[self.curated] @ _normalise(qvec.astype(np.float32)[None, :])[0]
        best = int(np.argmax(sims))
        return self.entries[int(self.curated[best])], float(sims[best])

    def vouched(self, qvec: np.ndarray, min_similarity: float) -> tuple[MemoryEntry, float] | None:
        """The closest past question, at least ``min_similarity`` (cosine) alike, whose asker
        marked sources helpful, with its similarity."""
        if not len(self.vouching):
            return None
        sims = self.vectors[self.vouching] @ _normalise(qvec.astype(np.float32)[None, :])[0]
        best = int(np.argmax(sims))
        if sims[best] < min_similarity:
            return None
        return self.entries[int(self.vouching[best])], float(sims[best])

    def save(self, folder: Path) -> None:
        payload = json.dumps([asdict(e) for e in self.entries]).encode()
        write_atomic(folder / "memory.json", lambda fh: fh.write(payload))
        write_atomic(folder / "memory.npy", lambda fh: np.save(fh, self.vectors))

    @classmethod
    def load(cls, folder: Path, dim: int) -> FeedbackMemory:
        path = folder / "memory.json"
        if not path.exists():
            return cls.empty(dim)
        entries = [MemoryEntry(**e) for e in json.loads(path.read_text(encoding="utf-8"))]
        return cls(entries, np.load(folder / "memory.npy"))


def _normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(norms, 1e-12)
