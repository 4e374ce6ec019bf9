"""Simulate the flywheel on a BEIR dataset: the proof that feedback makes answers better.

1. measure the test split;
2. replay every train query as a user: ask, then vote from the relevance judgements
   (👍 with the relevant sources marked helpful when one was shown, else 👎 wrong source);
3. run improve;
4. measure the test split again.

Test queries are only ever *measured* (never asked through the log), so none of them can
reach the answer memory, the ranker's training rows or a fine-tuning pair.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete

from datawheel.evaluate.answers import MAX_CHARS, Question, holds_answer, without_citations
from datawheel.evaluate.beir import beir_paths, evaluate_beir, load_qrels, load_queries
from datawheel.improve.registry import CURRENT
from datawheel.store import schema as t

if TYPE_CHECKING:
    from datawheel.ingest import Progress
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)
SHOWN = 10  # sources a simulated user sees per answer


def reset_flywheel(ws: Workspace) -> None:
    """Forget interactions, feedback and versions (for a scratch simulation workspace)."""
    with ws.store.engine.begin() as conn:
        for table in (t.feedback, t.interactions):
            conn.execute(delete(table))
        conn.execute(delete(t.model_versions).where(t.model_versions.c.kind == "rag"))
    ws.store.set_state(CURRENT, "")
    for folder in (ws.path / "models").glob("v[0-9]*"):
        shutil.rmtree(folder, ignore_errors=True)
    ws.reload_model()


Judge = Callable[[str, list[Any]], list[str]]


def replay(
    ws: Workspace,
    questions: dict[str, str],
    judge: Judge,
    *,
    shown: int = SHOWN,
    corrections: dict[str, str] | None = None,
    answers: dict[str, list[str]] | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Ask each question as a user and vote: 👍 marking the sources ``judge`` finds
    relevant, or 👎 wrong source when none of the shown sources is (with the user's
    correction, when ``corrections`` has one for the question id).

    With ``answers`` (acceptable answers per question id) the user also reads the answer:
    when the right source was shown but the answer text does not hold an acceptable answer,
    the vote is 👎 wrong answer, marking the helpful sources, with the first acceptable
    answer as the correction."""
    votes = {"up": 0, "down": 0}
    for i, (qid, text) in enumerate(questions.items()):
        answer = ws.ask(text, user="simulated", k=shown)
        helpful = judge(qid, answer.sources)
        wanted = (answers or {}).get(qid)
        if helpful and wanted and not _holds(answer, wanted):
            record = ws.feedback(
                answer.id,
                "down",
                user="simulated",
                failure="wrong_answer",
                helpful=helpful,
                correction=wanted[0],
            )
            ws.review(record.review_id, "approve")
            votes["down"] += 1
        elif helpful:
            ws.feedback(answer.id, "up", user="simulated", helpful=helpful)
            votes["up"] += 1
        else:
            record = ws.feedback(
                answer.id,
                "down",
                user="simulated",
                failure="wrong_source",
                correction=(corrections or {}).get(qid),
            )
            if record.correction:  # the workspace's owner reviews the simulated user's words
                ws.review(record.review_id, "approve")
            votes["down"] += 1
        if progress and (i % 20 == 0 or i == len(questions) - 1):
            progress("feedback", i + 1, len(questions))
    return votes


def _holds(answer: Any, wanted: list[str]) -> bool:
    """The answer reads as right: not declined, short, holding an acceptable answer."""
    text = without_citations(answer.text)
    return (
        not answer.declined
        and len(text) <= MAX_CHARS
        and holds_answer(text, Question(answer.question, answers=wanted))
    )


def simulate(
    ws: Workspace,
    root: Path,
    *,
    train_split: str = "train",
    test_split: str = "test",
    shown: int = SHOWN,
    holdout: float = 0.2,
    margin: float = 0.005,
    min_ranker_questions: int = 10,
    finetune: bool = True,
    min_finetune_pairs: int = 500,
    finetune_epochs: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    clock: dict[str, float] = {}
    corpus, queries_path, train_qrels_path = beir_paths(root, train_split)
    beir_paths(root, test_split)
    train_qrels = load_qrels(train_qrels_path)
    test_ids = set(load_qrels(root / "qrels" / f"{test_split}.tsv"))
    test_texts = {_norm(q) for q in load_queries(queries_path, test_ids).values()}
    train_queries = load_queries(queries_path, set(train_qrels) - test_ids)
    # A train query worded exactly like a test query would leak it (SciFact has two).
    overlap = [q for q, text in train_queries.items() if _norm(text) in test_texts]
    for qid in overlap:
        del train_queries[qid]

    t0 = time.perf_counter()
    before = evaluate_beir(ws, root, split=test_split, mode="hybrid", progress=progress)
    clock["ingest_and_measure_before"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    beir_of: dict[str, str] = {}

    def judge(qid: str, sources: list[Any]) -> list[str]:
        missing = [s.chunk_id for s in sources if s.chunk_id not in beir_of]
        for view in ws.store.chunks(missing):
            beir_of[view.id] = view.fields.get("beir_id", view.doc_id)
        relevant = {d for d, grade in train_qrels[qid].items() if grade > 0}
        return [s.chunk_id for s in sources if beir_of.get(s.chunk_id) in relevant]

    votes = replay(ws, train_queries, judge, shown=shown, progress=progress)
    clock["ask_and_feedback"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = ws.improve(
        holdout=holdout,
        margin=margin,
        min_ranker_questions=min_ranker_questions,
        finetune=finetune,
        min_finetune_pairs=min_finetune_pairs,
        finetune_epochs=finetune_epochs,
    )
    clock["improve"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    after = evaluate_beir(ws, root, split=test_split, mode="hybrid", progress=progress)
    clock["measure_after"] = time.perf_counter() - t0

    keys = ("ndcg@10", "recall@100", "mrr@10")
    return {
        "dataset": root.name,
        "before": {**{k: before[k] for k in keys}, "promoted": None},
        "after": {**{k: after[k] for k in keys}, "promoted": report.promoted},
        "train_queries": len(train_queries),
        "train_queries_dropped_as_test_duplicates": len(overlap),
        "test_queries": before["queries"],
        "votes": votes,
        "improve": report.to_dict(),
        "settings": {
            "shown_sources": shown,
            "holdout": holdout,
            "margin": margin,
            "min_ranker_questions": min_ranker_questions,
            "finetune": finetune,
            "min_finetune_pairs": min_finetune_pairs,
            "finetune_epochs": finetune_epochs or ws.config.improve.finetune_epochs,
        },
        "seconds": {k: round(v, 1) for k, v in clock.items()},
    }


def _norm(text: str) -> str:
    return " ".join(text.lower().split())
