"""Retrieval quality on SciFact: nDCG@10 / recall@100 / MRR@10 per mode and fusion.

Ingests the corpus into a workspace (``.bench/scifact-<runtime>``, reused when present; the
runtime is ``--runtime`` or what ``auto`` picks on this machine), then scores on
the test split: BM25, dense, RRF, and convex fusion with the weight swept on the *train*
split (the weight is chosen on train only, then applied to test once).

Usage: python benchmarks/quality.py [--json] [--workspace DIR] [--runtime onnx-int8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import SCIFACT, emit

from datawheel import Workspace
from datawheel.apps.rag import fuse
from datawheel.config import EmbeddingConfig
from datawheel.evaluate.beir import DOC_DEPTH, load_qrels, load_queries
from datawheel.evaluate.metrics import score_run
from datawheel.models.embedder import resolve_runtime
from datawheel.store.catalog import Filter

WEIGHTS = [round(0.1 * i, 1) for i in range(11)]


def lists_for(ws: Workspace, split: str) -> tuple[dict, dict, dict, dict]:
    """Per query: BM25 and dense top lists, and both scores for every candidate."""
    qrels = load_qrels(SCIFACT / "qrels" / f"{split}.tsv")
    queries = load_queries(SCIFACT / "queries.jsonl", set(qrels))
    r = ws.retriever()
    flt = Filter.build({"kind": "beir", "corpus": str((SCIFACT / "corpus.jsonl").resolve())})
    qids = list(queries)
    vecs = ws.embedder.embed([queries[q] for q in qids])
    sparse, dense, parts = {}, {}, {}
    for i, q in enumerate(qids):
        ranking = r.search(queries[q], 10, "hybrid", flt, query_vector=vecs[i])
        parts[q] = ranking.parts
        sparse[q] = r.bm25.search(queries[q], ws.config.search.candidates, flt)
        dense[q] = r.vectors.search(vecs[i], ws.config.search.candidates, flt)
    return sparse, dense, parts, qrels


def to_docs(
    ws: Workspace, ranked: dict[str, list[tuple[str, float]]], beir: dict[str, str]
) -> dict[str, list[str]]:
    need = {cid for hits in ranked.values() for cid, _ in hits if cid not in beir}
    for v in ws.store.chunks(need):
        beir[v.id] = v.fields.get("beir_id", v.doc_id)
    run = {}
    for q, hits in ranked.items():
        docs: list[str] = []
        for cid, _ in hits:
            d = beir[cid]
            if d not in docs:
                docs.append(d)
        run[q] = docs[:DOC_DEPTH]
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--workspace", type=Path, default=None)
    ap.add_argument("--runtime", default=None, help="embedding.runtime (default: config's)")
    args = ap.parse_args()
    # the runtime "auto" picks on this machine names the cached workspace, so a workspace
    # embedded by another runtime is never reused for this one
    runtime = resolve_runtime(args.runtime or EmbeddingConfig().runtime)
    folder = args.workspace or Path(".bench") / f"scifact-{runtime}"
    ws = Workspace.init(folder)
    (ws.path / "datawheel.yaml").write_text(f"embedding:\n  runtime: {runtime}\n")
    ws.close()
    ws = Workspace.open(folder)
    print(f"embedding runtime: {runtime}")
    ws.ingest([SCIFACT / "corpus.jsonl"])
    beir: dict[str, str] = {}

    _, _, parts_tr, qr_tr = lists_for(ws, "train")
    sweep = {}
    for w in WEIGHTS:
        fused = {q: fuse.convex(p["bm25"], p["dense"], w) for q, p in parts_tr.items()}
        sweep[w] = score_run(to_docs(ws, fused, beir), qr_tr)["ndcg@10"]
    best_w = max(sweep, key=lambda w: (sweep[w], -abs(w - 0.5)))
    print(
        "train sweep (dense weight -> nDCG@10):",
        ", ".join(f"{w}:{s:.4f}" for w, s in sweep.items()),
    )

    sp, de, parts, qr = lists_for(ws, "test")
    w_cfg = ws.config.search.dense_weight
    rows = {
        "bm25": score_run(to_docs(ws, sp, beir), qr),
        "dense": score_run(to_docs(ws, de, beir), qr),
        "rrf": score_run(
            to_docs(ws, {q: fuse.rrf([sp[q], de[q]], ws.config.search.rrf_k) for q in sp}, beir), qr
        ),
        f"hybrid convex@{w_cfg} (default)": score_run(
            to_docs(
                ws, {q: fuse.convex(p["bm25"], p["dense"], w_cfg) for q, p in parts.items()}, beir
            ),
            qr,
        ),
        f"hybrid convex@{best_w} (train-tuned)": score_run(
            to_docs(
                ws, {q: fuse.convex(p["bm25"], p["dense"], best_w) for q, p in parts.items()}, beir
            ),
            qr,
        ),
    }
    for name, m in rows.items():
        print(
            f"{name:>34}: nDCG@10 {m['ndcg@10']:.4f}  recall@100 {m['recall@100']:.4f}  "
            f"MRR@10 {m['mrr@10']:.4f}  ({m['queries']} queries)"
        )
    ws.close()
    emit(
        {
            "split": "test",
            "train_best_dense_weight": best_w,
            "results": {k: {m: round(v, 4) for m, v in r.items()} for k, r in rows.items()},
        },
        args.json,
    )


if __name__ == "__main__":
    main()
