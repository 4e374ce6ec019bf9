"""Shared helpers for the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DATAWHEEL_SHARED", ROOT.parent / "shared" / "datasets"))
SCIFACT = SHARED / "beir_scifact"


def emit(result: dict, as_json: bool) -> None:
    """Human lines first; with --json the last stdout line is one JSON object."""
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def load_corpus(limit: int | None = None) -> list[dict]:
    rows = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if limit and len(rows) >= limit:
                break
    return rows


def load_queries() -> list[str]:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]
