"""Search latency at 5k and 100k chunks, per mode: p50/p95 of ``Workspace.search``.

5k: the SciFact corpus ingested for real. 100k: the same chunks replicated with small
perturbations (a word dropped, a marker word added, the vector nudged by noise and
re-normalised) written straight to the store and indexes, so building it takes seconds
instead of re-embedding. Each query is embedded for real; process start is excluded.

Target: hybrid p95 <= 30 ms at 100k chunks on 2 cores.

Usage: python benchmarks/search.py [--json] [--queries 1000] [--sizes 5000,100000]
                                  [--runtime onnx-int8]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SCIFACT, emit, load_queries, percentile

from datawheel import Workspace
from datawheel.ingest import doc_id_for, index_text, text_hash
from datawheel.store.base import ChunkRecord, DocumentRecord, DocumentWrite

MODES = ("bm25", "dense", "hybrid")


def replicate(src: Workspace, dst: Workspace, target: int) -> int:
    """Fill ``dst`` with perturbed copies of ``src``'s chunks up to ``target`` chunks."""
    rng = random.Random(7)
    nrng = np.random.default_rng(7)
    views = list(src.store.chunks())
    vecs = src.indexes.vectors.vectors([v.id for v in views])
    model_id = dst.embedder.model_id
    made, copy = 0, 0
    while made < target:
        writes, texts, vectors = [], {}, {}
        for v, vec in zip(views, vecs, strict=True):
            if made >= target:
                break
            words = v.text.split()
            if len(words) > 3:
                del words[rng.randrange(len(words))]
            body = " ".join(words) + f" copy{copy}"
            uri = f"{v.uri}~{copy}~{v.ord}"
            did = doc_id_for(uri)
            th = text_hash(index_text(v.title, v.heading, body))
            noisy = vec + nrng.normal(0, 0.02, vec.shape).astype(np.float32)
            vectors[th] = noisy / np.linalg.norm(noisy)
            texts[th] = index_text(v.title, v.heading, body)
            doc = DocumentRecord(
                did,
                uri,
                th,
                v.title,
                "beir",
                v.groups,
                meta={"beir_id": v.fields.get("beir_id", "")},
            )
            writes.append(DocumentWrite(doc, [ChunkRecord(th, did, 0, v.heading, body, th)]))
            made += 1
        for i in range(0, len(writes), 2000):
            part = writes[i : i + 2000]
            dst.store.write_documents(
                part, {c.text_hash: vectors[c.text_hash] for w in part for c in w.chunks}, model_id
            )
            dst.indexes.add(part, texts, vectors)
        copy += 1
    dst.indexes.save()
    return made


def measure(ws: Workspace, queries: list[str], n: int) -> list[dict]:
    rows = []
    for mode in MODES:
        for q in queries[:20]:
            ws.search(q, k=10, mode=mode)  # warm caches and the BM25 matrix
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            ws.search(queries[i % len(queries)], k=10, mode=mode)
            times.append((time.perf_counter() - t0) * 1000)
        chunks = len(ws.indexes.vectors)
        rows.append(
            {
                "mode": mode,
                "chunks": chunks,
                "p50_ms": round(percentile(times, 50), 2),
                "p95_ms": round(percentile(times, 95), 2),
            }
        )
        print(
            f"{mode:>7} @ {chunks:>7,} chunks: p50 {rows[-1]['p50_ms']:6.2f} ms   "
            f"p95 {rows[-1]['p95_ms']:6.2f} ms"
        )
    return rows


def ann_recall(ws: Workspace, queries: list[str], n: int = 200) -> float | None:
    """recall@10 of the HNSW graph against exact search, on real query embeddings."""
    index = ws.indexes.vectors
    if len(index) < index.ann_min:
        return None
    vecs = ws.embedder.embed(queries[:n])
    ann_min, found = index.ann_min, 0
    for q in vecs:
        approx = {cid for cid, _ in index.search(q, 10)}
        index.ann_min = 10**12
        exact = {cid for cid, _ in index.search(q, 10)}
        index.ann_min = ann_min
        found += len(approx & exact)
    return round(found / (10 * len(vecs)), 4)


def _workspace(path: Path, runtime: str | None) -> Workspace:
    """A new workspace, embedding with ``runtime`` when given (else the default config's)."""
    if runtime:  # init keeps a config that is already there
        path.mkdir(parents=True)
        (path / "datawheel.yaml").write_text(f"embedding:\n  runtime: {runtime}\n")
    return Workspace.init(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--sizes", default="5000,100000")
    ap.add_argument("--runtime", default=None, help="embedding.runtime (default: config's)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    queries = load_queries()
    results = []
    hnsw_recall = None
    with tempfile.TemporaryDirectory() as tmp:
        base = _workspace(Path(tmp) / "base", args.runtime)
        print(f"embedding runtime: {base.embedder.runtime}")
        base.ingest([SCIFACT / "corpus.jsonl"])
        for size in sizes:
            if size <= len(base.indexes.vectors):
                results += measure(base, queries, args.queries)
                continue
            big = _workspace(Path(tmp) / f"big{size}", args.runtime)
            t0 = time.perf_counter()
            made = replicate(base, big, size)
            print(f"built {made:,} chunks in {time.perf_counter() - t0:.0f} s")
            big.close()
            big = Workspace.open(Path(tmp) / f"big{size}")  # measure a re-opened workspace
            results += measure(big, queries, args.queries)
            recall = ann_recall(big, queries)
            if recall is not None:
                print(f"HNSW recall@10 vs exact at {len(big.indexes.vectors):,} chunks: {recall}")
                hnsw_recall = recall
            big.close()
        base.close()
    emit({"results": results, "hnsw_recall@10": hnsw_recall}, args.json)


if __name__ == "__main__":
    main()
