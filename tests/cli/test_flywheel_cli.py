"""The flywheel commands end to end through the CLI, on a copy of the sample knowledge base:
ask, feedback, improve, versions, rollback and evaluate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from datawheel.cli.main import app
from datawheel.demo import SAMPLE_QUESTIONS
from datawheel.workspace import Workspace

runner = CliRunner()
QUESTION = "restocking fee opened electronics"


@pytest.fixture()
def kb(sample: Path, tmp_path: Path) -> Path:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    return path


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
    return json.loads(result.stdout)


def test_ask_vote_improve_rollback(kb: Path) -> None:
    ws = ["-w", str(kb), "--json"]
    first = _json(["ask", QUESTION, *ws])
    assert len(first["id"]) == 32
    assert (first["answered_from"], first["version"]) == ("generator", None)
    cited = [s["chunk_id"] for s in first["sources"] if s["cited"]]
    assert cited

    vote = _json(["feedback", first["id"][:10], "up", "--helpful", f"chunk:{cited[0]}", *ws])
    assert (vote["interaction_id"], vote["vote"], vote["helpful"]) == (
        first["id"],
        "up",
        [cited[0]],
    )

    assert _json(["versions", *ws]) == {"versions": []}

    improved = _json(["improve", *ws])
    assert (improved["examples"], improved["current"], improved["promoted"]) == (1, None, "v1")
    assert "answer memory refreshed: 1 curated answers" in improved["candidates"][-1]["note"]
    [v1] = _json(["versions", *ws])["versions"]
    assert (v1["id"], v1["status"], v1["current"]) == ("v1", "promoted", True)

    again = _json(["ask", QUESTION, *ws])
    assert (again["answered_from"], again["version"]) == ("memory", "v1")
    assert again["memory_question"] == QUESTION and not again["declined"]
    assert [s["chunk_id"] for s in again["sources"]] == cited
    assert all(s["cited"] for s in again["sources"])

    assert _json(["rollback", *ws]) == {"current": None}
    [v1] = _json(["versions", *ws])["versions"]
    assert (v1["status"], v1["current"]) == ("retired", False)
    baseline = _json(["ask", QUESTION, *ws])
    assert (baseline["answered_from"], baseline["version"]) == ("generator", None)
    assert baseline["text"] == first["text"]


def test_bad_votes_and_questions_exit_2(kb: Path) -> None:
    asked = _json(["ask", QUESTION, "-w", str(kb), "--json"])

    bad_vote = runner.invoke(app, ["feedback", asked["id"], "maybe", "-w", str(kb)])
    assert bad_vote.exit_code == 2
    assert "unknown vote 'maybe'; valid votes: up, down" in bad_vote.stderr

    empty = runner.invoke(app, ["ask", "", "-w", str(kb)])
    assert empty.exit_code == 2 and "the question is empty" in empty.stderr

    unknown = runner.invoke(app, ["feedback", "0123456789", "up", "-w", str(kb)])
    assert unknown.exit_code == 2 and "no interaction '0123456789'" in unknown.stderr

    both = runner.invoke(
        app, ["feedback", asked["id"], "down", "--wrong-source", "--wrong-answer", "-w", str(kb)]
    )
    assert both.exit_code == 2
    assert "pass at most one of --wrong-source, --wrong-answer and --not-in-sources" in (
        both.stderr
    )

    with Workspace.open(kb) as ws:
        assert [i.id for i in ws.interactions.interactions()] == [asked["id"]]
        assert ws.interactions.feedback() == []


def test_not_in_sources_marks_an_answer_that_should_have_declined(kb: Path) -> None:
    asked = _json(["ask", QUESTION, "-w", str(kb), "--json"])
    voted = runner.invoke(app, ["feedback", asked["id"], "down", "--not-in-sources", "-w", str(kb)])
    assert voted.exit_code == 0, voted.output
    with Workspace.open(kb) as ws:
        [mark] = [f for f in ws.interactions.feedback() if f.interaction_id == asked["id"]]
        assert mark.failure == "not_in_sources" and mark.vote == "down"


def test_evaluate_questions_reports_answers(kb: Path) -> None:
    result = _json(["evaluate", "--questions", str(SAMPLE_QUESTIONS), "-w", str(kb), "--json"])

    assert result["questions"] == 30
    assert result["answered_right"] >= 0.55  # the answer text holds a reference answer
    assert result["answered_right"] + result["answerable_declined"] <= 1
    assert result["cited_relevant"] >= result["answered_right"] - 0.1
    assert result["median_answer_chars"] <= 300
    assert 0 < result["latency_p50_ms"] <= result["latency_p95_ms"]
    with Workspace.open(kb) as ws:
        assert ws.interactions.interactions() == []  # evaluation asks are not logged


def test_ask_says_which_earlier_question_its_sources_come_from(kb: Path) -> None:
    ws = ["-w", str(kb)]
    first = _json(["ask", QUESTION, *ws, "--json"])
    uncited = [s["chunk_id"] for s in first["sources"] if not s["cited"]]
    assert uncited
    _json(["feedback", first["id"], "up", "--helpful", f"chunk:{uncited[-1]}", *ws, "--json"])
    _json(["improve", *ws, "--json"])
    shown = runner.invoke(app, ["ask", QUESTION, *ws])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert f"led by the sources marked helpful for a similar question: {QUESTION}" in text
