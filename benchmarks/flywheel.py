"""The flywheel on SciFact: measure test, replay train as users with feedback, improve, measure.

Runs ``datawheel simulate`` end to end in a fresh workspace (corpus ingest included) and
reports the seconds each step took. Target: promoted test nDCG@10 >= 0.78 and >= 0.05 above
"before", all within 30 minutes on 2 CPU cores.

Usage: python benchmarks/flywheel.py [--json] [--reuse]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from _common import SCIFACT, emit

from datawheel import Workspace
from datawheel.evaluate.simulate import reset_flywheel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="keep the ingested corpus from last run")
    ap.add_argument("--workspace", type=Path, default=Path(".bench") / "flywheel")
    args = ap.parse_args()
    if not args.reuse:
        shutil.rmtree(args.workspace, ignore_errors=True)
    started = time.perf_counter()
    with Workspace.init(args.workspace) as ws:
        reset_flywheel(ws)
        result = ws.simulate(SCIFACT)
    seconds = time.perf_counter() - started
    before, after = result["before"], result["after"]
    print(f"settings: {result['settings']}")
    print(f"votes from {result['train_queries']} simulated users: {result['votes']}")
    for name, m in (("before", before), ("after", after)):
        print(
            f"{name:>6}: nDCG@10 {m['ndcg@10']:.4f}  recall@100 {m['recall@100']:.4f}  "
            f"MRR@10 {m['mrr@10']:.4f}  version {m['promoted']}"
        )
    for c in result["improve"]["candidates"]:
        print(f"  candidate {c}")
    if result["improve"].get("finetune"):
        print(f"fine-tune: {result['improve']['finetune']}")
    print(f"steps (s): {result['seconds']}; improve steps (s): {result['improve']['seconds']}")
    gain = after["ndcg@10"] - before["ndcg@10"]
    met = after["ndcg@10"] >= 0.78 and gain >= 0.05 and seconds <= 1800
    print(f"gain {gain:+.4f} in {seconds:.0f} s; target (>= 0.78, +0.05, <= 30 min) met: {met}")
    emit(
        {
            "before": before,
            "after": after,
            "seconds": round(seconds, 1),
            "steps": result["seconds"],
            "target_met": met,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
