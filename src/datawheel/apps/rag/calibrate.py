"""How sure are we that the knowledge base holds the answer? A calibrated probability.

Calibrated on the workspace's own content, so the threshold means the same on any corpus:
questions are made from sampled chunks (a sentence with a third of its words dropped),
then searched twice: as is (the answer is present) and with the source document held out
(the answer is missing). A logistic regression over retrieval-score features separates the
two; its probability is the answer confidence. It is recomputed when the corpus changes by
more than a quarter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from datawheel.clean.text import sentence_spans

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)
STATE_KEY = "answer_calibration_v3"
SAMPLE = 200


@dataclass
class Calibration:
    coef: list[float]
    intercept: float
    chunks: int  # corpus size it was fitted on
    samples: int
    accuracy: float  # on its own pseudo-questions (held-out half)

    def confidence(self, parts: Mapping[str, Mapping[str, float]], query_tokens: int) -> float:
        x = _features(parts, query_tokens)
        z = float(np.dot(self.coef, x) + self.intercept)
        return float(1.0 / (1.0 + np.exp(-z)))


def _features(parts: Mapping[str, Mapping[str, float]], query_tokens: int) -> np.ndarray:
    # Dense scores only: BM25 scores of made-up questions (which reuse the source's words)
    # are far higher than those of real questions, so a lexical feature would not transfer.
    dense = sorted(parts.get("dense", {}).values(), reverse=True)[:10]
    top = dense[0] if dense else 0.0
    gap = top - float(np.mean(dense)) if dense else 0.0
    return np.array([top, gap])


def load_or_fit(ws: Workspace) -> Calibration | None:
    """The stored calibration, refitted first if the corpus changed a lot since."""
    chunks = len(ws.indexes.vectors)
    if chunks == 0:
        return None
    raw = ws.store.get_state(STATE_KEY)
    if raw:
        cal = Calibration(**json.loads(raw))
        if abs(cal.chunks - chunks) <= 0.25 * cal.chunks:
            return cal
    fitted = fit(ws)
    if fitted is not None:
        ws.store.set_state(STATE_KEY, json.dumps(asdict(fitted)))
    return fitted


def fit(ws: Workspace, sample: int = SAMPLE, seed: int = 0) -> Calibration | None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    # ordered by content, not by id (ids hash the file's path): the same knowledge base
    # gets the same calibration wherever it was ingested from
    hashes = ws.store.chunk_text_hashes()
    ids = sorted(hashes, key=lambda c: (hashes[c], c))
    picked = [ids[i] for i in rng.choice(len(ids), size=min(sample, len(ids)), replace=False)]
    order = {cid: n for n, cid in enumerate(picked)}
    views = sorted(ws.store.chunks(picked), key=lambda v: order[v.id])
    queries, sources = [], []
    for v in views:
        question = _pseudo_question(v.text, rng)
        if question:
            queries.append(question)
            sources.append(v.doc_id)
    docs = {v.doc_id for v in views}
    if len(queries) < 10 or len(docs) < 3:
        log.info("too little content to calibrate answer confidence; using no threshold")
        return None
    retriever = ws.retriever()
    vectors = ws.embedder.embed(queries)
    tokenize = ws.indexes.bm25.tokenize
    x, y = [], []
    for question, doc, qvec in zip(queries, sources, vectors, strict=True):
        ranking = retriever.search(question, 50, "hybrid", None, query_vector=qvec)
        n_tokens = len(tokenize([question])[0])
        x.append(_features(ranking.parts, n_tokens))
        y.append(1)
        candidates = [cid for part in ranking.parts.values() for cid in part]
        info = ws.chunk_info(candidates)
        held_out = {
            name: {c: s for c, s in part.items() if c in info and info[c].doc_id != doc}
            for name, part in ranking.parts.items()
        }
        x.append(_features(held_out, n_tokens))
        y.append(0)
    xa, ya = np.array(x), np.array(y)
    half = np.arange(len(ya)) % 4 < 2  # pairs stay together: rows 0,1 train, 2,3 test...
    model = LogisticRegression(C=10.0).fit(xa[half], ya[half])
    accuracy = float(model.score(xa[~half], ya[~half]))
    model = LogisticRegression(C=10.0).fit(xa, ya)
    log.info(
        "answer confidence calibrated on %d pseudo-questions (accuracy %.2f)", len(ya), accuracy
    )
    return Calibration(
        [float(c) for c in model.coef_[0]],
        float(model.intercept_[0]),
        len(ws.indexes.vectors),
        len(ya),
        accuracy,
    )


def _pseudo_question(text: str, rng: np.random.Generator) -> str | None:
    sentences = [" ".join(text[a:b].split()) for a, b in sentence_spans(text)]
    good = [s for s in sentences if 8 <= len(s.split()) <= 40]
    if not good:
        words = text.split()
        if len(words) < 8:
            return None
        good = [" ".join(words[:25])]
    words = good[int(rng.integers(len(good)))].split()
    keep = rng.random(len(words)) >= 1 / 3
    return " ".join(w for w, k in zip(words, keep, strict=True) if k) or None
