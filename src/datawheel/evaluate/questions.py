"""Evaluate on a question set: JSON lines of questions, the documents and facts that answer them.

Each line: ``{"question": "...", "relevant": ["handbook/refunds.md"], "facts": ["30 days"]}``
(``answer`` may stand in for ``facts`` as one expected text). A relevant entry matches a
document whose uri ends with it, so sets stay valid wherever the folder is ingested from.

Two measures: retrieval (nDCG@10, recall@100, MRR@10 over the relevant documents) and
answers, as ``ask`` gives them: answered correctly (an expected source cited, or every
expected fact present), declined, and p50/p95 latency.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.apps.rag.rank import rank
from datawheel.errors import SourceError
from datawheel.evaluate.metrics import score_run

if TYPE_CHECKING:
    from datawheel.improve.model import RagModel
    from datawheel.workspace import Workspace

_EXPECTED = '{"question": ..., "relevant": [paths], "facts": [texts]}'


def load_questions(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read question set {path}: {exc}") from exc
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            facts = list(row.get("facts") or ([row["answer"]] if row.get("answer") else []))
            item = {
                "question": str(row["question"]),
                "relevant": [str(r) for r in row.get("relevant") or []],
                "facts": [str(f) for f in facts],
            }
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise SourceError(f"{path}:{n}: expected {_EXPECTED} ({exc})") from exc
        if not item["relevant"] and not item["facts"]:
            raise SourceError(f"{path}:{n}: give relevant documents or facts; expected {_EXPECTED}")
        rows.append(item)
    return rows


def evaluate_questions(
    ws: Workspace, path: Path, mode: str, model: RagModel | None = None, answers: bool = False
) -> dict[str, Any]:
    questions = load_questions(path)
    run: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for i, q in enumerate(questions):
        if not q["relevant"]:
            continue
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
    result: dict[str, Any] = {**score_run(run, qrels), "mode": mode, "dataset": path.name}
    if answers:
        result.update(score_answers(ws, questions))
    return result


def score_answers(ws: Workspace, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Ask every question (not logged) and score the answers."""
    correct = declined = 0
    latencies = []
    for q in questions:
        answer = ws.ask(q["question"], record=False)
        latencies.append(answer.latency_ms)
        if answer.declined:
            declined += 1
            continue
        cited = [s.uri for s in answer.sources if s.cited]
        by_source = any(uri.endswith(r) for uri in cited for r in q["relevant"])
        text = _plain(answer.text)
        by_facts = bool(q["facts"]) and all(_plain(f) in text for f in q["facts"])
        correct += by_source or by_facts
    n = len(questions)
    return {
        "questions": n,
        "answered_correctly": correct / n if n else 0.0,
        "declined": declined / n if n else 0.0,
        "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies else 0.0,
        "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies else 0.0,
    }


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[*_`\[\]]", " ", text.lower()).split())
