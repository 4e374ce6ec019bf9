"""The workspace's two embedded indexes kept in step with the store.

The store is the source of truth. Index files record the store generation they reflect;
when it differs (a crash between a commit and an index save), ``reconcile`` adds what is
missing, from the embedding cache, and drops what is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from datawheel.store.base import DocumentWrite, document_fields
from datawheel.store.keyword import BM25Index
from datawheel.store.vectors import NumpyVectorIndex, VectorIndex

if TYPE_CHECKING:
    from datawheel.config import SearchConfig
    from datawheel.models.embedder import Embedder
    from datawheel.store.sql import SQLStore

log = logging.getLogger(__name__)
#: Re-embedding at least this many chunks to bring the index up to date is announced: it
#: happens once after the embedder changes (another runtime or model) and can take minutes.
ANNOUNCE_EMBED_AT = 2000


class IndexSet:
    """BM25 + vectors, updated together.

    With a PostgreSQL store the vectors live in pgvector beside the chunks; BM25 stays a
    file per worker, reconciled from the store like the embedded vectors (see the README
    on why PostgreSQL full-text search is not used).
    """

    def __init__(
        self,
        folder: Path,
        dim: int,
        search: SearchConfig,
        vector_tag: str = "",
        store: SQLStore | None = None,
    ) -> None:
        bm25 = search.bm25
        self.folder = folder
        self.generation: int | None = None  # the store's, as of the last reconcile
        self._checked = time.monotonic()
        self.vectors: VectorIndex
        # One vector file (or table) per embedding model: switching models never mixes them.
        if store is not None and store.is_postgres:
            from datawheel.store.pgvector import PgVectorIndex, table_name

            self.vectors = PgVectorIndex(
                store.engine,
                dim,
                table_name(vector_tag),
                ann_min=search.ann_min_chunks,
                ef_search=search.ann_ef_search,
            )
        else:
            name = f"vectors-{vector_tag}.npz" if vector_tag else "vectors.npz"
            self.vectors = NumpyVectorIndex(
                folder / name, dim, ann_min=search.ann_min_chunks, ef_search=search.ann_ef_search
            )
        self.bm25 = BM25Index(folder / "bm25.pkl", k1=bm25.k1, b=bm25.b, stemmer=bm25.stemmer)

    def add(
        self,
        writes: Sequence[DocumentWrite],
        texts: Mapping[str, str],
        vectors: Mapping[str, np.ndarray],
    ) -> None:
        ids, fields, groups, matrix, bodies = [], [], [], [], []
        for w in writes:
            f = document_fields(w.document)
            for c in w.chunks:
                ids.append(c.id)
                fields.append(f)
                groups.append(w.document.groups)
                matrix.append(vectors[c.text_hash])
                bodies.append(texts[c.text_hash])
        if not ids:
            return
        self.vectors.upsert(ids, np.vstack(matrix), fields, groups)
        self.bm25.upsert(ids, bodies, fields, groups)

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self.vectors.delete(ids)
            self.bm25.delete(ids)

    def save(self) -> None:
        self.bm25.save()  # a local file: kept even when the vector store cannot be reached
        self.vectors.save()

    def refresh(self, store: SQLStore, embedder: Embedder, every_s: float = 1.0) -> int:
        """Pick up other workers' writes (PostgreSQL), checking at most every ``every_s``."""
        now = time.monotonic()
        if not store.is_postgres or now - self._checked < every_s:
            return 0
        self._checked = now
        if store.generation() == self.generation:
            return 0
        return self.reconcile(store, embedder)

    def reconcile(self, store: SQLStore, embedder: Embedder) -> int:
        """Bring both indexes to the store's chunks; returns how many rows changed."""
        with store.writing():  # PostgreSQL: no worker's batch is half-written meanwhile
            generation = store.generation()
            changed = self._reconcile(store, embedder)
            self.generation = generation
        return changed

    def _reconcile(self, store: SQLStore, embedder: Embedder) -> int:
        truth = store.chunk_ids()
        changed = 0
        for index in (self.vectors, self.bm25):
            have = index.ids()
            gone = have - truth
            if gone:
                index.delete(gone)
                changed += len(gone)
            missing = truth - have
            if not missing:
                continue
            changed += len(missing)
            views = list(store.chunks(missing))
            from datawheel.ingest import index_text  # late import: ingest imports us

            texts = [index_text(v.title, v.heading, v.text) for v in views]
            ids = [v.id for v in views]
            fields = [v.fields for v in views]
            groups = [v.groups for v in views]
            if index is self.bm25:
                self.bm25.upsert(ids, texts, fields, groups)
                continue
            cached = store.cached_vectors([v.text_hash for v in views], embedder.model_id)
            todo = [i for i, v in enumerate(views) if v.text_hash not in cached]
            if len(todo) >= ANNOUNCE_EMBED_AT:
                log.warning(
                    "embedding %d chunks for %s into the index (a new index, or the embedder "
                    "changed); this runs once",
                    len(todo),
                    embedder.model_id,
                )
            if todo:
                fresh = embedder.embed([texts[i] for i in todo])
                for i, vec in zip(todo, fresh, strict=True):
                    cached[views[i].text_hash] = vec
            matrix = np.vstack([cached[v.text_hash] for v in views])
            self.vectors.upsert(ids, matrix, fields, groups)
        if changed:
            log.info("reconciled indexes with the store: %d rows changed", changed)
            self.save()
        return changed
