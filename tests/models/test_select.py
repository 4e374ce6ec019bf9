"""The extractive answerer: candidates, the sentence chosen by the shipped selector with the
real embedding model, declines, and follow-up questions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datawheel.apps.rag.followup import standalone
from datawheel.clean.text import sentence_spans
from datawheel.models.generators.base import Passage
from datawheel.models.generators.extractive import ExtractiveGenerator
from datawheel.models.generators.select import (
    candidates,
    clause_windows,
    question_type,
    strip_markup,
)
from datawheel.store.keyword import BM25Index
from datawheel.workspace import Workspace


def test_markup_never_reaches_an_answer() -> None:
    text = (
        "## Settings { #settings }\n"
        "/// tip\n"
        "{!> ../docs_src/app.py !}\n"
        '<div class="note">\n**Debug** defaults to `False`.\n</div>\n'
        "Paste <script> into the footer."
    )
    assert strip_markup(text) == (
        "Settings\nDebug defaults to `False`.\nPaste <script> into the footer."
    )


def test_sentences_keep_month_abbreviations_and_lists_keep_their_lead() -> None:
    text = "The office closes on Dec. 24 and reopens on Jan. 2. Staff get the day off."
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "The office closes on Dec. 24 and reopens on Jan. 2.",
        "Staff get the day off.",
    ]
    passage = Passage(
        1,
        "c1",
        "Onboarding",
        "",
        "On the first day a new hire must:\n- sign the contract\n- enrol in MFA\n\n"
        "| plan | price |\n|---|---|\n| Basic | $5 |\n| Pro | $12 |",
        1.0,
    )
    got = [(c.kind, c.text, c.lead) for c in candidates([passage])]
    assert got == [
        ("sentence", "On the first day a new hire must:", ""),
        ("item", "sign the contract", "On the first day a new hire must:"),
        ("item", "enrol in MFA", "On the first day a new hire must:"),
        ("row", "Basic | $5", "plan | price"),
        ("row", "Pro | $12", "plan | price"),
    ]


def test_a_long_sentence_is_offered_in_clause_windows() -> None:
    sentence = (
        "The Normans were the people who in the 10th and 11th centuries gave their name to "
        "Normandy, a region in France, and they were descended from Norse raiders and "
        "pirates from Denmark, Iceland and Norway who, under their leader Rollo, agreed to "
        "swear fealty to King Charles III of West Francia, in exchange for land."
    )
    windows = clause_windows(sentence, limit=120)
    assert len(windows) > 1 and all(len(w) <= 120 for w in windows)
    assert any("Rollo" in w for w in windows) and windows[0].startswith("The Normans")


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did the bakery open?", "time"),
        ("In what year was it founded?", "time"),
        ("How many days do I have?", "number"),
        ("Who approves expenses?", "person"),
        ("Where is the warehouse?", "place"),
        ("How do I reset my password?", "manner"),
        ("What is the tool called?", "thing"),
    ],
)
def test_question_types(question: str, kind: str) -> None:
    assert question_type(question) == kind


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> ExtractiveGenerator:
    from datawheel.models.embedder import load_embedder

    bm25 = BM25Index(tmp_path_factory.mktemp("bm25") / "bm25")
    return ExtractiveGenerator(bm25.tokenize, load_embedder().embed)


PASSAGES = [
    Passage(
        1,
        "a",
        "Returns policy",
        "Refunds",
        "We want every customer to be happy with their gear. Retail customers may return "
        "unused items within 30 days of delivery for a full refund. Refunds are issued to "
        "the original payment method within 5 business days of receiving the return. "
        "Opened electronics carry a 15% restocking fee.",
        3.0,
    ),
    Passage(
        2,
        "b",
        "Shipping",
        "",
        "Orders placed before 2 pm ship the same day. We ship to Canada and Mexico.",
        1.0,
    ),
]


def test_the_sentence_that_answers_is_quoted_and_cited(generator: ExtractiveGenerator) -> None:
    got = generator.generate("How long does a refund take to reach my card?", PASSAGES)
    assert not got.declined and got.cited == [1]
    assert "within 5 business days" in got.text and "[1]" in got.text
    assert "happy with their gear" not in got.text  # the lead-in is not the answer
    fee = generator.generate("restocking fee for opened electronics?", PASSAGES)
    assert "15% restocking fee" in fee.text and len(fee.text) <= 300
    cutoff = generator.generate("What time do orders need to be in to ship today?", PASSAGES)
    assert "2 pm" in cutoff.text and cutoff.cited[0] == 2


def test_a_question_the_sources_do_not_touch_is_declined(generator: ExtractiveGenerator) -> None:
    got = generator.generate("Which volcano erupted in Iceland in 2010?", PASSAGES, confidence=0.1)
    assert got.declined and got.cited == []


def test_a_follow_up_is_read_with_the_turn_before(tmp_path: Path) -> None:
    words = BM25Index(tmp_path / "bm25").tokenize
    first = "What is the return window for tents?"
    assert standalone("and for jackets?", [first], words) == f"{first} for jackets?"
    assert standalone("How long does it take?", [first], words) == f"{first} How long does it take?"
    alone = "Who approves travel expenses over $3,000?"
    assert standalone(alone, [first], words) == alone  # a question of its own
    assert standalone("and for jackets?", [], words) == "and for jackets?"


def test_conversations_carry_follow_ups_and_stay_with_their_user(
    sample: Path, tmp_path: Path
) -> None:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    with Workspace.open(path) as ws:
        first = ws.ask(
            "What is the restocking fee on opened electronics?", user="ana", conversation="c1"
        )
        follow = ws.ask("and for tents?", user="ana", conversation="c1")
        assert follow.conversation == "c1"
        assert follow.asked_as == "What is the restocking fee on opened electronics? for tents?"
        assert follow.question == "and for tents?"  # shown and logged as the user typed it
        # another user's turns under the same name are not theirs to lean on
        other = ws.ask("and for tents?", user="ben", conversation="c1")
        assert other.asked_as is None
        turns = ws.interactions.conversation("c1", "ana")
        assert [t.id for t in turns] == [first.id, follow.id]
        assert turns[1].asked_as == follow.asked_as
