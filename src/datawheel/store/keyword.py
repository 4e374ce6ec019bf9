"""Keyword search: BM25 with bm25s (sparse matrices), stemmed, with stop words removed.

bm25s scores through precomputed sparse matrices, which it cannot patch in place, and
BM25's IDF depends on the whole corpus anyway. So updates are incremental where the cost
is (only new chunks are tokenised; token ids are kept) and the score matrix is rebuilt
from the kept token ids once per batch of changes, lazily, before the next search.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer

from datawheel.store._files import write_atomic
from datawheel.store.catalog import Catalog, CatalogIndex, Filter, top_k

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets itself to DEBUG on import

_FORMAT = 1


class BM25Index(CatalogIndex):
    """An embedded BM25 index persisted as one file in the workspace.

    Example:
        >>> index = BM25Index(Path("kb/index/bm25.pkl"))
        >>> index.upsert(["c1"], ["Refunds take 14 days"], [{}], [["everyone"]])
        >>> index.search("refund", k=1)[0][0]
        'c1'
    """

    def __init__(
        self, path: Path, k1: float = 1.5, b: float = 0.75, stemmer: str | None = "english"
    ) -> None:
        self.path = path
        self.k1, self.b, self.stemmer_name = k1, b, stemmer
        self._stemmer = Stemmer.Stemmer(stemmer) if stemmer else None
        self.catalog = Catalog()
        self._tokens: list[np.ndarray | None] = []
        self._vocab: dict[str, int] = {}
        self._model: bm25s.BM25 | None = None
        self._model_positions = np.zeros(0, dtype=np.int64)
        self._dirty = False
        self._stale_model = False
        self._last: tuple[str, bm25s.BM25, np.ndarray | None] | None = None
        if path.exists():
            self._load()

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        return bm25s.tokenize(  # type: ignore[no-any-return]
            list(texts),
            stopwords="en",
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )

    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        fields: Sequence[Mapping[str, str]],
        groups: Sequence[Iterable[str]],
    ) -> None:
        if not ids:
            return
        vocab = self._vocab
        for chunk_id, tokens, f, g in zip(ids, self.tokenize(texts), fields, groups, strict=True):
            self._forget([chunk_id])
            self.catalog.add(chunk_id, f, g)
            # setdefault: a new token gets the next id (len is taken before the insert)
            token_ids = [vocab.setdefault(t, len(vocab)) for t in tokens]
            self._tokens.append(np.array(token_ids, dtype=np.int32))
        self._dirty = self._stale_model = True

    def delete(self, ids: Iterable[str]) -> int:
        removed = self._forget(ids)
        if removed:
            self._dirty = self._stale_model = True
        return removed

    def search(self, query: str, k: int, flt: Filter | None = None) -> list[tuple[str, float]]:
        if len(self.catalog) == 0 or k <= 0:
            return []
        scores = self._score_all(query)
        if scores is None:
            return []
        mask = self.catalog.mask(flt) & (scores > 0)
        ids = self.catalog.ids
        return [(ids[p], float(scores[p])) for p in top_k(scores, k, mask)]

    def scores(self, query: str, ids: Sequence[str]) -> list[float]:
        """BM25 scores of given chunks for a query (0 for unknown ids or no match)."""
        full = self._score_all(query) if len(self.catalog) else None
        out = []
        for chunk_id in ids:
            pos = self.catalog.position(chunk_id)
            out.append(0.0 if full is None or pos is None else float(full[pos]))
        return out

    def _score_all(self, query: str) -> np.ndarray | None:
        """Scores of every position (None: no query word is indexed). Hybrid search asks
        twice per query (top list, then candidates), so the last answer is kept."""
        model = self._ensure_model()
        if self._last is not None and self._last[0] == query and self._last[1] is model:
            return self._last[2]
        tokens = [t for t in self.tokenize([query])[0] if t in self._vocab]
        full = None
        if tokens:
            full = np.zeros(self.catalog.size, dtype=np.float32)
            full[self._model_positions] = model.get_scores(tokens)
        self._last = (query, model, full)
        return full

    def save(self) -> None:
        if not self._dirty and self.path.exists():
            return
        self._ensure_model()
        state: dict[str, Any] = {
            "format": _FORMAT,
            "params": [self.k1, self.b, self.stemmer_name],
            "catalog": self.catalog.to_state(),
            "tokens": self._tokens,
            "vocab": self._vocab,
            "model": self._model,
            "model_positions": self._model_positions,
        }
        write_atomic(self.path, lambda fh: pickle.dump(state, fh, protocol=5))
        self._dirty = False

    # -- internals ------------------------------------------------------------------------

    def _forget(self, ids: Iterable[str]) -> int:
        # Tombstoned rows free their token arrays; positions stay until compaction.
        removed = 0
        for chunk_id in ids:
            pos = self.catalog.position(chunk_id)
            if pos is not None:
                self._tokens[pos] = None
                removed += self.catalog.remove([chunk_id])
        return removed

    def _ensure_model(self) -> bm25s.BM25:
        if self._model is not None and not self._stale_model:
            return self._model
        if self.catalog.size > 1.2 * len(self.catalog) + 100:
            keep = self.catalog.compact()
            self._tokens = [self._tokens[p] for p in keep]
        positions = np.flatnonzero(np.asarray(self.catalog.alive, dtype=bool))
        corpus = [self._tokens[p].tolist() for p in positions]  # type: ignore[union-attr]
        vocab = dict(self._vocab)
        vocab.setdefault("", len(vocab))
        model = bm25s.BM25(k1=self.k1, b=self.b)
        with warnings.catch_warnings():
            # an empty corpus has no mean length; search never consults such a model
            warnings.simplefilter("ignore", RuntimeWarning)
            model.index((corpus, vocab), show_progress=False, create_empty_token=False)
        self._model, self._model_positions, self._stale_model = model, positions, False
        return model

    def _load(self) -> None:
        try:
            with self.path.open("rb") as fh:
                state = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("BM25 index %s unreadable (%s); it will be rebuilt", self.path, exc)
            return
        if state.get("format") != _FORMAT or state.get("params") != [
            self.k1,
            self.b,
            self.stemmer_name,
        ]:
            log.info("BM25 settings changed; the index will be rebuilt")
            return
        self.catalog = Catalog.from_state(state["catalog"])
        self._tokens = state["tokens"]
        self._vocab = state["vocab"]
        self._model = state["model"]
        self._model_positions = state["model_positions"]
