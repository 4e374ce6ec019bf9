"""The answer selector learned from feedback: which sentences answer, and when to decline.

Three kinds of feedback are supervision for the extractive answerer:

- a **correction** (once approved) says what the answer should have said: the sentences of
  the sources it marked helpful (or cited) that hold the correction answer, the others do not;
- a plain **👍** on an answer says its sentences answered;
- a **👎 "not in the sources"** says the sources did not hold an answer: it should have
  declined.

The shipped selector's two logistic models are refitted on those examples with a pull
towards the shipped weights (so a few dozen marks adjust it and cannot overturn it), the pull
chosen by cross-validation on the training feedback. The candidate is judged like the
ranker: on the held-out feedback, by the rate of answers that hold the reference (or decline
when they should), and is kept only when it beats the selector in use.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datawheel.evaluate.answers import normalize, token_f1, without_citations
from datawheel.improve.examples import Example
from datawheel.improve.memory import FeedbackMemory
from datawheel.models.generators.base import Passage
from datawheel.models.generators.select import (
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    Selector,
    candidates,
    compose,
)

MIN_EXAMPLES = 8  # training examples needed before a selector is fitted
MIN_JUDGED = 3  # held-out examples needed before one can be promoted
MIN_TAUGHT = 3  # corrections or decline marks needed: 👍 answers alone teach nothing new
PULLS = (1.0, 3.0, 10.0, 30.0, 100.0)  # strength of the pull towards the shipped weights
MATCH_F1 = 0.5  # token F1 at which a sentence counts as saying the reference answer
ANSWERABLE_DECLINED = 0.05  # the decline threshold declines at most this share of training
MAX_DECLINED = 0.10  # questions with an answer; a candidate declining more held-out ones loses


@dataclass
class AnswerExample:
    """One question the feedback says how to answer (or that it should have declined)."""

    question: str
    passages: list[Passage]
    reference: str | None  # None: should have declined
    confidence: float = 1.0
    corrected: bool = False  # the reference is a person's correction (not a 👍 answer)

    @property
    def teaches(self) -> bool:
        """Says something the selector in use got wrong: a correction or a decline mark."""
        return self.corrected or self.reference is None


@dataclass
class SelectorOutcome:
    weights: dict[str, Any] | None  # the winner's weights; None: the one in use stays
    entry: dict[str, Any]  # the improve report's line for this candidate


Chunks = Callable[[list[str]], list[Any]]  # chunk ids -> views with id, title, heading, text


def answer_examples(examples: Sequence[Example], chunks: Chunks) -> list[AnswerExample]:
    """The feedback that says what an answer should hold, with the passages it was answered
    from (every source shown, with its retrieval score, as the selector saw them)."""
    out = []
    for ex in examples:
        if ex.failure == "not_in_sources":
            reference = None
        elif ex.answer:
            reference = without_citations(ex.answer)
        else:
            continue
        views = {v.id: v for v in chunks(ex.shown)}
        scores = dict(zip(ex.shown, ex.scores or [1.0] * len(ex.shown), strict=False))
        passages = [
            Passage(n, v.id, v.title, v.heading, v.text, scores.get(v.id, 0.0))
            for n, v in enumerate((views[c] for c in ex.shown if c in views), start=1)
        ]
        if passages and (reference is None or normalize(reference)):
            out.append(AnswerExample(ex.question, passages, reference, ex.confidence, ex.corrected))
    return out


def says(text: str, reference: str) -> bool:
    """``text`` gives the reference answer: holds it, or shares most of its words and every
    number in it ("within 30 days" does not say "within 60 days")."""
    plain, ref = f" {normalize(text)} ", normalize(reference)
    if not ref:
        return False
    if f" {ref} " in plain:
        return True
    numbers = {w for w in ref.split() if any(ch.isdigit() for ch in w)}
    return token_f1(text, [reference]) >= MATCH_F1 and all(f" {n} " in plain for n in numbers)


@dataclass
class Judged:
    right: float  # share handled as the feedback says: the reference given, or declined
    answered: float | None  # share of questions with a reference answered with it
    wrongly_declined: float | None  # share of questions with a reference declined
    declined: float | None  # share of "not in the sources" questions declined

    def to_dict(self) -> dict[str, float | None]:
        return {k: None if v is None else round(v, 4) for k, v in self.__dict__.items()}


def judge(selector: Selector, examples: Sequence[AnswerExample], max_chars: int) -> Judged:
    """How ``selector`` answers ``examples`` against what their feedback says."""
    said, declined_any, declined_none = [], [], []
    for ex in examples:
        scored = selector.score(ex.question, ex.passages, ex.confidence)
        declined = scored is None or scored.unanswered > selector.decline_above
        if ex.reference is None:
            declined_none.append(declined)
            continue
        declined_any.append(declined)
        if declined:
            said.append(False)
        else:
            parts = compose(scored, max_chars, selector.runner_up)
            said.append(says(" ".join(p.text for p in parts), ex.reference))
    right = (sum(said) + sum(declined_none)) / len(examples) if examples else 0.0
    return Judged(right, _share(said), _share(declined_any), _share(declined_none))


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def learn_selector(
    current: Selector,
    train: Sequence[AnswerExample],
    test: Sequence[AnswerExample],
    *,
    margin: float,
    max_chars: int,
) -> SelectorOutcome:
    """Refit ``current`` on ``train``; keep it when it beats ``current`` on ``test``."""
    entry: dict[str, Any] = {"name": "selector", "train": len(train), "held_out": len(test)}
    taught = sum(ex.teaches for ex in train)
    if taught < MIN_TAUGHT:
        entry["note"] = (
            f"{taught} corrections or 'not in the sources' marks in the training feedback, "
            f"{MIN_TAUGHT} needed: 👍 answers alone only repeat what the selector in use says"
        )
        return SelectorOutcome(None, entry)
    if len(train) < MIN_EXAMPLES:
        entry["note"] = (
            f"{len(train)} training questions with a correction, a 👍 answer or a "
            f"'not in the sources' mark; {MIN_EXAMPLES} needed"
        )
        return SelectorOutcome(None, entry)
    rows = [_rows(current, ex) for ex in train]
    pull = _choose_pull(current, train, rows, max_chars)
    weights = _fit(current, rows, pull)
    candidate = current.with_weights(weights)
    before, after = judge(current, test, max_chars), judge(candidate, test, max_chars)
    entry.update({"pull": pull, "current": before.to_dict(), "candidate": after.to_dict()})
    change = f"held-out answers handled right {before.right:.3f} -> {after.right:.3f}"
    if len(test) < MIN_JUDGED:
        entry["note"] = f"{len(test)} held-out questions to judge it on; {MIN_JUDGED} needed"
        return SelectorOutcome(None, entry)
    if (after.wrongly_declined or 0.0) > max(before.wrongly_declined or 0.0, MAX_DECLINED):
        entry["note"] = (
            f"{change}, but it declines {after.wrongly_declined:.1%} of held-out questions "
            f"that have an answer (at most {MAX_DECLINED:.0%}): not used"
        )
        return SelectorOutcome(None, entry)
    if after.right < before.right + margin or after.right == before.right:
        entry["note"] = f"{change}: not better, not used"
        return SelectorOutcome(None, entry)
    entry["note"] = f"{change} on {len(test)} questions"
    weights["trained_on"] = {"feedback_questions": len(train), "pull": pull}
    return SelectorOutcome(weights, entry)


@dataclass
class _Rows:
    sentence: np.ndarray  # candidate features
    labels: np.ndarray  # candidate says the reference (1) or not (0)
    question: np.ndarray  # question features, best and margin filled per fit
    declines: bool  # the feedback says: decline


def _rows(selector: Selector, ex: AnswerExample) -> _Rows | None:
    cands = candidates(ex.passages)
    q_tokens = list(selector.tokenize([ex.question])[0])
    if not cands or not q_tokens:
        return None
    sentence, question, _ = selector.features(
        ex.question, q_tokens, cands, ex.passages, ex.confidence
    )
    if ex.reference is None:
        labels = np.zeros(len(cands))
    else:
        labels = np.array([float(says(c.text, ex.reference)) for c in cands])
    return _Rows(sentence, labels, question, ex.reference is None)


def _fit(current: Selector, rows: Sequence[_Rows | None], pull: float) -> dict[str, Any]:
    usable = [r for r in rows if r is not None]
    answered = [r for r in usable if r.labels.any()]
    sentence_w = current.sentence_w.copy()
    if answered:
        sentence_w = _logistic(
            [r.sentence for r in answered], [r.labels for r in answered], current.sentence_w, pull
        )
    question_w = current.question_w.copy()
    decline_above = current.decline_above
    judged = [r for r in usable if r.declines or r.labels.any()]
    if any(r.declines for r in judged) and any(not r.declines for r in judged):
        qrows = [_question_row(r, sentence_w)[None, :] for r in judged]
        labels = [np.array([float(r.declines)]) for r in judged]
        question_w = _logistic(qrows, labels, current.question_w, pull)
        # the threshold from out-of-fold chances: in-sample ones are too sure of themselves
        folds = np.arange(len(judged)) % 3
        unanswered = []
        for k in range(3):
            fold_w = _logistic(
                [q for q, f in zip(qrows, folds, strict=True) if f != k],
                [y for y, f in zip(labels, folds, strict=True) if f != k],
                current.question_w,
                pull,
            )
            unanswered += [
                float(_sigmoid(q[0] @ fold_w))
                for q, r, f in zip(qrows, judged, folds, strict=True)
                if f == k and not r.declines
            ]
        decline_above = _threshold(np.array(unanswered), current.decline_above)
    elif judged:  # only questions with an answer: decline no more of them than needed
        unanswered = [float(_sigmoid(_question_row(r, sentence_w) @ question_w)) for r in judged]
        decline_above = max(current.decline_above, _threshold(np.array(unanswered), 0.0))
    weights = copy.deepcopy(current.weights)
    weights["decline_above"] = round(float(decline_above), 4)
    weights["sentence"] = {
        f: round(float(w), 4) for f, w in zip(SENTENCE_FEATURES, sentence_w, strict=True)
    }
    weights["question"] = {
        f: round(float(w), 4) for f, w in zip(QUESTION_FEATURES, question_w, strict=True)
    }
    weights["version"] = f"{current.version.split('+')[0]}+feedback"
    weights.pop("trained_on", None)
    return weights


def _question_row(rows: _Rows, sentence_w: np.ndarray) -> np.ndarray:
    """The question's features with the best candidate's chance and its margin over the
    runner-up as ``sentence_w`` scores them (as ``Selector.score`` fills them)."""
    chance = np.sort(_sigmoid(rows.sentence @ sentence_w))[::-1]
    q = rows.question.copy()
    q[QUESTION_FEATURES.index("best")] = chance[0]
    q[QUESTION_FEATURES.index("margin")] = chance[0] - (chance[1] if len(chance) > 1 else 0.0)
    return q


def _logistic(
    xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], prior: np.ndarray, pull: float
) -> np.ndarray:
    """Logistic regression, each group's mean loss weighted equally, pulled towards ``prior``."""
    from scipy.optimize import minimize

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, pull * (w - prior)
        for x, y in zip(xs, ys, strict=True):
            p = _sigmoid(x @ w)
            eps = 1e-9
            total -= float(np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
            grad = grad + x.T @ (p - y) / len(y)
        return total + 0.5 * pull * float((w - prior) @ (w - prior)), grad

    return minimize(loss, prior.copy(), jac=True, method="L-BFGS-B").x


def _choose_pull(
    current: Selector,
    train: Sequence[AnswerExample],
    rows: Sequence[_Rows | None],
    max_chars: int,
) -> float:
    """The pull whose refits answer best on the training folds they did not see (3 folds),
    among those declining at most ``MAX_DECLINED`` of the questions that have an answer."""
    folds = np.arange(len(train)) % 3
    best, best_score = PULLS[-1], -1.0
    for pull in reversed(PULLS):  # ties go to the stronger pull: the smaller change
        right = wrongly = with_answer = 0.0
        for k in range(3):
            fitted = _fit(current, [r for r, f in zip(rows, folds, strict=True) if f != k], pull)
            seen = [ex for ex, f in zip(train, folds, strict=True) if f == k]
            judged = judge(current.with_weights(fitted), seen, max_chars)
            n = sum(ex.reference is not None for ex in seen)
            right += judged.right * len(seen)
            wrongly += (judged.wrongly_declined or 0.0) * n
            with_answer += n
        if with_answer and wrongly / with_answer > MAX_DECLINED:
            continue
        if right > best_score + 1e-9:
            best, best_score = pull, right
    return best


def _threshold(unanswered: np.ndarray, current: float) -> float:
    """The lowest decline threshold that declines at most ``ANSWERABLE_DECLINED`` of the
    training questions that have an answer (never lower than needed, never above 0.99)."""
    if not len(unanswered):
        return current
    return float(min(max(np.quantile(unanswered, 1 - ANSWERABLE_DECLINED), 1e-3), 0.99))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


SIMILARITIES = tuple(round(0.70 + 0.01 * i, 2) for i in range(26))  # 0.70 .. 0.95
PRECISION = 0.9  # of curated answers given to questions asked in other words
MIN_PAIRS = 3  # agreeing pairs above a threshold needed to trust its precision


def calibrate_similarity(
    memory: FeedbackMemory,
    test: Sequence[Example],
    test_vectors: np.ndarray,
    current: float,
) -> tuple[float | None, dict[str, Any]]:
    """The lowest question similarity at which a curated answer also answers another
    question, calibrated on pairs of the training feedback's curated questions (a pair
    agrees when one's answer gives the other's) and checked on the held-out questions.

    Returns the threshold (None: keep ``current``) and the improve report's line."""
    entry: dict[str, Any] = {"name": "answer memory", "current_similarity": current}
    idx = memory.curated
    refs = [without_citations(memory.entries[i].answer or "") for i in idx]
    if len(idx) < 2:
        entry["note"] = f"{len(idx)} curated answers in the training feedback; 2 needed"
        return None, entry
    sims = memory.vectors[idx] @ memory.vectors[idx].T
    upper = np.triu_indices(len(idx), k=1)
    pair_sims = sims[upper]
    agree = np.array(
        [says(refs[i], refs[j]) or says(refs[j], refs[i]) for i, j in zip(*upper, strict=True)]
    )
    chosen = None
    for t in SIMILARITIES:
        above = pair_sims >= t
        if agree[above].sum() >= MIN_PAIRS and agree[above].mean() >= PRECISION:
            chosen = t
            break
    entry["pairs"] = int(len(pair_sims))
    if chosen is None:
        entry["note"] = f"no similarity from 0.70 up gives {PRECISION:.0%} agreeing pairs"
        return None, entry
    before, after = (
        _memory_answers(memory, test, test_vectors, current),
        _memory_answers(memory, test, test_vectors, chosen),
    )
    entry.update({"similarity": chosen, "current": before, "candidate": after})
    if after["given"] == 0 or after["right"] / after["given"] < PRECISION:
        entry["note"] = f"at {chosen:.2f} the held-out questions got too few right memory answers"
        return None, entry
    if after["right"] <= before["right"] or chosen >= current:
        entry["note"] = f"at {chosen:.2f} no more held-out questions answered right: kept {current}"
        return None, entry
    entry["note"] = (
        f"similarity {current} -> {chosen:.2f}: held-out questions answered right from memory "
        f"{before['right']} -> {after['right']} ({after['given'] - after['right']} wrong)"
    )
    return chosen, entry


def _memory_answers(
    memory: FeedbackMemory, test: Sequence[Example], vectors: np.ndarray, threshold: float
) -> dict[str, int]:
    given = right = 0
    for ex, vec in zip(test, vectors, strict=True):
        if not ex.answer:
            continue
        closest = memory.closest_curated(vec)
        if closest is None or closest[1] < threshold:
            continue
        given += 1
        right += says(without_citations(closest[0].answer or ""), without_citations(ex.answer))
    return {"given": given, "right": right}
