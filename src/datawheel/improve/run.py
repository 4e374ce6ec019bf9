"""Improve: build candidate versions from feedback, judge them on held-out feedback, promote.

Candidates:
  * fusion  - the dense/BM25 fusion weight re-chosen on the training feedback;
  * ranker  - a LightGBM LambdaRank model over retrieval scores and feedback history.
Each carries the feedback memory (curated answers). A candidate is promoted only when it
beats the version in use by ``improve.margin`` nDCG@10 on the held-out feedback and loses
on no registered eval set. When no ranking candidate wins but there are new curated answers,
the version in use is re-issued with the refreshed memory (its ranking is unchanged).
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.apps.rag import fuse
from datawheel.apps.rag.retrieve import Ranking
from datawheel.errors import ConfigError, DatawheelError, MissingExtraError
from datawheel.evaluate.answers import MAX_CHARS
from datawheel.improve.answers import (
    SelectorOutcome,
    answer_examples,
    calibrate_similarity,
    learn_selector,
)
from datawheel.improve.examples import Example, build_memory, collect
from datawheel.improve.features import FEATURES, candidate_features
from datawheel.improve.memory import FeedbackMemory
from datawheel.improve.model import RagModel
from datawheel.improve.registry import Registry

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
MIN_RANKER_QUESTIONS = 10
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


@dataclass
class Settings:
    holdout: float
    margin: float
    min_ranker_questions: int = MIN_RANKER_QUESTIONS
    finetune: bool = True
    min_finetune_pairs: int = 1000
    finetune_epochs: int = 2


@dataclass
class ImproveReport:
    examples: int
    train: int
    holdout: int
    current: str | None
    promoted: str | None
    challenger: str | None = None  # under an online A/B test, not promoted yet
    candidates: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. a copy to object storage failed

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class NotEnoughFeedback(DatawheelError):
    """There is no feedback to learn from yet."""


def baseline(ws: Workspace) -> RagModel:
    return RagModel(None, ws.config.search.dense_weight, FeedbackMemory.empty(ws.embedder.dim))


def load_current(ws: Workspace) -> RagModel:
    return load_version(ws, Registry(ws.store).current())


def load_version(ws: Workspace, version: str | None) -> RagModel:
    if version is None:
        return baseline(ws)
    row = Registry(ws.store).get(version)
    return RagModel.load(ws.model_folder(version, row["artifacts"]), ws.embedder.dim)


def run_improve(
    ws: Workspace,
    *,
    holdout: float | None = None,
    margin: float | None = None,
    min_ranker_questions: int = MIN_RANKER_QUESTIONS,
    finetune: bool = True,
    min_finetune_pairs: int | None = None,
    finetune_epochs: int | None = None,
    only: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> ImproveReport:
    cfg = ws.config.improve
    settings = Settings(
        cfg.holdout if holdout is None else holdout,
        cfg.margin if margin is None else margin,
        min_ranker_questions,
        finetune,
        cfg.min_finetune_pairs if min_finetune_pairs is None else min_finetune_pairs,
        cfg.finetune_epochs if finetune_epochs is None else finetune_epochs,
    )
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    examples = collect(ws)
    if not examples:
        raise NotEnoughFeedback(
            "no feedback yet: ask questions, vote on the answers (datawheel feedback ID up|down), "
            "then run improve"
        )
    held = [ex.in_holdout(settings.holdout) for ex in examples]
    train = [ex for ex, h in zip(examples, held, strict=True) if not h]
    test = [ex for ex, h in zip(examples, held, strict=True) if h and ex.helpful_docs]
    vectors = ws.embedder.embed([ex.question for ex in examples])
    train_vectors = vectors[[i for i, h in enumerate(held) if not h]]
    memory_all = build_memory(examples, vectors)
    memory_train = build_memory(train, train_vectors)
    clock["collect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    current = ws.model
    registry = Registry(ws.store)
    holdout_ids = {ex.interaction_id for ex, h in zip(examples, held, strict=True) if h}
    judged_current = RagModel(
        current.version,
        current.dense_weight,
        _without(current.memory, holdout_ids),
        current.ranker,
        current.rerank_depth,
    )
    cache = _Retrieval(ws, vectors, examples)
    report = ImproveReport(
        len(examples),
        len(train),
        len(test),
        current.version,
        None,
        settings=settings.__dict__,
    )
    base_score = cache.ndcg(judged_current, test)
    report.candidates.append(
        {"name": "current", "version": current.version, "holdout_ndcg@10": base_score}
    )
    clock["retrieve"] = time.perf_counter() - t0

    version = registry.next_id()
    t0 = time.perf_counter()
    base = _Arm(None, cache, memory_train, memory_all, current.embedder)
    best_weight = _best_weight(base, train)
    candidates: list[tuple[str, RagModel, _Arm]] = [
        ("fusion", base.model(best_weight), base),
    ]
    clock["fusion"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trainable = [ex for ex in train if ex.helpful]
    if len(trainable) < settings.min_ranker_questions:
        report.skipped.append(
            f"ranker: {len(trainable)} training questions with helpful sources, "
            f"{settings.min_ranker_questions} needed"
        )
    else:
        booster = _train_ranker(cache, trainable, memory_train, best_weight)
        candidates.append(("ranker", base.model(best_weight, booster), base))
    clock["ranker"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tuned = _finetune_arm(ws, cache, examples, held, best_weight, settings, version, report)
    if tuned is not None:
        with ws.serving(tuned.embedder_obj, tuned.indexes):
            weight = _best_weight(tuned, train)
            candidates.append(("finetune", tuned.model(weight), tuned))
            if len(trainable) >= settings.min_ranker_questions:
                booster = _train_ranker(tuned.cache, trainable, tuned.memory_train, weight)
                candidates.append(("finetune+ranker", tuned.model(weight, booster), tuned))
    clock["finetune"] = time.perf_counter() - t0

    if only is not None:
        unknown = set(only) - {"fusion", "ranker", "finetune", "finetune+ranker", "selector"}
        if unknown:
            raise ConfigError(
                f"unknown candidate(s) {', '.join(sorted(unknown))}; valid: fusion, ranker, "
                "finetune, finetune+ranker, selector"
            )
        candidates = [c for c in candidates if c[0] in only]
    t0 = time.perf_counter()
    learned = SelectorOutcome(None, {})
    if only is None or "selector" in only:
        learned = _learn_selector(ws, current, examples, held, settings.margin)
        report.candidates.append(learned.entry)
    selector = learned.weights if learned.weights is not None else current.selector
    in_use = current.memory_similarity or cfg.memory_similarity
    calibrated, line = calibrate_similarity(
        memory_train,
        [ex for ex, h in zip(examples, held, strict=True) if h],
        vectors[[i for i, h in enumerate(held) if h]],
        in_use,
    )
    report.candidates.append(line)
    similarity = calibrated if calibrated is not None else current.memory_similarity
    answers_learned = learned.weights is not None or calibrated is not None
    clock["selector"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    best: tuple[str, RagModel, _Arm] | None = None
    best_score = base_score
    for name, model, arm in candidates:
        with ws.serving(arm.embedder_obj, arm.indexes):
            score = arm.cache.ndcg(model, test)
            entry: dict[str, Any] = {"name": name, "dense_weight": model.dense_weight}
            entry["holdout_ndcg@10"] = score
            entry.update(_eval_sets(ws, model, judged_current, settings.margin))
        report.candidates.append(entry)
        beats = score >= base_score + settings.margin and not entry.get("eval_set_regression")
        if beats and (best is None or score > best_score):
            best, best_score = (name, model, arm), score
    clock["evaluate"] = time.perf_counter() - t0

    if best is not None:
        name, model, arm = best
        ranker = model.ranker
        if ranker is not None:
            # The winner is refitted on all feedback, held-out part included.
            t0 = time.perf_counter()
            everything = [ex for ex in examples if ex.helpful]
            with ws.serving(arm.embedder_obj, arm.indexes):
                ranker = _train_ranker(arm.cache, everything, arm.memory_all, model.dense_weight)
            clock["refit"] = time.perf_counter() - t0
        chosen = RagModel(
            version,
            model.dense_weight,
            arm.memory_all,
            ranker,
            embedder=arm.embedder,
            selector=selector,
            memory_similarity=similarity,
        )
        note = (
            f"{name}: held-out nDCG@10 {base_score:.4f} -> {best_score:.4f} "
            f"on {len(test)} questions"
        )
    elif _memory_grew(memory_all, current.memory) or answers_learned:
        chosen = RagModel(
            version,
            current.dense_weight,
            memory_all,
            current.ranker,
            current.rerank_depth,
            current.embedder,
            selector,
            similarity,
        )
        best_score = base_score
        note = (
            f"answer memory refreshed: {len(memory_all.curated)} curated answers, "
            f"{len(memory_all.vouching)} questions with sources marked helpful; ranking unchanged "
            f"(no candidate beat held-out nDCG@10 {base_score:.4f} by {settings.margin})"
        )
    else:
        chosen = None
        note = f"no candidate beat held-out nDCG@10 {base_score:.4f} by {settings.margin}"
    if learned.weights is not None:
        note += f"; answer selector learned from feedback: {learned.entry['note']}"
    if calibrated is not None:
        note += f"; curated answers matched by meaning: {line['note']}"
    folder = f"models/{version}"
    # With ab.share set, a winner first serves that share of users (same embedder only: a
    # fine-tuned one needs its own index, so it is judged offline and promoted at once).
    online = chosen is not None and ws.config.ab.share > 0 and chosen.embedder == current.embedder
    if chosen is not None:
        chosen.save(ws.path / folder)
        registry.record(
            version,
            status="challenger" if online else "promoted",
            parent=current.version,
            settings={
                "dense_weight": chosen.dense_weight,
                "ranker": chosen.ranker is not None,
                "features": list(FEATURES) if chosen.ranker is not None else [],
                "memory": len(chosen.memory),
                "curated_answers": len(chosen.memory.curated),
                "embedder": chosen.embedder,
                "selector": (chosen.selector or {}).get("version"),
                "memory_similarity": chosen.memory_similarity,
            },
            metrics={"holdout_ndcg@10": best_score, "before": base_score, "questions": len(test)},
            artifacts=folder,
            note=note,
        )
        if online:
            from datawheel.improve import ab

            started = ab.start(ws, current.version, version)
            report.challenger = version
            note += f"; A/B test {started.id} serves it to {started.share:.0%} of users"
        else:
            registry.promote(version)
            report.promoted = version
        ws.reload_model()
    if chosen is None or chosen.embedder != f"{folder}/embedder":
        shutil.rmtree(ws.path / folder / "embedder", ignore_errors=True)  # a losing fine-tune
    if chosen is None:
        shutil.rmtree(ws.path / folder, ignore_errors=True)
        report.skipped.append(note)
    report.candidates.append({"name": "decision", "note": note})
    report.seconds = {k: round(v, 2) for k, v in clock.items()}
    return report


def _learn_selector(
    ws: Workspace, current: RagModel, examples: list[Example], held: list[bool], margin: float
) -> SelectorOutcome:
    """The answer selector refitted on the training feedback, judged on the held-out part."""
    chunks = ws.store.chunks
    train = answer_examples([ex for ex, h in zip(examples, held, strict=True) if not h], chunks)
    test = answer_examples([ex for ex, h in zip(examples, held, strict=True) if h], chunks)
    selector = ws.generator_for(current).selector
    return learn_selector(selector, train, test, margin=margin, max_chars=MAX_CHARS)


@dataclass
class _Arm:
    """One way of serving: an embedder (None: the current one) with its retrieval cache."""

    embedder: str | None  # the model folder, relative to the workspace
    cache: _Retrieval
    memory_train: FeedbackMemory
    memory_all: FeedbackMemory
    current_embedder: str | None = None
    embedder_obj: Any = None
    indexes: Any = None

    def __post_init__(self) -> None:
        if self.embedder is None:
            self.embedder = self.current_embedder

    def model(self, weight: float, ranker: Any = None) -> RagModel:
        return RagModel(None, weight, self.memory_train, ranker, embedder=self.embedder)


def _best_weight(arm: _Arm, train: list[Example]) -> float:
    scores = {w: arm.cache.ndcg(arm.model(w), train) for w in WEIGHTS}
    return max(WEIGHTS, key=lambda w: (round(scores[w], 4), -abs(w - 0.5)))


def _finetune_arm(
    ws: Workspace,
    cache: _Retrieval,
    examples: list[Example],
    held: list[bool],
    weight: float,
    settings: Settings,
    version: str,
    report: ImproveReport,
) -> _Arm | None:
    """Fine-tune the embedder on the training feedback, re-embed, and build its arm."""
    from datawheel.improve.finetune import mine_triplets, train_embedder
    from datawheel.models.embedder import load_embedder
    from datawheel.store.indexes import IndexSet

    train = [ex for ex, h in zip(examples, held, strict=True) if not h]
    test = [ex for ex, h in zip(examples, held, strict=True) if h]
    pairs = sum(len(ex.helpful) for ex in train)
    if not settings.finetune:
        return None
    if pairs < settings.min_finetune_pairs:
        report.skipped.append(
            f"fine-tune: {pairs} helpful pairs in the training feedback, "
            f"{settings.min_finetune_pairs} needed (improve.min_finetune_pairs)"
        )
        return None
    triplets = mine_triplets(cache, train, weight)
    held_out = mine_triplets(cache, test, weight)
    folder = f"models/{version}/embedder"
    spec_root = ws.embedder.spec.root
    try:
        info = train_embedder(
            spec_root,
            triplets,
            held_out,
            ws.path / folder,
            epochs=settings.finetune_epochs,
        )
    except MissingExtraError as exc:
        report.skipped.append(f"fine-tune: {exc}")
        return None
    report.finetune = info
    e = ws.config.embedding
    embedder = load_embedder(str(ws.path / folder), e.runtime, e.batch_size)
    tag = hashlib.sha256(embedder.model_id.encode()).hexdigest()[:8]
    indexes = IndexSet(ws.path / "index", embedder.dim, ws.config.search, tag, store=ws.store)
    indexes.reconcile(ws.store, embedder)  # embeds every chunk with the new model
    with ws.serving(embedder, indexes):
        vectors = embedder.embed([ex.question for ex in examples])
        train_vectors = vectors[[i for i, h in enumerate(held) if not h]]
        tuned_cache = _Retrieval(ws, vectors, examples)
    return _Arm(
        folder,
        tuned_cache,
        build_memory(train, train_vectors),
        build_memory(examples, vectors),
        embedder_obj=embedder,
        indexes=indexes,
    )


def _eval_sets(ws: Workspace, model: RagModel, current: RagModel, margin: float) -> dict[str, Any]:
    from datawheel.evaluate.questions import evaluate_questions

    out: dict[str, Any] = {}
    for name in ws.config.improve.eval_sets:
        path = Path(name).expanduser()
        path = path if path.is_absolute() else ws.path / path
        before = evaluate_questions(ws, path, "hybrid", model=current)["ndcg@10"]
        after = evaluate_questions(ws, path, "hybrid", model=model)["ndcg@10"]
        out[f"eval:{path.name}"] = {"current": before, "candidate": after}
        if after < before - margin:
            out["eval_set_regression"] = True
    return out


def _memory_grew(new: FeedbackMemory, old: FeedbackMemory) -> bool:
    """More curated answers, or more questions with sources marked helpful (asked again,
    those sources lead): worth serving even with the ranking unchanged."""
    return len(new.curated) > len(old.curated) or len(new.vouching) > len(old.vouching)


def _without(memory: FeedbackMemory, ids: set[str]) -> FeedbackMemory:
    keep = [i for i, e in enumerate(memory.entries) if e.interaction_id not in ids]
    if len(keep) == len(memory.entries):
        return memory
    return FeedbackMemory([memory.entries[i] for i in keep], memory.vectors[keep])


class _Retrieval:
    """Retrieval parts per example, computed once and re-fused for every candidate."""

    def __init__(self, ws: Workspace, vectors: np.ndarray, examples: list[Example]) -> None:
        self.ws = ws
        self.vectors = {ex.interaction_id: v for ex, v in zip(examples, vectors, strict=True)}
        self.parts: dict[str, dict[str, dict[str, float]]] = {}
        self.tokens: dict[str, list[str]] = {}
        self.retriever = ws.retriever()

    def ranking(self, ex: Example, weight: float) -> Ranking:
        parts = self.parts.get(ex.interaction_id)
        if parts is None:
            qvec = self.vectors[ex.interaction_id]
            parts = self.retriever.search(ex.question, 100, "hybrid", None, qvec).parts
            self.parts[ex.interaction_id] = parts
            self.tokens[ex.interaction_id] = self.ws.indexes.bm25.tokenize([ex.question])[0]
        return Ranking(fuse.convex(parts["bm25"], parts["dense"], weight), parts)

    def ranked_docs(self, model: RagModel, ex: Example) -> list[str]:
        ranking = self.ranking(ex, model.dense_weight)
        hits = ranking.hits
        if model.ranker is not None:
            head = [cid for cid, _ in hits[: model.rerank_depth]]
            hits = model.rerank(
                ranking,
                self.vectors[ex.interaction_id],
                self.tokens[ex.interaction_id],
                self.ws.chunk_info(head),
                len(hits),
            )
        info = self.ws.chunk_info([cid for cid, _ in hits[:100]])
        return list(dict.fromkeys(info[c].doc_id for c, _ in hits[:100] if c in info))

    def ndcg(self, model: RagModel, examples: list[Example]) -> float:
        scores = []
        for ex in examples:
            relevant = set(ex.helpful_docs)
            if not relevant:
                continue
            ranked = self.ranked_docs(model, ex)[:10]
            dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked) if d in relevant)
            ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
            scores.append(dcg / ideal)
        return float(np.mean(scores)) if scores else 0.0


def _train_ranker(
    cache: _Retrieval, examples: list[Example], memory: FeedbackMemory, weight: float
) -> Any:
    try:
        import lightgbm as lgb
    except ImportError as exc:  # pragma: no cover - lightgbm is a core dependency
        raise MissingExtraError("LightGBM", "all") from exc
    index = {e.interaction_id: i for i, e in enumerate(memory.entries)}
    rows, labels, groups = [], [], []
    for ex in examples:
        ranking = cache.ranking(ex, weight)
        head = ranking.hits[:100]
        info = cache.ws.chunk_info([cid for cid, _ in head])
        x = candidate_features(
            cache.vectors[ex.interaction_id],
            cache.tokens[ex.interaction_id],
            head,
            ranking.parts,
            info,
            memory,
            exclude=[index[ex.interaction_id]] if ex.interaction_id in index else [],
        )
        helpful, docs, shown = set(ex.helpful), set(ex.helpful_docs), set(ex.shown)
        keep, y = [], []
        for row, (cid, _) in enumerate(head):
            if cid not in shown and cid not in helpful:
                continue  # never shown: no label
            keep.append(row)
            chunk = info.get(cid)
            y.append(2 if cid in helpful else 1 if chunk and chunk.doc_id in docs else 0)
        if keep and max(y) > 0:
            rows.append(x[keep])
            labels.extend(y)
            groups.append(len(keep))
    model = lgb.LGBMRanker(
        objective="lambdarank",
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=10,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.9,
        random_state=0,
        n_jobs=2,
        verbose=-1,
    )
    model.fit(np.vstack(rows), np.array(labels), group=groups)
    return model.booster_
