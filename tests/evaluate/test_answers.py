"""Answer metrics judge the answer text; SQuAD files evaluate end to end on a real workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datawheel.cli.main import app
from datawheel.errors import SourceError
from datawheel.evaluate.answers import (
    Question,
    Reply,
    holds_answer,
    load_questions,
    load_squad,
    normalize,
    score,
    token_f1,
    without_citations,
)

runner = CliRunner()


def test_normalisation_and_matching_follow_squad() -> None:
    assert normalize("The  Normans, in France!") == "normans in france"
    q = Question("When?", answers=["10th century"])
    assert holds_answer("It began in the 10th-century? No: in the 10th century [1].", q)
    assert not holds_answer("It began in the 110th century.", q)  # whole words only
    assert without_citations("Thirty days [1][2]. Then [3] more.") == "Thirty days. Then more."
    assert token_f1("in the tenth century", ["tenth century"]) == pytest.approx(0.8)


def test_citing_the_right_source_is_not_answering() -> None:
    questions = [
        Question("How long?", answers=["30 days"], relevant=["refunds.md"]),
        Question("Who approves?", answers=["the director"], relevant=["expenses.md"]),
        Question("What is the CEO's shoe size?", unanswerable=True),
        Question("Gift card fees?", answers=["no fees"]),
    ]
    replies = [
        Reply("Returns are accepted within 30 days [1].", False, ["kb/refunds.md"], 10),
        Reply("Expenses are reviewed monthly [1].", False, ["kb/expenses.md"], 20),
        Reply("I could not find this.", True, [], 5),
        Reply("x " * 200 + "no fees", False, [], 30),  # holds it, but far too long
    ]
    result = score(questions, replies)
    assert result["answered_right"] == pytest.approx(1 / 3, abs=1e-4)
    assert result["cited_relevant"] == 1.0  # reported apart, never counted as right
    assert result["unanswerable_declined"] == 1.0
    assert result["answerable_declined"] == 0.0
    assert (result["answerable"], result["unanswerable"]) == (3, 1)
    assert score(questions, replies, max_chars=1000)["answered_right"] == pytest.approx(
        2 / 3, abs=1e-4
    )


def test_question_sets_accept_answers_and_unanswerable(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "a?", "answers": ["x", "y"]}\n'
        '{"question": "b?", "answer": "z", "relevant": ["d.md"]}\n'
        '{"question": "c?", "unanswerable": true}\n',
        encoding="utf-8",
    )
    got = load_questions(path)
    assert [q.answers for q in got] == [["x", "y"], ["z"], []]
    assert got[2].unanswerable
    path.write_text('{"question": "a?"}\n', encoding="utf-8")
    with pytest.raises(SourceError, match="give answers, facts, relevant documents"):
        load_questions(path)


SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Harbour_Bakery",
            "paragraphs": [
                {
                    "context": "The Harbour Bakery opened in 1987 on Quay Street. Its founder, "
                    "Mara Olsen, trained as a pastry chef in Lyon. The bakery sells rye bread, "
                    "cinnamon buns and seeded loaves every morning from six o'clock.",
                    "qas": [
                        {
                            "id": "1",
                            "question": "When did the Harbour Bakery open?",
                            "answers": [{"text": "1987", "answer_start": 28}],
                            "is_impossible": False,
                        },
                        {
                            "id": "2",
                            "question": "Where did Mara Olsen train as a pastry chef?",
                            "answers": [{"text": "Lyon", "answer_start": 0}],
                            "is_impossible": False,
                        },
                    ],
                },
                {
                    "context": "The town's ferry leaves for the island at noon. Tickets cost "
                    "twelve euros for adults and are sold at the harbour kiosk.",
                    "qas": [
                        {
                            "id": "3",
                            "question": "How much does a ferry ticket cost for adults?",
                            "answers": [{"text": "twelve euros", "answer_start": 0}],
                            "is_impossible": False,
                        },
                        {
                            "id": "4",
                            "question": "What did the ferry captain eat for breakfast?",
                            "answers": [],
                            "is_impossible": True,
                        },
                    ],
                },
            ],
        }
    ],
}


def test_squad_file_is_read_as_paragraph_documents(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    squad = load_squad(path)
    assert [d["title"] for d in squad.corpus] == ["Harbour Bakery", "Harbour Bakery"]
    assert [q.unanswerable for q in squad.questions] == [False, False, False, True]
    assert squad.questions[0].relevant == ["#0-0"]
    path.write_text('{"data": 3}', encoding="utf-8")
    with pytest.raises(SourceError, match="is not a SQuAD file"):
        load_squad(path)


def test_evaluate_squad_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    args = ["evaluate", "--squad", str(path), "-w", str(tmp_path / "ws"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert (got["questions"], got["answerable"], got["unanswerable"]) == (4, 3, 1)
    assert got["answered_right"] == 1.0  # each answer is the sentence that holds it
    assert got["median_answer_chars"] <= 300
    again = runner.invoke(app, args)  # the corpus is not ingested twice
    assert again.exit_code == 0 and json.loads(again.stdout)["answered_right"] == 1.0
    both = runner.invoke(app, ["evaluate", "--squad", str(path), "--questions", str(path)])
    assert both.exit_code == 2
    assert "pass exactly one of --beir DIR, --questions FILE or --squad FILE" in both.stderr
