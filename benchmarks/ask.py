"""Ask latency with the extractive generator at ~5k documents (SciFact), process start excluded.

Every ask is logged to the store, as in real use. Target: p95 <= 200 ms.

Usage: python benchmarks/ask.py [--json] [--queries N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import SCIFACT, emit, percentile

from datawheel import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--workspace", type=Path, default=Path(".bench") / "ask")
    args = ap.parse_args()
    with Workspace.init(args.workspace) as ws:
        ws.ingest([SCIFACT / "corpus.jsonl"])
        docs = ws.store.counts()["documents"]
        with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
            questions = [json.loads(line)["text"] for line in fh][: args.queries]
        ws.ask("warm-up: load the model, the indexes and the calibration")
        latencies = []
        declined = 0
        for q in questions:
            t0 = time.perf_counter()
            answer = ws.ask(q, user="bench")
            latencies.append((time.perf_counter() - t0) * 1000)
            declined += answer.declined
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    print(f"{len(questions)} asks over {docs} documents: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"declined {declined / len(questions):.0%}; target p95 <= 200 ms met: {p95 <= 200}")
    emit({"docs": docs, "p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}, args.json)


if __name__ == "__main__":
    main()
