"""What every answer generator takes and returns.

A generator gets the question and the numbered sources retrieval found, and writes an
answer that cites them inline as ``[1]``, ``[2]``. Deciding *whether* to answer (the
calibrated confidence check) happens before, in ``apps.rag.answer``; a generator may still
decline when its sources do not hold the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

_CITATION = re.compile(r"\[(\d{1,2})\]")


@dataclass(frozen=True)
class Passage:
    """One numbered source handed to a generator."""

    n: int  # the citation number, from 1
    chunk_id: str
    title: str
    heading: str
    text: str
    score: float


@dataclass
class Generation:
    text: str  # the answer, with [n] citations inline
    cited: list[int]  # the citation numbers used, in order of first use
    generator: str  # what wrote it, e.g. "extractive-1" or "openai:gpt-4o-mini"
    declined: bool = False
    warnings: list[str] = field(default_factory=list)


class Generator(Protocol):
    name: str

    def generate(
        self, question: str, passages: Sequence[Passage], *, confidence: float = 1.0
    ) -> Generation:
        """``confidence``: retrieval's calibrated chance that the sources hold the answer."""
        ...


def cited_numbers(text: str, available: int) -> list[int]:
    """Citation numbers in ``text`` that point at one of ``available`` sources, first use first."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        n = int(match.group(1))
        if 1 <= n <= available and n not in seen:
            seen.append(n)
    return seen


def prompt_messages(
    question: str, passages: Sequence[Passage], evidence: Sequence[str] = ()
) -> list[dict[str, str]]:
    """The chat messages every LLM generator sends: numbered sources, the sentences the
    answer selector found most likely to answer (``evidence``, cited), then the question."""
    sources = "\n\n".join(
        f"[{p.n}] {p.title}{' > ' + p.heading if p.heading else ''}\n{p.text}" for p in passages
    )
    system = (
        "You answer questions using only the numbered sources given. Cite every claim with "
        "its source number in square brackets, like [1] or [2]. Be brief. If the sources do "
        "not contain the answer, say exactly: I don't know based on the available sources."
    )
    lead = ""
    if evidence:
        lines = "\n".join(f"- {e}" for e in evidence)
        lead = f"The sentences most likely to answer:\n{lines}\n\n"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"Sources:\n\n{sources}\n\n{lead}Question: {question}"},
    ]


DECLINE_TEXT = "I don't know based on the available sources."
