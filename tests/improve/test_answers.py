"""Improve learns answers from feedback: which curated answer a question asked in other
words gets (a similarity calibrated on the feedback, checked on held-out questions), and
what a correction or a "not in the sources" mark says an answer should hold."""

from __future__ import annotations

import pytest

from datawheel.improve.answers import (
    AnswerExample,
    calibrate_similarity,
    judge,
    learn_selector,
    says,
)
from datawheel.improve.examples import Example, build_memory
from datawheel.models.generators.base import Passage
from datawheel.models.generators.extractive import ExtractiveGenerator
from datawheel.store.keyword import BM25Index

# curated answers of a week: four pairs asked in other words, and two pairs of questions
# that read alike but have other answers (sick days vs vacation, tents vs jackets)
CURATED = [
    ("How many vacation days do new employees get?", "New hires get 20 days of paid vacation."),
    ("How many days of vacation do new hires get?", "20 days of paid vacation"),
    ("How long is the return window for jackets?", "Jackets can be returned within 60 days."),
    ("How long do customers have to return jackets?", "within 60 days"),
    ("Who approves expense reports over $500?", "The finance director approves them."),
    ("Who approves expenses over 500 dollars?", "the finance director"),
    ("What is the guest wifi password at the office?", "trailhead2024"),
    ("What's the office guest wifi password?", "trailhead2024"),
    ("How many sick days do employees get?", "6 sick days per year, apart from vacation"),
    ("How long is the return window for tents?", "Tents can be returned within 30 days."),
    ("How do I reset my laptop password?", "Use the self-service portal."),
]


def _example(i: int, question: str, answer: str) -> Example:
    chunk = f"c{i}"
    return Example(
        str(i), question, "up", [chunk], [chunk], {chunk: f"d{i}"}, answer,
        [{"n": "1", "chunk_id": chunk, "title": "Handbook"}],
    )  # fmt: skip


@pytest.fixture(scope="module")
def embed():
    from datawheel.models.embedder import load_embedder

    return load_embedder().embed


@pytest.fixture(scope="module")
def current(embed, tmp_path_factory: pytest.TempPathFactory):
    """The shipped answer selector, with the real tokenizer and embedding model."""
    bm25 = BM25Index(tmp_path_factory.mktemp("bm25") / "bm25")
    return ExtractiveGenerator(bm25.tokenize, embed).selector


def _memory(embed, rows):
    examples = [_example(i, q, a) for i, (q, a) in enumerate(rows)]
    return build_memory(examples, embed([e.question for e in examples]))


def test_answers_that_differ_in_a_number_do_not_agree() -> None:
    assert says("Jackets can be returned within 60 days. [1]", "within 60 days")
    assert says("New hires get 20 days of paid vacation.", "20 days of paid vacation")
    assert not says("Tents can be returned within 30 days.", "Jackets can be returned within 60")
    assert not says("The finance director approves them.", "trailhead2024")


def test_a_question_in_other_words_gets_the_curated_answer_once_calibrated(embed) -> None:
    memory = _memory(embed, CURATED)
    held = [
        _example(100, "How much vacation does a new employee receive?", "20 days of paid vacation"),
        _example(101, "How many days do customers have to return a jacket?", "60 days"),
    ]
    vectors = embed([e.question for e in held])
    threshold, line = calibrate_similarity(memory, held, vectors, 0.92)
    # the tents/jackets pair disagrees, so the threshold stays above its cosine (~0.75),
    # and the paraphrases (~0.83-0.95) agree: it lands in between
    tents = float(memory.vectors[2] @ memory.vectors[9])
    assert threshold is not None and tents < threshold < 0.92
    assert line["candidate"]["right"] == line["candidate"]["given"] == 2
    assert line["candidate"]["right"] > line["current"]["right"]
    assert "held-out questions answered right from memory" in line["note"]


def test_a_threshold_that_gives_held_out_questions_wrong_answers_is_refused(embed) -> None:
    memory = _memory(embed, CURATED)
    # worded like the jackets question, but about exchanges, which have another answer
    held = [_example(100, "How long is the exchange window for jackets?", "14 days")]
    threshold, line = calibrate_similarity(memory, held, embed([held[0].question]), 0.92)
    assert threshold is None
    assert line["candidate"]["right"] == 0 and line["candidate"]["given"] == 1
    assert "too few right memory answers" in line["note"]


def test_too_little_feedback_keeps_the_selector_in_use(current) -> None:
    passage = Passage(1, "c1", "Returns", "", "Jackets can be returned within 60 days.", 1.0)
    liked = [AnswerExample("How long can I return a jacket?", [passage], "60 days")] * 10
    outcome = learn_selector(current, liked, liked, margin=0.0, max_chars=300)
    assert outcome.weights is None  # 👍 answers alone: nothing the selector got wrong
    assert "0 corrections or 'not in the sources' marks" in outcome.entry["note"]
    few = [AnswerExample("How long can I return a jacket?", [passage], "60 days", 1.0, True)] * 3
    outcome = learn_selector(current, few, few, margin=0.0, max_chars=300)
    assert outcome.weights is None and "8 needed" in outcome.entry["note"]
    assert judge(current, few, 300).answered == 1.0


def test_a_refit_that_declines_questions_it_should_answer_is_not_used(current) -> None:
    """Questions on the topic of the passage that it does not answer, marked "not in the
    sources", beside questions it answers. On this little feedback the refit declines more
    of the first kind, but also held-out questions that have an answer: it is not used."""
    text = (
        "Jackets can be returned within 60 days with a receipt. Tents can be returned within "
        "30 days. Refunds go back to the original card within 5 business days. Clearance "
        "items are final sale. Gift cards cannot be returned."
    )
    passage = [Passage(1, "c1", "Returns policy", "", text, 1.0)]
    answerable = [
        ("How long do I have to return a jacket?", "60 days"),
        ("What is the return window for tents?", "30 days"),
        ("How fast are refunds paid back to my card?", "5 business days"),
        ("Can clearance items be returned?", "final sale"),
        ("Can I return a gift card?", "Gift cards cannot be returned"),
        ("Do I need a receipt to return a jacket?", "with a receipt"),
    ]
    unanswerable = [
        "How long do I have to return a bicycle?",
        "What is the return window for kayaks?",
        "Can I return shoes after wearing them outside?",
        "How much is the restocking fee?",
        "Can I return items to a different store?",
        "Who pays for return shipping?",
    ]
    rows = [AnswerExample(q, passage, a) for q, a in answerable] + [
        AnswerExample(q, passage, None) for q in unanswerable
    ]
    train, test = rows[::2] * 2, rows[1::2]  # each training question marked twice
    outcome = learn_selector(current, train, test, margin=0.0, max_chars=300)
    before, after = outcome.entry["current"], outcome.entry["candidate"]
    assert after["declined"] > before["declined"]
    assert after["wrongly_declined"] > 0.10 >= before["wrongly_declined"]
    assert outcome.weights is None
    assert (
        "held-out questions that have an answer (at most 10%): not used" in (outcome.entry["note"])
    )
    # what it would have served is what it was judged by
    assert judge(current, test, 300).right == pytest.approx(before["right"], abs=1e-4)
