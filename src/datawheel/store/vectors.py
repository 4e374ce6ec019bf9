"""Vector indexes: the Protocol and the embedded (exact, numpy) backend.

Exact search over normalised float32 vectors is one matrix-vector product: about 5 ms at
100k x 384 on two cores, with perfect recall, so the embedded default stays exact.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from threadpoolctl import ThreadpoolController

from datawheel.store._files import write_atomic
from datawheel.store.ann import HNSWGraph
from datawheel.store.catalog import Catalog, CatalogIndex, Filter, top_k

log = logging.getLogger(__name__)
_THREADS = ThreadpoolController()


def _ONE_BLAS_THREAD():  # type: ignore[no-untyped-def]  # noqa: N802
    # A matrix-vector product is memory-bound: a second BLAS thread only fights the
    # embedder's threads for the cores (measured: 2x slower end to end).
    return _THREADS.limit(limits=1, user_api="blas")


class VectorIndex(Protocol):
    """Nearest-neighbour search over chunk vectors, with metadata and group filters."""

    def upsert(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        fields: Sequence[Mapping[str, str]],
        groups: Sequence[Iterable[str]],
    ) -> None: ...

    def delete(self, ids: Iterable[str]) -> int: ...

    def search(
        self, query: np.ndarray, k: int, flt: Filter | None = None
    ) -> list[tuple[str, float]]: ...

    def scores(self, query: np.ndarray, ids: Sequence[str]) -> list[float]:
        """Similarity of given chunks to the query (ids not in the index score -1)."""
        ...

    def ids(self) -> set[str]: ...

    def __len__(self) -> int: ...

    def save(self) -> None: ...


class NumpyVectorIndex(CatalogIndex):
    """Cosine search, persisted as one ``.npz`` file written atomically.

    Exact below ``ann_min`` live rows; above, an HNSW graph (``store/ann.py``) answers,
    except for selective filters, which stay exact over the few rows they allow.

    Example:
        >>> index = NumpyVectorIndex(Path("kb/index/vectors.npz"), dim=384)
        >>> index.upsert(["c1"], np.ones((1, 384), np.float32) / 19.6, [{}], [["everyone"]])
        >>> index.search(np.ones(384, np.float32) / 19.6, k=1)[0][0]
        'c1'
    """

    def __init__(self, path: Path, dim: int, ann_min: int = 50_000, ef_search: int = 128) -> None:
        self.path = path
        self.dim = dim
        self.ann_min = ann_min
        self.ef_search = ef_search
        self.catalog = Catalog()
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._graph: HNSWGraph | None = None
        self._dirty = False
        if path.exists():
            self._load()

    def upsert(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        fields: Sequence[Mapping[str, str]],
        groups: Sequence[Iterable[str]],
    ) -> None:
        if len(ids) == 0:
            return
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        start = self.catalog.size
        for chunk_id, f, g in zip(ids, fields, groups, strict=True):
            self.catalog.add(chunk_id, f, g)
        self._ensure_capacity(self.catalog.size)
        self._matrix[start : start + len(ids)] = vectors
        self._dirty = True

    def delete(self, ids: Iterable[str]) -> int:
        removed = self.catalog.remove(ids)
        self._dirty = self._dirty or removed > 0
        return removed

    def search(
        self, query: np.ndarray, k: int, flt: Filter | None = None
    ) -> list[tuple[str, float]]:
        n = self.catalog.size
        if n == 0 or k <= 0:
            return []
        q = np.asarray(query, dtype=np.float32).reshape(self.dim)
        unfiltered = (flt is None or flt.empty) and len(self.catalog) == n
        mask = None if unfiltered else self.catalog.mask(flt)
        ids = self.catalog.ids
        allowed = n if mask is None else int(mask.sum())
        if len(self.catalog) >= self.ann_min and allowed > max(20 * k, n // 10):
            positions, scores = self._ensure_graph().search(q, k, mask)
            return [(ids[p], float(s)) for p, s in zip(positions, scores, strict=True)]
        with _ONE_BLAS_THREAD():
            if mask is not None and allowed < n // 2:
                rows = np.flatnonzero(mask)
                sub = self._matrix[rows] @ q
                return [(ids[rows[p]], float(sub[p])) for p in top_k(sub, k)]
            scores = self._matrix[:n] @ q
        best = top_k(scores, k, mask)
        return [(ids[p], float(scores[p])) for p in best]

    def scores(self, query: np.ndarray, ids: Sequence[str]) -> list[float]:
        q = np.asarray(query, dtype=np.float32).reshape(self.dim)
        out = []
        for chunk_id in ids:
            pos = self.catalog.position(chunk_id)
            out.append(-1.0 if pos is None else float(self._matrix[pos] @ q))
        return out

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of live ids (zeros for unknown ones)."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for row, chunk_id in enumerate(ids):
            pos = self.catalog.position(chunk_id)
            if pos is not None:
                out[row] = self._matrix[pos]
        return out

    def save(self) -> None:
        if not self._dirty and self.path.exists():
            return
        if self.catalog.size > 1.2 * len(self.catalog) + 100:
            keep = self.catalog.compact()
            self._matrix = np.ascontiguousarray(self._matrix[keep])
            self._graph = None  # positions moved: the graph is rebuilt
        n = self.catalog.size
        state = json.dumps(self.catalog.to_state()).encode()
        graph = np.zeros(0, np.uint8)
        if len(self.catalog) >= self.ann_min:
            graph = self._ensure_graph().to_bytes()

        def write(fh: io.BufferedWriter) -> None:  # type: ignore[type-arg]
            np.savez(
                fh,
                matrix=self._matrix[:n],
                catalog=np.frombuffer(state, dtype=np.uint8),
                graph=graph,
            )

        write_atomic(self.path, write)  # type: ignore[arg-type]
        self._dirty = False

    def _ensure_graph(self) -> HNSWGraph:
        n = self.catalog.size
        if self._graph is None or self._graph.size > n:
            log.info("building the HNSW graph over %d vectors", n)
            self._graph = HNSWGraph(self.dim, ef_search=self.ef_search)
        self._graph.extend(self._matrix, n)
        return self._graph

    def _ensure_capacity(self, n: int) -> None:
        if n <= self._matrix.shape[0]:
            return
        grown = np.zeros((max(n, int(self._matrix.shape[0] * 1.5) + 1024), self.dim), np.float32)
        used = min(self._matrix.shape[0], n)
        grown[:used] = self._matrix[:used]
        self._matrix = grown

    def _load(self) -> None:
        try:
            with np.load(self.path) as data:
                matrix = data["matrix"]
                state = json.loads(data["catalog"].tobytes())
                graph = data["graph"] if "graph" in data.files else np.zeros(0, np.uint8)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("vector index %s unreadable (%s); it will be rebuilt", self.path, exc)
            return
        if matrix.shape[1:] != (self.dim,):
            log.warning(
                "vector index %s has dim %s, expected %s; rebuilding",
                self.path,
                matrix.shape[1:],
                self.dim,
            )
            return
        self.catalog = Catalog.from_state(state)
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if graph.size:
            self._graph = HNSWGraph.from_bytes(graph, self.ef_search)
