"""Evaluate retrieval on a question set: JSON lines of questions and the documents that answer them.

Each line: ``{"question": "...", "relevant": ["handbook/refunds.md", ...]}``. A relevant
entry matches a document whose uri ends with it, so sets stay valid wherever the folder
is ingested from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datawheel.apps.rag.rank import rank
from datawheel.errors import SourceError
from datawheel.evaluate.metrics import score_run

if TYPE_CHECKING:
    from datawheel.improve.model import RagModel
    from datawheel.workspace import Workspace


def load_questions(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append({"question": str(row["question"]), "relevant": list(row["relevant"])})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SourceError(
                f'{path}:{n}: expected {{"question": ..., "relevant": [...]}} ({exc})'
            ) from exc
    return rows


def evaluate_questions(
    ws: Workspace, path: Path, mode: str, model: RagModel | None = None
) -> dict[str, Any]:
    questions = load_questions(path)
    run: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for i, q in enumerate(questions):
        qid = str(i)
        ranking = rank(ws, q["question"], 100, mode, model=model)
        views = {v.id: v.uri for v in ws.store.chunks([cid for cid, _ in ranking.hits])}
        ranked = list(dict.fromkeys(views[c] for c, _ in ranking.hits if c in views))
        run[qid] = ranked
        qrels[qid] = {uri: 1 for uri in ranked if any(uri.endswith(r) for r in q["relevant"])}
        # relevant documents never retrieved still count against recall
        for r in q["relevant"]:
            if not any(uri.endswith(r) for uri in qrels[qid]):
                qrels[qid][f"missing:{r}"] = 1
    return {**score_run(run, qrels), "mode": mode, "dataset": path.name}
