"""Ask: retrieve, check the evidence, answer with citations, and log the interaction.

The interaction is committed to the store before the answer is returned.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from datawheel.apps.rag.calibrate import load_or_fit
from datawheel.apps.rag.followup import TURNS, standalone
from datawheel.apps.rag.rank import rank
from datawheel.apps.rag.retrieve import Ranking
from datawheel.errors import ConfigError
from datawheel.feedback.log import MAX_QUESTION_CHARS, Interaction, new_interaction_id
from datawheel.models.generators.base import DECLINE_TEXT, Generation, Passage
from datawheel.store.catalog import Filter

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

WEAK_EVIDENCE = (
    "I could not find this in the knowledge base: the closest sources below do not look "
    "like they answer it (confidence {confidence:.0%})."
)
# the sources looked relevant, but the generator found no answer in them: the retrieval
# confidence (high, or 100% on a corpus too small to calibrate) would read as a contradiction
NOT_IN_SOURCES = (
    "I could not find this in the knowledge base: none of the closest sources below answers it."
)


NOTHING_READABLE = (
    "I could not find anything to answer from: the knowledge base is empty, or holds nothing "
    "your groups may read. Ingest documents first (datawheel ingest kb/ ~/docs)."
)


@dataclass
class Source:
    n: int
    chunk_id: str
    doc_id: str
    title: str
    uri: str
    heading: str
    snippet: str
    score: float
    cited: bool


@dataclass
class Answer:
    id: str
    question: str
    text: str
    sources: list[Source]
    confidence: float
    declined: bool
    answered_from: str  # generator, memory, declined
    generator: str
    version: str | None
    latency_ms: float
    warnings: list[str] = field(default_factory=list)
    memory_question: str | None = None  # the curated question answered from, if any
    helped_question: str | None = None  # the past question whose helpful sources lead, if any
    curated_by: dict[str, str | None] | None = None  # a curated answer's author and approver
    conversation: str | None = None  # the conversation this turn belongs to
    asked_as: str | None = None  # a follow-up as it was searched, with the earlier turn

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_sources(self) -> str:
        """The answer followed by its numbered sources, as chat clients show it."""
        lines = [self.text]
        if self.sources:
            lines.append("")
            lines.append("Sources:")
            for s in self.sources:
                where = f" — {s.heading}" if s.heading else ""
                lines.append(f"[{s.n}] {s.title}{where} ({s.uri})")
        return "\n".join(lines)


def validate_question(question: str) -> str:
    text = question.strip()
    if not text:
        raise ConfigError(
            "the question is empty; ask something, e.g. datawheel ask 'refund policy?'"
        )
    if len(text) > MAX_QUESTION_CHARS:
        raise ConfigError(
            f"the question is {len(text):,} characters; the limit is {MAX_QUESTION_CHARS:,}. "
            "Ask a shorter question, or search for a distinctive phrase instead"
        )
    return text


def ask(
    ws: Workspace,
    question: str,
    *,
    user: str = "anonymous",
    groups: Sequence[str] | None = None,
    k: int | None = None,
    record: bool = True,
    conversation: str | None = None,
    earlier: Sequence[str] | None = None,
) -> Answer:
    """Answer ``question``; with ``conversation`` (or the ``earlier`` questions of a chat),
    a follow-up is searched together with the turn it follows."""
    started = time.perf_counter()
    question = validate_question(question)
    if conversation is not None and not 0 < len(conversation) <= 64:
        raise ConfigError("a conversation id is 1 to 64 characters, e.g. returns-2026-12")
    asked = question
    if earlier is None and conversation:
        turns = ws.interactions.conversation(conversation, user, limit=TURNS)
        earlier = [turn.asked_as or turn.question for turn in turns]
    if earlier:
        asked = standalone(question, earlier[-TURNS:], ws.indexes.bm25.tokenize)
    asked_as = asked if asked != question else None
    question, shown_question = asked, question
    k = k or ws.config.generation.sources
    flt = Filter.build(None, groups)
    model, variant = ws.model_for(user)
    qvec = ws.embedder.embed([question])[0]
    if len(ws.indexes.vectors) == 0:
        ranking = Ranking([], {})
    else:
        ranking = rank(ws, question, k, "hybrid", flt, qvec, model)
    views = {v.id: v for v in ws.store.chunks([cid for cid, _ in ranking.hits])}
    hits = [(views[cid], score) for cid, score in ranking.hits if cid in views]
    calibration = load_or_fit(ws)
    n_tokens = len(ws.indexes.bm25.tokenize([question])[0])
    if not hits:
        confidence = 0.0
    elif calibration is None:  # too little content to calibrate: trust retrieval
        confidence = 1.0
    else:
        confidence = calibration.confidence(ranking.parts, n_tokens)
    vouched_sources = 0
    helped_question = None
    similarity = model.memory_similarity or ws.config.improve.memory_similarity
    vouched = model.memory.vouched(qvec, similarity)
    if vouched is not None:  # asked before: the sources its asker marked helpful go first
        entry, similarity = vouched
        helpful = [
            v
            for v in ws.store.chunks(entry.helpful_chunks)
            if flt is None or flt.matches(v.fields, v.groups)
        ]
        if helpful:
            ids = {v.id for v in helpful}
            top = hits[0][1] if hits else similarity
            hits = [(v, top) for v in helpful] + [h for h in hits if h[0].id not in ids]
            hits = hits[:k]
            confidence = max(confidence, similarity)
            vouched_sources = min(len(helpful), k)
            helped_question = entry.question
    warnings: list[str] = []
    memory_question = None
    curated_by = None
    curated = model.memory.closest_curated(qvec)
    if curated is not None and curated[1] >= similarity:
        entry, similarity = curated
        readable = {
            v.id: v
            for v in ws.store.chunks([c["chunk_id"] for c in entry.citations])
            if flt is None or flt.matches(v.fields, v.groups)
        }
        if len(readable) == len(entry.citations):
            memory_question = entry.question
            curated_by = {"author": entry.author, "approved_by": entry.approved_by}
            hits = [(readable[c["chunk_id"]], similarity) for c in entry.citations]
            generation = Generation(entry.answer or "", list(range(1, len(hits) + 1)), "memory")
            answered_from = "memory"
            confidence = max(confidence, similarity)
    if memory_question is None:
        passages = [
            Passage(n, v.id, v.title, v.heading, v.text, score)
            for n, (v, score) in enumerate(hits, start=1)
        ]
        if vouched_sources:  # the answer comes from them; the rest are shown, uncited
            passages = passages[:vouched_sources]
        if not passages or confidence < ws.config.generation.min_confidence:
            text = WEAK_EVIDENCE.format(confidence=confidence) if passages else NOTHING_READABLE
            generation = Generation(text, [], "declined", declined=True)
        else:
            generator = ws.generator_for(model)
            generation = generator.generate(question, passages, confidence=confidence)
            warnings.extend(generation.warnings)
        answered_from = "declined" if generation.declined else "generator"
        if generation.declined and generation.text == DECLINE_TEXT:
            generation.text = NOT_IN_SOURCES
    sources = [
        Source(
            n,
            v.id,
            v.doc_id,
            v.title,
            v.uri,
            v.heading,
            " ".join(v.text.split())[:240],
            float(score),
            n in generation.cited,
        )
        for n, (v, score) in enumerate(hits, start=1)
    ]
    answer = Answer(
        new_interaction_id(),
        shown_question,
        generation.text,
        sources,
        float(confidence),
        generation.declined,
        answered_from,
        generation.generator if answered_from != "memory" else "memory",
        model.version,
        0.0,
        warnings,
        memory_question,
        helped_question if memory_question is None else None,
        curated_by,
        conversation,
        asked_as,
    )
    answer.latency_ms = (time.perf_counter() - started) * 1000
    if record:
        ws.interactions.record(
            Interaction(
                answer.id,
                shown_question,
                answer.text,
                user,
                datetime.now(UTC),
                answer.latency_ms,
                answer.confidence,
                answer.declined,
                answered_from,
                [
                    {
                        "n": s.n,
                        "chunk_id": s.chunk_id,
                        "doc_id": s.doc_id,
                        "title": s.title,
                        "score": s.score,
                        "cited": s.cited,
                    }
                    for s in sources
                ],
                {
                    "version": model.version,
                    "retriever": f"hybrid(dense_weight={model.dense_weight:g})",
                    "ranker": model.ranker_name,
                    "generator": answer.generator,
                    "embedder": ws.embedder.model_id,
                    **variant,
                },
                warnings,
                conversation,
                asked_as,
            )
        )
    return answer
