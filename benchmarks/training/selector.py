"""Train the answer selector shipped in ``datawheel/models/generators/selector.json``.

Data: SQuAD 2.0 *train* articles (CC BY-SA 4.0), never the dev set the answer benchmark
reads. The first ten train articles (4,719 questions) are in the public repository
PhongNTDo/guide_train_MRC_transformers (file ``train-v2.0.json``, commit f626fe8); the full
train file from the SQuAD site works the same (only slower).

Steps: the paragraphs go into a scratch workspace (one document each, titled by the
article) and every question is asked through the real ask path with a recording generator,
so the selector learns from the passages retrieval really returns. Then
1. the sentence model: logistic regression, one row per candidate, label "holds a
   reference answer" (answerable questions only);
2. the runner-up ratio: the largest whose answered-right on train is within 0.01 of the best;
3. the question model: logistic regression over the question features, label "the answer it
   would give is not right" (an unanswerable question, or a sentence without the answer),
   so declining costs wrong answers first;
4. the decline threshold: the question model's score that declines
   ``--answerable-declined`` of the answerable training questions.

Usage: python benchmarks/training/selector.py --squad train-v2.0.json [--out selector.json]
"""

from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from datawheel import Workspace
from datawheel.evaluate.answers import holds_answer, load_squad, normalize, write_corpus
from datawheel.models.generators.base import Generation, Passage
from datawheel.models.generators.select import (
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    WEIGHTS,
    Selector,
    candidates,
    compose,
)


@dataclass
class Asked:
    question: Any  # evaluate.answers.Question
    passages: list[Passage]
    confidence: float


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.passages: list[Passage] = []

    def generate(self, question: str, passages: Any, *, confidence: float = 1.0) -> Generation:
        self.passages = list(passages)
        return Generation("recorded [1]", [1], self.name)


def collect(squad_path: Path, workspace: Path) -> tuple[list[Asked], Any]:
    squad = load_squad(squad_path)
    ws = Workspace.init(workspace)
    corpus = write_corpus(squad.corpus, ws.path / "evaluation" / f"{squad_path.stem}.jsonl")
    ws.ingest([corpus])
    ws.config.generation.min_confidence = 0.0  # every question reaches the generator
    recorder = Recorder()
    ws._generator = recorder
    asked = []
    for i, q in enumerate(squad.questions):
        recorder.passages = []
        answer = ws.ask(q.question, record=False)
        if recorder.passages:
            asked.append(Asked(q, recorder.passages, answer.confidence))
        if i % 500 == 0:
            print(f"asked {i}/{len(squad.questions)}", flush=True)
    return asked, ws


def starting_weights() -> dict[str, Any]:
    sentence = dict.fromkeys(SENTENCE_FEATURES, 0.0)
    sentence.update(coverage=3.0, cosine=3.0, type_match=1.0, first_source=0.5)
    return {
        "sentence": sentence,
        "question": dict.fromkeys(QUESTION_FEATURES, 0.0),
        "decline_above": 1.0,
    }


def featurize(selector: Selector, asked: list[Asked]) -> list[dict[str, Any]]:
    rows = []
    for a in asked:
        cands = candidates(a.passages)
        q_tokens = selector.tokenize([a.question.question])[0]
        if not cands or not q_tokens:
            continue
        x, qrow, _ = selector.features(
            a.question.question, q_tokens, cands, a.passages, a.confidence
        )
        answers = [normalize(t) for t in a.question.answers if normalize(t)]
        y = np.array([any(f" {t} " in f" {normalize(c.text)} " for t in answers) for c in cands])
        rows.append({"x": x, "qrow": qrow, "y": y, "asked": a})
    return rows


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    model = LogisticRegression(C=1.0, max_iter=5000, fit_intercept=False)  # "bias" is a feature
    return np.asarray(model.fit(x, y).coef_[0])


RATIOS = (0.0, 0.2, 0.35, 0.5, 0.7)
IN_RANGE_PRIOR = 2.0


@dataclass
class Judged:
    rows: list[dict[str, Any]]  # with "scored" added
    flags: list[bool]  # the composed answer is right (never, for unanswerable questions)

    @property
    def share(self) -> float:
        answerable = [
            f
            for r, f in zip(self.rows, self.flags, strict=True)
            if not r["asked"].question.unanswerable
        ]
        return float(np.mean(answerable))


def answered_right(selector: Selector, rows: list[dict[str, Any]], ratio: float) -> Judged:
    """Every question scored by ``selector`` (no declines), and whether its answer is right."""
    selector.runner_up = ratio
    kept, flags = [], []
    for r in rows:
        a = r["asked"]
        scored = selector.score(a.question.question, a.passages, a.confidence)
        if scored is None:
            continue
        text = " ".join(p.text for p in compose(scored, 300, ratio))
        ok = not a.question.unanswerable and len(text) <= 300 and holds_answer(text, a.question)
        kept.append({**r, "scored": scored})
        flags.append(ok)
    return Judged(kept, flags)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, required=True, help="SQuAD 2.0 train JSON")
    ap.add_argument("--workspace", type=Path, default=Path(".bench") / "selector-train")
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    ap.add_argument(
        "--answerable-declined",
        type=float,
        default=0.04,
        help="share of answerable training questions to decline (low: the question model "
        "transfers poorly from Wikipedia to company documents)",
    )
    args = ap.parse_args()

    asked, ws = collect(args.squad, args.workspace)
    tokenize, embed = ws.indexes.bm25.tokenize, ws.embedder.embed
    first = Selector(tokenize, embed, starting_weights())
    first.cache_size = 10**7
    vectors = args.workspace / "sentence-vectors.pkl"  # re-runs skip the embedding
    if vectors.exists():
        first._vectors = pickle.loads(vectors.read_bytes())
    rows = featurize(first, asked)
    vectors.write_bytes(pickle.dumps(first._vectors))
    answerable = [r for r in rows if not r["asked"].question.unanswerable]
    sentence_w = fit(
        np.vstack([r["x"] for r in answerable]), np.concatenate([r["y"] for r in answerable])
    )
    weights = starting_weights()
    weights["sentence"] = dict(zip(SENTENCE_FEATURES, sentence_w.round(4).tolist(), strict=True))
    # SQuAD's Wikipedia prose has almost no tables, tiers or thresholds, so its weight for a
    # range holding the question's number ("3-5 years" for "four years") is set, not learned
    weights["sentence"]["in_range"] = max(weights["sentence"]["in_range"], IN_RANGE_PRIOR)
    second = Selector(tokenize, embed, weights)
    second._vectors, second.cache_size = first._vectors, first.cache_size
    by_ratio = {ratio: answered_right(second, rows, ratio) for ratio in RATIOS}
    best = max(v.share for v in by_ratio.values())
    weights["runner_up"] = max(r for r, v in by_ratio.items() if v.share >= best - 0.01)
    right = by_ratio[weights["runner_up"]]
    # the question model learns when the answer it would give is not right: the sources
    # do not answer (unanswerable), or the chosen sentence does not hold the answer
    qx = np.array([r["scored"].question_row for r in right.rows])
    qy = np.array([not ok for ok in right.flags])
    question_w = fit(qx, qy)
    weights["question"] = dict(zip(QUESTION_FEATURES, question_w.round(4).tolist(), strict=True))
    unanswered = 1 / (1 + np.exp(-(qx @ question_w)))
    answerable = np.array([not r["asked"].question.unanswerable for r in right.rows])
    weights["decline_above"] = round(
        float(np.quantile(unanswered[answerable], 1 - args.answerable_declined)), 4
    )
    declined = unanswered > weights["decline_above"]
    weights["version"] = "selector-1"
    weights["trained_on"] = {
        "data": args.squad.name,
        "questions": len(rows),
        "answerable_declined": round(float(declined[answerable].mean()), 4),
        "unanswerable_declined": round(float(declined[~answerable].mean()), 4),
        "answered_right": round(float((~declined & ~qy)[answerable].mean()), 4),
        "answered_right_by_runner_up": {str(k): round(v.share, 4) for k, v in by_ratio.items()},
    }
    args.out.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(weights["trained_on"]))
    ws.close()


if __name__ == "__main__":
    main()
