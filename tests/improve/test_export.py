"""Tests for datawheel.improve.export: 👍 and corrected answers as fine-tuning JSONL."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datawheel.apps.rag.answer import Answer
from datawheel.cli.main import app
from datawheel.errors import ConfigError
from datawheel.workspace import Workspace

runner = CliRunner()
LIKED = "restocking fee opened electronics"
CORRECTED = "How long do enterprise customers have to return an order?"
UNVOTED = "What do I need to do if my laptop is stolen?"
CORRECTION = "Enterprise customers have 60 days from delivery to return an order."


@dataclass
class Voted:
    path: Path
    liked: Answer
    corrected: Answer
    unvoted: Answer


@pytest.fixture()
def voted(sample: Path, tmp_path: Path) -> Voted:
    """A copy of the sample with a 👍 on one answer, a corrected 👎 on another, one unvoted."""
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    with Workspace.open(path) as ws:
        liked, corrected, unvoted = (ws.ask(q) for q in (LIKED, CORRECTED, UNVOTED))
        assert not (liked.declined or corrected.declined or unvoted.declined)
        ws.feedback(liked.id, "up")
        ws.review(
            ws.feedback(
                corrected.id, "down", correction=CORRECTION, failure="wrong_answer"
            ).review_id,
            "approve",
        )
    return Voted(path, liked, corrected, unvoted)


def _renumbered(answer: Answer) -> str:
    """The answer text with its cited sources numbered 1, 2, ... as the export shows them."""
    order = {s.n: i for i, s in enumerate((s for s in answer.sources if s.cited), start=1)}
    return re.sub(r"\[(\d+)\]", lambda m: f"[{order[int(m.group(1))]}]", answer.text)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_openai_format_is_system_user_assistant(voted: Voted, tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    with Workspace.open(voted.path) as ws:
        assert ws.export_feedback(out, fmt="openai") == 2

    rows = _lines(out)
    assert len(rows) == 2 and all(list(r) == ["messages"] for r in rows)
    by_question = {}
    for row in rows:
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        question = row["messages"][1]["content"].rsplit("Question: ", 1)[1]
        by_question[question] = row["messages"]
    assert set(by_question) == {LIKED, CORRECTED}  # the unvoted answer is left out

    liked = by_question[LIKED]
    assert liked[2]["content"] == _renumbered(voted.liked)
    cited = [s for s in voted.liked.sources if s.cited]
    for i, source in enumerate(cited, start=1):
        assert f"[{i}] {source.title}" in liked[1]["content"]
    assert f"[{len(cited) + 1}]" not in liked[1]["content"]  # uncited sources are not sent
    assert "Cite every claim" in liked[0]["content"]

    # the correction cites the sources it was given, as the system prompt asks
    given = len([s for s in voted.corrected.sources if s.cited])
    cites = "".join(f"[{i}]" for i in range(1, given + 1))
    assert by_question[CORRECTED][2]["content"] == f"{CORRECTION} {cites}"


def test_hf_format_is_question_context_answer(voted: Voted, tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    with Workspace.open(voted.path) as ws:
        assert ws.export_feedback(out, fmt="hf") == 2

    rows = {r["question"]: r for r in _lines(out)}
    assert set(rows) == {LIKED, CORRECTED}
    assert all(list(r) == ["question", "context", "answer"] for r in rows.values())
    assert rows[LIKED]["answer"] == _renumbered(voted.liked)
    assert rows[CORRECTED]["answer"].startswith(f"{CORRECTION} [1]")
    first_cited = next(s for s in voted.corrected.sources if s.cited)
    assert rows[CORRECTED]["context"].startswith(f"[1] {first_cited.title}\n")


def test_unknown_format_is_a_config_error(voted: Voted, tmp_path: Path) -> None:
    out = tmp_path / "pairs.csv"
    with Workspace.open(voted.path) as ws, pytest.raises(ConfigError) as caught:
        ws.export_feedback(out, fmt="csv")

    assert str(caught.value) == "unknown export format 'csv'; valid formats: openai, hf"
    assert not out.exists()


def test_nothing_to_export_writes_an_empty_file(sample: Path, tmp_path: Path) -> None:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    out = tmp_path / "pairs.jsonl"
    with Workspace.open(path) as ws:
        ws.ask(UNVOTED)
        declined = ws.ask("What is the capital of Mongolia?")
        assert declined.declined
        ws.feedback(declined.id, "up")  # a 👍 on a declined answer is no training pair

        assert ws.export_feedback(out) == 0
    assert out.read_text(encoding="utf-8") == ""


def test_cli_export_hf_json(voted: Voted, tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"

    result = runner.invoke(
        app, ["export", str(out), "--format", "hf", "-w", str(voted.path), "--json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"path": str(out), "format": "hf", "pairs": 2}
    assert {r["question"] for r in _lines(out)} == {LIKED, CORRECTED}

    bad = runner.invoke(app, ["export", str(out), "--format", "csv", "-w", str(voted.path)])
    assert bad.exit_code == 2 and "valid formats: openai, hf" in bad.stderr
