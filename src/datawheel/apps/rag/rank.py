"""Ranking with the RAG model in use: hybrid retrieval, then the learned ranker if any."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from datawheel.apps.rag.retrieve import Ranking
from datawheel.store.catalog import Filter

if TYPE_CHECKING:
    from datawheel.improve.model import RagModel
    from datawheel.workspace import Workspace


def rank(
    ws: Workspace,
    query: str,
    k: int,
    mode: str,
    flt: Filter | None = None,
    qvec: np.ndarray | None = None,
    model: RagModel | None = None,
) -> Ranking:
    """Top ``k`` chunks. In hybrid mode the model's fusion weight and ranker apply."""
    retriever = ws.retriever()
    if mode != "hybrid":
        return retriever.search(query, k, mode, flt, query_vector=qvec)
    model = ws.model if model is None else model
    if qvec is None:
        qvec = ws.embedder.embed([query])[0]
    depth = max(k, model.rerank_depth) if model.ranker is not None else k
    ranking = retriever.search(
        query, depth, "hybrid", flt, query_vector=qvec, dense_weight=model.dense_weight
    )
    if model.ranker is None:
        return ranking
    head = [cid for cid, _ in ranking.hits[: model.rerank_depth]]
    tokens = ws.indexes.bm25.tokenize([query])[0]
    hits = model.rerank(ranking, qvec, tokens, ws.chunk_info(head), k)
    return Ranking(hits, ranking.parts)
