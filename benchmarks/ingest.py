"""Ingest speed on SciFact: ours end to end vs the model alone vs a one-at-a-time loop.

(a) ours: ``Workspace.ingest`` of corpus.jsonl into a fresh workspace (parse, chunk,
    embed, store, index) — the model export is cached beforehand, as after install.
(b) model only: the same runtime's forward passes over the same chunk texts and batches.
(c) seed loop: sentence-transformers (PyTorch) encoding one chunk at a time in a Python
    loop, on a sample of the chunks (it is slow), as a throughput.

Targets: (a) >= 0.8 x (b) and >= 5 x (c).

Usage: python benchmarks/ingest.py [--json] [--seed-sample 300]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from _common import SCIFACT, emit

from datawheel import Workspace
from datawheel.ingest import index_text
from datawheel.models.embedder import load_embedder, resolve_model_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seed-sample", type=int, default=400)
    ap.add_argument("--runtime", default=None,
                    help="embedding.runtime to benchmark (default: the config default)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "kb")
        if args.runtime:
            (ws.path / "datawheel.yaml").write_text(f"embedding:\n  runtime: {args.runtime}\n")
            ws.close()
            ws = Workspace.open(ws.path)
        cfg = ws.config.embedding
        warm = load_embedder(cfg.model, cfg.runtime, cfg.batch_size)
        warm.embed(["warm the export cache"])  # one-time export, not part of ingest
        del warm

        t0 = time.perf_counter()
        report = ws.ingest([SCIFACT / "corpus.jsonl"])
        ours_s = time.perf_counter() - t0
        views = list(ws.store.chunks())
        texts = [index_text(v.title, v.heading, v.text) for v in views]
        docs, chunks = report.added, len(texts)

        model = load_embedder(cfg.model, cfg.runtime, cfg.batch_size)
        model.embed(texts[:8])
        t0 = time.perf_counter()
        model.embed(texts)
        model_s = time.perf_counter() - t0
        ws.close()

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(resolve_model_path(cfg.model)), device="cpu")
    sample = random.Random(0).sample(texts, min(args.seed_sample, len(texts)))
    st.encode(sample[:2])
    t0 = time.perf_counter()
    for text in sample:
        st.encode([text])
    seed_s = time.perf_counter() - t0

    result = {
        "docs": docs,
        "chunks": chunks,
        "ours_chunks_per_s": round(chunks / ours_s, 1),
        "model_only_chunks_per_s": round(chunks / model_s, 1),
        "seed_loop_chunks_per_s": round(len(sample) / seed_s, 1),
        "runtime": cfg.runtime,
    }
    result["ours_vs_model"] = round(result["ours_chunks_per_s"] / result["model_only_chunks_per_s"], 3)
    result["ours_vs_seed"] = round(result["ours_chunks_per_s"] / result["seed_loop_chunks_per_s"], 2)
    print(f"docs {docs}, chunks {chunks}, runtime {cfg.runtime}")
    print(f"(a) ours end to end : {result['ours_chunks_per_s']:8.1f} chunks/s  ({ours_s:.1f} s)")
    print(f"(b) model only      : {result['model_only_chunks_per_s']:8.1f} chunks/s  ({model_s:.1f} s)")
    print(f"(c) seed loop       : {result['seed_loop_chunks_per_s']:8.1f} chunks/s  "
          f"(sample of {len(sample)})")
    print(f"ours / model = {result['ours_vs_model']:.2f} (target >= 0.8); "
          f"ours / seed = {result['ours_vs_seed']:.2f} (target >= 5)")
    emit(result, args.json)


if __name__ == "__main__":
    main()
