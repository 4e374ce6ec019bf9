"""Feedback turned into training examples: one per answered question that got a vote."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.improve.memory import FeedbackMemory, MemoryEntry

if TYPE_CHECKING:
    from datawheel.workspace import Workspace


@dataclass
class Example:
    interaction_id: str
    question: str
    vote: str  # the latest vote
    helpful: list[str]  # chunk ids, best evidence first
    shown: list[str]  # chunk ids shown with the answer
    doc_of: dict[str, str]  # chunk id -> document id, for shown chunks
    answer: str | None  # curated answer text (a 👍 answer or a correction), if any
    citations: list[dict[str, str]] = field(default_factory=list)
    author: str | None = None  # who wrote the curated answer (a correction's voter)
    approved_by: str | None = None  # who approved it (a 👍 answer: who voted it up)
    failure: str | None = None  # the latest vote's failure kind, e.g. not_in_sources
    confidence: float = 1.0  # retrieval's confidence when it was answered
    scores: list[float] = field(default_factory=list)  # the shown chunks' retrieval scores
    corrected: bool = False  # the curated answer is a person's correction, not a 👍 answer

    @property
    def helpful_docs(self) -> list[str]:
        return list(dict.fromkeys(self.doc_of[c] for c in self.helpful if c in self.doc_of))

    def in_holdout(self, share: float) -> bool:
        """A stable split by the question's wording: a question is held out in every improve
        run or never, and the same question asked twice never lands on both sides."""
        digest = hashlib.sha256(" ".join(self.question.lower().split()).encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < share


def collect(ws: Workspace) -> list[Example]:
    """Every interaction with feedback; several users' marks are merged, the latest vote wins.

    A correction counts once an editor approved it (``improve.corrections: review``, the
    default), or unless one rejected it (``trusted``).
    """
    trusted = ws.config.improve.corrections == "trusted"

    def usable(mark: Any) -> bool:
        if not mark.correction:
            return False
        return mark.review != "rejected" if trusted else mark.review == "approved"

    log = ws.interactions
    votes = log.feedback()
    by_interaction: dict[str, list] = {}
    for v in votes:
        by_interaction.setdefault(v.interaction_id, []).append(v)
    examples = []
    for item in log.interactions():
        marks = by_interaction.get(item.id)
        if not marks:
            continue
        latest = marks[-1]
        helpful = list(dict.fromkeys(c for m in marks for c in m.helpful))
        cited = [s["chunk_id"] for s in item.sources if s.get("cited")]
        if latest.vote == "up" and not helpful:
            helpful = cited  # a plain 👍: the cited sources helped
        corrected = next((m for m in reversed(marks) if usable(m)), None)
        correction = corrected.correction if corrected else None
        answer, citations = None, []
        author = approved_by = None
        if corrected:
            answer = correction
            citations = [s for s in item.sources if s["chunk_id"] in (helpful or cited)]
            author, approved_by = corrected.user, corrected.reviewed_by or "trusted"
        elif (
            latest.vote == "up"
            and not item.declined
            and item.answered_from != "memory"
            and set(cited) & set(helpful)  # not when the sources marked helpful went uncited
        ):
            answer = item.answer
            citations = [s for s in item.sources if s.get("cited")]
            author, approved_by = item.versions.get("generator", "datawheel"), latest.user
        if answer and citations:
            renumber = {s["n"]: i for i, s in enumerate(citations, start=1)}
            for old, new in renumber.items():
                answer = answer.replace(f"[{old}]", f"[{{{new}}}]")
            answer = answer.replace("[{", "[").replace("}]", "]")
        examples.append(
            Example(
                item.id,
                item.question,
                latest.vote,
                helpful,
                [s["chunk_id"] for s in item.sources],
                {s["chunk_id"]: s["doc_id"] for s in item.sources},
                answer if citations or correction else None,
                [
                    {"n": str(i), "chunk_id": s["chunk_id"], "title": s["title"]}
                    for i, s in enumerate(citations, start=1)
                ],
                author,
                approved_by,
                latest.failure,
                item.confidence,
                [float(s.get("score", 0.0)) for s in item.sources],
                corrected is not None,
            )
        )
    return examples


def build_memory(examples: list[Example], vectors: np.ndarray) -> FeedbackMemory:
    entries = []
    for ex in examples:
        helpful_docs = ex.helpful_docs
        engaged = ex.vote == "down" or bool(ex.helpful)
        failed = (
            [d for d in dict.fromkeys(ex.doc_of.values()) if d not in helpful_docs]
            if engaged
            else []
        )
        entries.append(
            MemoryEntry(
                ex.interaction_id,
                ex.question,
                ex.vote,
                list(ex.helpful),
                helpful_docs,
                failed,
                ex.answer,
                ex.citations,
                ex.author if ex.answer else None,
                ex.approved_by if ex.answer else None,
            )
        )
    return FeedbackMemory(entries, vectors)
