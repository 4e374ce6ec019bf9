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
2. the question model: logistic regression, label "unanswerable", over the question
   features computed with the trained sentence model;
3. the decline threshold: the question model's score that declines ``--answerable-declined``
   of the answerable training questions;
4. the runner-up ratio: the largest whose answered-right on train is within 0.01 of the best.

Usage: python benchmarks/train_selector.py --squad train-v2.0.json [--out selector.json]
"""

from __future__ import annotations

import argparse
import json
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


def answered_right(selector: Selector, rows: list[dict[str, Any]], ratio: float) -> float:
    selector.runner_up = ratio
    right = []
    for r in rows:
        a = r["asked"]
        if a.question.unanswerable:
            continue
        scored = selector.score(a.question.question, a.passages, a.confidence)
        text = "" if scored is None else " ".join(p.text for p in compose(scored, 300, ratio))
        right.append(len(text) <= 300 and holds_answer(text, a.question))
    return float(np.mean(right))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, required=True, help="SQuAD 2.0 train JSON")
    ap.add_argument("--workspace", type=Path, default=Path(".bench") / "selector-train")
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    ap.add_argument("--answerable-declined", type=float, default=0.08)
    args = ap.parse_args()

    asked, ws = collect(args.squad, args.workspace)
    tokenize, embed = ws.indexes.bm25.tokenize, ws.embedder.embed
    first = Selector(tokenize, embed, starting_weights())
    first.cache_size = 10**7
    rows = featurize(first, asked)
    answerable = [r for r in rows if not r["asked"].question.unanswerable]
    sentence_w = fit(
        np.vstack([r["x"] for r in answerable]), np.concatenate([r["y"] for r in answerable])
    )
    weights = starting_weights()
    weights["sentence"] = dict(zip(SENTENCE_FEATURES, sentence_w.round(4).tolist(), strict=True))
    second = Selector(tokenize, embed, weights)
    second._vectors, second.cache_size = first._vectors, first.cache_size
    rows = featurize(second, asked)  # question rows now follow the trained sentence model
    qx, qy = [], []
    for r in rows:
        scored = second.score(
            r["asked"].question.question, r["asked"].passages, r["asked"].confidence
        )
        assert scored is not None
        qx.append(scored.question_row)
        qy.append(r["asked"].question.unanswerable)
    question_w = fit(np.array(qx), np.array(qy))
    weights["question"] = dict(zip(QUESTION_FEATURES, question_w.round(4).tolist(), strict=True))
    unanswered = 1 / (1 + np.exp(-(np.array(qx) @ question_w)))
    on_answerable = unanswered[~np.array(qy)]
    weights["decline_above"] = round(
        float(np.quantile(on_answerable, 1 - args.answerable_declined)), 4
    )
    final = Selector(tokenize, embed, weights)
    final._vectors, final.cache_size = first._vectors, first.cache_size
    by_ratio = {ratio: answered_right(final, rows, ratio) for ratio in (0.0, 0.2, 0.35, 0.5, 0.7)}
    best = max(by_ratio.values())
    weights["runner_up"] = max(r for r, v in by_ratio.items() if v >= best - 0.01)
    declined_unanswerable = float(np.mean(unanswered[np.array(qy)] > weights["decline_above"]))
    weights["version"] = "selector-1"
    weights["trained_on"] = {
        "data": args.squad.name,
        "questions": len(rows),
        "answerable_declined": args.answerable_declined,
        "unanswerable_declined": round(declined_unanswerable, 4),
        "answered_right_by_runner_up": {str(k): round(v, 4) for k, v in by_ratio.items()},
    }
    args.out.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(weights["trained_on"]))
    ws.close()


if __name__ == "__main__":
    main()
