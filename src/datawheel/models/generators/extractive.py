"""The offline answerer: quotes the sentences of the sources that best match the question.

No language model: each sentence of the top sources is scored by the question words it
shares (rarer words count more, stemmed), with a prior for the better-ranked source. The
best few sentences are given in source order, each cited. When no sentence shares a
content word with the question, it declines.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

from datawheel.clean.text import sentence_spans
from datawheel.models.generators.base import DECLINE_TEXT, Generation, Passage

Tokenize = Callable[[Sequence[str]], list[list[str]]]
VERSION = "extractive-1"


class ExtractiveGenerator:
    name = VERSION

    def __init__(self, tokenize: Tokenize, *, max_sentences: int = 3, max_chars: int = 700):
        self.tokenize = tokenize
        self.max_sentences = max_sentences
        self.max_chars = max_chars

    def generate(self, question: str, passages: Sequence[Passage]) -> Generation:
        sentences: list[tuple[int, int, str]] = []  # (passage index, position, text)
        for i, p in enumerate(passages):
            for pos, (start, end) in enumerate(sentence_spans(p.text)):
                text = " ".join(p.text[start:end].split())
                if len(text) >= 20:
                    sentences.append((i, pos, text))
        query = set(self.tokenize([question])[0])
        if not sentences or not query:
            return Generation(DECLINE_TEXT, [], self.name, declined=True)
        tokens = self.tokenize([s for _, _, s in sentences])
        df = Counter(t for toks in tokens for t in set(toks))
        n = len(sentences)
        scores = []
        for (i, _, _), toks in zip(sentences, tokens, strict=True):
            shared = query.intersection(toks)
            weight = sum(math.log(1 + n / df[t]) for t in shared)
            coverage = weight / (1 + 0.05 * len(toks))
            scores.append(coverage * (1.0 / (1 + 0.25 * i)))
        best = max(scores)
        if best <= 0:
            return Generation(DECLINE_TEXT, [], self.name, declined=True)
        ranked = sorted(range(n), key=lambda j: -scores[j])
        chosen: list[int] = []
        length = 0
        for j in ranked:
            if len(chosen) == self.max_sentences or scores[j] < 0.5 * best:
                break
            if chosen and length + len(sentences[j][2]) > self.max_chars:
                continue
            chosen.append(j)
            length += len(sentences[j][2])
        chosen.sort(key=lambda j: (sentences[j][0], sentences[j][1]))
        parts = [f"{sentences[j][2]} [{passages[sentences[j][0]].n}]" for j in chosen]
        cited: list[int] = []
        for j in chosen:
            number = passages[sentences[j][0]].n
            if number not in cited:
                cited.append(number)
        return Generation(" ".join(parts), cited, self.name)
