"""Evaluate on a question set: JSON lines of questions, the documents and facts that answer them.

Each line: ``{"question": "...", "answers": ["30 days"], "relevant": ["handbook/refunds.md"]}``
(``answers``: acceptable answers, any one counts; ``facts``: texts that must all be there;
``unanswerable: true`` for a question the documents cannot answer). A relevant entry matches
a document whose uri ends with it, so sets stay valid wherever the folder is ingested from.

Two measures: retrieval (nDCG@10, recall@100, MRR@10 over the relevant documents) and the
answers as ``ask`` gives them, judged by their text (see ``evaluate.answers``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from datawheel.apps.rag.rank import rank
from datawheel.errors import SourceError
from datawheel.evaluate.answers import (
    MAX_CHARS,
    Question,
    Reply,
    ask_all,
    load_questions,
    load_squad,
    score,
    write_corpus,
)
from datawheel.evaluate.metrics import score_run

if TYPE_CHECKING:
    from datawheel.improve.model import RagModel
    from datawheel.ingest import Progress
    from datawheel.workspace import Workspace


def evaluate_questions(
    ws: Workspace,
    path: Path,
    mode: str,
    model: RagModel | None = None,
    answers: bool = False,
    max_chars: int = MAX_CHARS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    return evaluate_set(
        ws, load_questions(path), path.name, mode, model, answers, max_chars, progress
    )


def evaluate_set(
    ws: Workspace,
    questions: list[Question],
    name: str,
    mode: str,
    model: RagModel | None = None,
    answers: bool = False,
    max_chars: int = MAX_CHARS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Retrieval metrics over the questions that name relevant documents, and (``answers``)
    the answer metrics of asking every question."""
    run: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for i, q in enumerate(questions):
        if not q.relevant or q.unanswerable:
            continue
        qid = str(i)
        ranking = rank(ws, q.question, 100, mode, model=model)
        views = {v.id: v.uri for v in ws.store.chunks([cid for cid, _ in ranking.hits])}
        ranked = list(dict.fromkeys(views[c] for c, _ in ranking.hits if c in views))
        run[qid] = ranked
        qrels[qid] = {uri: 1 for uri in ranked if any(uri.endswith(r) for r in q.relevant)}
        # relevant documents never retrieved still count against recall
        for r in q.relevant:
            if not any(uri.endswith(r) for uri in qrels[qid]):
                qrels[qid][f"missing:{r}"] = 1
    result: dict[str, Any] = {**score_run(run, qrels), "mode": mode, "dataset": name}
    if answers:
        result.update(score_answers(ws, questions, max_chars, progress))
    return result


def score_answers(
    ws: Workspace,
    questions: list[Question],
    max_chars: int = MAX_CHARS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ask every question (not logged) and score the answers' text."""
    replies = ask_all(lambda q: ask_reply(ws, q), questions, progress)
    return {**score(questions, replies, max_chars=max_chars), "generator": ws.generator.name}


def evaluate_squad(
    ws: Workspace,
    path: Path,
    mode: str,
    max_chars: int = MAX_CHARS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ingest a SQuAD file's paragraphs (one document each, titled by the article) and ask
    every question."""
    squad = load_squad(path)
    corpus = write_corpus(squad.corpus, ws.path / "evaluation" / f"{path.stem}.jsonl")
    report = ws.ingest([corpus], progress=progress)
    if report.failed:
        raise SourceError(f"{len(report.failed)} paragraphs of {path} could not be ingested")
    return evaluate_set(ws, squad.questions, path.name, mode, None, True, max_chars, progress)


def ask_reply(ws: Workspace, question: str) -> Reply:
    answer = ws.ask(question, record=False)
    uris = {s.chunk_id: s.uri for s in answer.sources if s.cited}
    return Reply(answer.text, answer.declined, list(uris.values()), answer.latency_ms)
