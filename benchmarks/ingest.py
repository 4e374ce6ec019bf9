"""Ingest speed on SciFact: ours end to end vs the model alone vs a one-at-a-time loop.

(a) ours: ``Workspace.ingest`` of corpus.jsonl into a fresh workspace (parse, chunk,
    embed, store, index); the one-time ONNX export is cached beforehand, as after install.
(b) model only: the same runtime's forward passes over the same chunk texts and batches.
(c) seed loop: sentence-transformers (PyTorch fp32) encoding one chunk at a time in a
    Python loop, on a random sample of the chunks (it is slow), as a throughput.

Each part runs in its own process, so no part inherits kernels another part warmed up.
Targets: (a) >= 0.8 x (b) and >= 5 x (c).

Usage: python benchmarks/ingest.py [--json] [--runtime onnx-int8] [--seed-sample 400]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SCIFACT, emit

from datawheel import Workspace
from datawheel.ingest import index_text


def _workspace(root: Path, runtime: str | None) -> Workspace:
    ws = Workspace.init(root)
    if runtime:
        (ws.path / "datawheel.yaml").write_text(f"embedding:\n  runtime: {runtime}\n")
        ws.close()
        ws = Workspace.open(root)
    return ws


def part_ours(kb: Path, runtime: str | None) -> dict:
    from datawheel.models.embedder import load_embedder

    ws = _workspace(kb, runtime)
    cfg = ws.config.embedding
    embedder = load_embedder(cfg.model, cfg.runtime, cfg.batch_size)
    embedder.embed(["warm the export cache"])
    t0 = time.perf_counter()
    report = ws.ingest([SCIFACT / "corpus.jsonl"])
    seconds = time.perf_counter() - t0
    texts = [index_text(v.title, v.heading, v.text) for v in ws.store.chunks()]
    ws.close()
    (kb / "texts.json").write_text(json.dumps(texts))
    runtime = getattr(embedder, "runtime", cfg.runtime)  # what "auto" chose here
    return {"docs": report.added, "chunks": len(texts), "seconds": seconds, "runtime": runtime}


def part_model(kb: Path, runtime: str | None) -> dict:
    from datawheel.models.embedder import load_embedder

    texts = json.loads((kb / "texts.json").read_text())
    cfg = _workspace(kb, runtime).config.embedding
    model = load_embedder(cfg.model, cfg.runtime, cfg.batch_size)
    model.embed(["warm up"])
    t0 = time.perf_counter()
    model.embed(texts)
    return {"seconds": time.perf_counter() - t0, "chunks": len(texts)}


def part_seed(kb: Path, sample_size: int) -> dict:
    from sentence_transformers import SentenceTransformer

    from datawheel.models.embedder import resolve_model_path

    texts = json.loads((kb / "texts.json").read_text())
    sample = random.Random(0).sample(texts, min(sample_size, len(texts)))
    st = SentenceTransformer(str(resolve_model_path("builtin:all-MiniLM-L6-v2")), device="cpu")
    st.encode(sample[:2])
    t0 = time.perf_counter()
    for text in sample:
        st.encode([text])
    return {"seconds": time.perf_counter() - t0, "chunks": len(sample)}


def _run(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seed-sample", type=int, default=400)
    ap.add_argument("--runtime", default=None, help="embedding.runtime (default: config's)")
    ap.add_argument("--part", choices=["ours", "model", "seed"], help=argparse.SUPPRESS)
    ap.add_argument("--kb", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        result = {
            "ours": lambda: part_ours(args.kb, args.runtime),
            "model": lambda: part_model(args.kb, args.runtime),
            "seed": lambda: part_seed(args.kb, args.seed_sample),
        }[args.part]()
        print(json.dumps(result))
        return
    rt = ["--runtime", args.runtime] if args.runtime else []
    with tempfile.TemporaryDirectory() as tmp:
        kb = str(Path(tmp) / "kb")
        ours = _run("--part", "ours", "--kb", kb, *rt)
        model = _run("--part", "model", "--kb", kb, *rt)
        seed = _run("--part", "seed", "--kb", kb, "--seed-sample", str(args.seed_sample))
    chunks = ours["chunks"]
    result = {
        "docs": ours["docs"],
        "chunks": chunks,
        "ours_chunks_per_s": round(chunks / ours["seconds"], 1),
        "model_only_chunks_per_s": round(model["chunks"] / model["seconds"], 1),
        "seed_loop_chunks_per_s": round(seed["chunks"] / seed["seconds"], 1),
        "runtime": ours["runtime"],
    }
    result["ours_vs_model"] = round(
        result["ours_chunks_per_s"] / result["model_only_chunks_per_s"], 3
    )
    result["ours_vs_seed"] = round(
        result["ours_chunks_per_s"] / result["seed_loop_chunks_per_s"], 2
    )
    print(f"docs {result['docs']}, chunks {chunks}, runtime {result['runtime']}")
    print(f"(a) ours end to end : {result['ours_chunks_per_s']:8.1f} chunks/s")
    print(f"(b) model only      : {result['model_only_chunks_per_s']:8.1f} chunks/s")
    print(
        f"(c) seed loop       : {result['seed_loop_chunks_per_s']:8.1f} chunks/s "
        f"(random sample of {seed['chunks']})"
    )
    print(
        f"ours / model = {result['ours_vs_model']:.2f} (target >= 0.8); "
        f"ours / seed = {result['ours_vs_seed']:.2f} (target >= 5)"
    )
    emit(result, args.json)


if __name__ == "__main__":
    main()
