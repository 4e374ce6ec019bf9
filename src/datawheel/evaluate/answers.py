"""Answer metrics that count what a reader sees: does the answer *text* answer?

An answerable question is ``answered_right`` when the answer is not declined, is at most
``max_chars`` long with its ``[n]`` citations taken out, and holds one of the acceptable
answers after SQuAD's normalisation (lower case, punctuation and the articles a/an/the
dropped, spaces collapsed). Citing the right document is reported apart
(``cited_relevant``) and never counts as right. An unanswerable question is handled right
when the answer declines.

SQuAD 1.1 and 2.0 files are read directly: every paragraph becomes a document titled by
its article, every question is asked.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datawheel.errors import SourceError

MAX_CHARS = 300
_CITATION = re.compile(r"\s*\[\d{1,3}\](?:\s*\[\d{1,3}\])*")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass
class Question:
    """One question of a set, with what a right answer must hold."""

    question: str
    answers: list[str] = field(default_factory=list)  # any one of them counts
    facts: list[str] = field(default_factory=list)  # every one of them must be there
    relevant: list[str] = field(default_factory=list)  # document uri suffixes
    unanswerable: bool = False

    @property
    def judged_by_text(self) -> bool:
        return bool(self.answers or self.facts)


def normalize(text: str) -> str:
    """SQuAD's answer normalisation.

    Example:
        >>> normalize("The Normans, in 10th-century France.")
        'normans in 10thcentury france'
    """
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def without_citations(text: str) -> str:
    """The answer as read: ``[1]``-style citation markers removed."""
    return " ".join(_CITATION.sub("", text).split())


def holds_answer(text: str, q: Question) -> bool:
    plain = f" {normalize(text)} "
    if q.answers and any(f" {normalize(a)} " in plain for a in q.answers if normalize(a)):
        return True
    return bool(q.facts) and all(f" {normalize(f)} " in plain for f in q.facts)


def token_f1(text: str, references: Iterable[str]) -> float:
    """SQuAD's token F1 of ``text`` against the best of ``references``."""
    got = normalize(text).split()
    best = 0.0
    for ref in references:
        want = normalize(ref).split()
        common = sum((Counter(got) & Counter(want)).values())
        if common:
            precision, recall = common / len(got), common / len(want)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


@dataclass
class Reply:
    """What the scorer needs of an answer."""

    text: str
    declined: bool
    cited_uris: list[str]
    latency_ms: float


def score(
    questions: list[Question],
    replies: list[Reply],
    *,
    max_chars: int = MAX_CHARS,
) -> dict[str, Any]:
    """The answer metrics of ``replies`` to ``questions`` (same order)."""
    right: list[bool] = []
    f1: list[float] = []
    answerable_declined: list[bool] = []
    unanswerable_declined: list[bool] = []
    cited: list[bool] = []
    lengths: list[int] = []
    for q, r in zip(questions, replies, strict=True):
        text = without_citations(r.text)
        if not r.declined:
            lengths.append(len(text))
        if q.unanswerable:
            unanswerable_declined.append(r.declined)
            continue
        answerable_declined.append(r.declined)
        if q.relevant:
            cited.append(
                not r.declined and any(u.endswith(s) for u in r.cited_uris for s in q.relevant)
            )
        if q.judged_by_text:
            ok = not r.declined and len(text) <= max_chars and holds_answer(text, q)
            right.append(ok)
            f1.append(0.0 if r.declined else token_f1(text, q.answers or [" ".join(q.facts)]))
    latencies = [r.latency_ms for r in replies]

    def share(flags: list[bool]) -> float | None:
        return round(sum(flags) / len(flags), 4) if flags else None

    return {
        "questions": len(questions),
        "answerable": len(answerable_declined),
        "unanswerable": len(unanswerable_declined),
        "answered_right": share(right),
        "token_f1": round(float(np.mean(f1)), 4) if f1 else None,
        "answerable_declined": share(answerable_declined),
        "unanswerable_declined": share(unanswerable_declined),
        "cited_relevant": share(cited),
        "median_answer_chars": int(np.median(lengths)) if lengths else 0,
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else 0.0,
        "latency_p95_ms": round(float(np.percentile(latencies, 95)), 1) if latencies else 0.0,
        "max_chars": max_chars,
    }


_EXPECTED = (
    '{"question": ..., "answers": [texts], "relevant": [paths], "facts": [texts], '
    '"unanswerable": false}'
)


def load_questions(path: Path) -> list[Question]:
    """A question set: JSON lines, each with ``question`` and what judges its answer."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read question set {path}: {exc}") from exc
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = row.get("answers") or ([row["answer"]] if row.get("answer") else [])
            if isinstance(answers, str):
                answers = [answers]
            q = Question(
                question=str(row["question"]),
                answers=[str(a) for a in answers],
                facts=[str(f) for f in row.get("facts") or []],
                relevant=[str(r) for r in row.get("relevant") or []],
                unanswerable=bool(row.get("unanswerable", False)),
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise SourceError(f"{path}:{n}: expected {_EXPECTED} ({exc})") from exc
        if not (q.relevant or q.judged_by_text or q.unanswerable):
            raise SourceError(
                f"{path}:{n}: give answers, facts, relevant documents or "
                f"unanswerable: true; expected {_EXPECTED}"
            )
        rows.append(q)
    if not rows:
        raise SourceError(f"{path} holds no questions; expected JSON lines {_EXPECTED}")
    return rows


@dataclass
class SquadSet:
    corpus: list[dict[str, str]]  # BEIR-style records: _id, title, text
    questions: list[Question]


def load_squad(path: Path) -> SquadSet:
    """A SQuAD 1.1 or 2.0 file: its paragraphs as documents, its questions with answers."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        articles = data["data"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SourceError(
            f"{path} is not a SQuAD file ({exc}); expected the official JSON: "
            '{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}'
        ) from exc
    if not isinstance(articles, list):
        raise SourceError(f'{path} is not a SQuAD file: "data" is not a list of articles')
    corpus: list[dict[str, str]] = []
    questions: list[Question] = []
    for a, article in enumerate(articles):
        title = str(article.get("title", f"article {a + 1}")).replace("_", " ")
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            doc_id = f"{a}-{p}"
            corpus.append({"_id": doc_id, "title": title, "text": paragraph["context"]})
            for qa in paragraph.get("qas", []):
                impossible = bool(qa.get("is_impossible", False))
                answers = list(dict.fromkeys(x["text"] for x in qa.get("answers", [])))
                if not impossible and not answers:
                    continue
                questions.append(
                    Question(
                        question=qa["question"].strip(),
                        answers=[] if impossible else answers,
                        relevant=[f"#{doc_id}"],
                        unanswerable=impossible,
                    )
                )
    if not questions:
        raise SourceError(f"{path} holds no questions with answers")
    return SquadSet(corpus, questions)


def write_corpus(records: list[dict[str, str]], path: Path) -> Path:
    """Write SQuAD paragraphs as a BEIR corpus file, which ingest reads one line a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not path.exists() or path.read_text(encoding="utf-8") != lines:
        path.write_text(lines, encoding="utf-8")
    return path


Ask = Callable[[str], Reply]


def ask_all(
    ask: Ask,
    questions: list[Question],
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Reply]:
    replies = []
    for i, q in enumerate(questions):
        replies.append(ask(q.question))
        if progress and (i % 10 == 0 or i == len(questions) - 1):
            progress("questions", i + 1, len(questions))
    return replies
