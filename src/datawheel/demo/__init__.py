"""The demo: a sample company knowledge base, ingested, searched and measured.

``datawheel demo`` (and ``make demo``) runs it offline on the embedded default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datawheel.ingest import IngestReport, Progress
from datawheel.workspace import SearchHit, Workspace

SAMPLE_KB = Path(__file__).parent / "kb"
SAMPLE_QUESTIONS = Path(__file__).parent / "questions.jsonl"
EXAMPLE_QUERIES = (
    "how long do enterprise customers have to return an order?",
    "restocking fee opened electronics",
    "what do I need to do if my laptop is stolen?",
)


@dataclass
class DemoResult:
    workspace: Path
    ingest: IngestReport
    searches: list[tuple[str, list[SearchHit]]] = field(default_factory=list)
    evaluation: list[dict[str, Any]] = field(default_factory=list)


def run_demo(
    path: Path,
    *,
    progress: Progress | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    """Create (or reuse) a workspace at ``path`` and run the sample through it."""
    ws = Workspace.init(path)
    try:
        on_step(f"ingesting the sample knowledge base from {SAMPLE_KB}")
        report = ws.ingest([SAMPLE_KB], sync=True, progress=progress)
        result = DemoResult(ws.path, report)
        on_step("searching")
        for query in EXAMPLE_QUERIES:
            result.searches.append((query, ws.search(query, k=3)))
        on_step(f"evaluating on {SAMPLE_QUESTIONS.name}")
        for mode in ("bm25", "dense", "hybrid"):
            result.evaluation.append(ws.evaluate(SAMPLE_QUESTIONS, mode=mode))
        return result
    finally:
        ws.close()
