"""The offline answerer: quotes the sentence of the sources that answers the question.

No language model. ``select.Selector`` scores every sentence, list item and table row of the
retrieved sources (question words held, closeness in meaning, the kind of thing asked for,
source rank) and the question itself (the chance the sources do not answer it). The answer
is the best candidate, plus the runner-up when it is nearly as likely and both fit in
``max_chars``, each cited; it declines when the question model says the sources do not
answer.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datawheel.models.generators.base import DECLINE_TEXT, Generation, Passage
from datawheel.models.generators.select import Embed, Selector, Tokenize, compose

VERSION = "extractive-2"


class ExtractiveGenerator:
    name = VERSION

    def __init__(
        self,
        tokenize: Tokenize,
        embed: Embed | None = None,
        *,
        max_chars: int = 300,
        weights: Path | None = None,
    ):
        self.selector = Selector.load(tokenize, embed, weights)
        self.max_chars = max_chars
        self.name = f"{VERSION}:{self.selector.version}"

    def adapted(self, weights: dict[str, Any]) -> ExtractiveGenerator:
        """This generator with selector weights learned from feedback (a model version's)."""
        other = copy.copy(self)
        other.selector = self.selector.with_weights(weights)
        other.name = f"{VERSION}:{other.selector.version}"
        return other

    def generate(
        self, question: str, passages: Sequence[Passage], *, confidence: float = 1.0
    ) -> Generation:
        scored = self.selector.score(question, passages, confidence)
        if scored is None or scored.unanswered > self.selector.decline_above:
            return Generation(DECLINE_TEXT, [], self.name, declined=True)
        parts = compose(scored, self.max_chars, self.selector.runner_up)
        text = " ".join(f"{p.text} [{passages[p.passage].n}]" for p in parts)
        cited = list(dict.fromkeys(passages[p.passage].n for p in parts))
        return Generation(text, cited, self.name)

    def evidence(self, question: str, passages: Sequence[Passage]) -> list[str]:
        """The answer this generator would give, as cited sentences, for an LLM's prompt."""
        scored = self.selector.score(question, passages)
        if scored is None:
            return []
        parts = compose(scored, self.max_chars, self.selector.runner_up)
        return [f"{p.text} [{passages[p.passage].n}]" for p in parts]
