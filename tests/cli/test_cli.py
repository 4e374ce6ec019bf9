"""The CLI through a real subprocess-free runner, on a real workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from datawheel.cli.main import app

runner = CliRunner()


@pytest.fixture()
def kb(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text(
        "---\ntopic: billing\n---\n# Refund policy\n\n## Enterprise\n\n"
        "Enterprise customers may return orders within 60 days for a full refund.\n"
    )
    (docs / "tents.txt").write_text("Dry your tent before storing it to avoid mildew.")
    result = runner.invoke(app, ["init", str(tmp_path / "kb")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kb" / "datawheel.yaml").exists()
    result = runner.invoke(app, ["ingest", str(tmp_path / "kb"), str(docs), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["added"] == 2 and report["failed"] == []
    return tmp_path / "kb"


def test_ingest_names_the_files_it_passed_over(kb: Path, tmp_path: Path) -> None:
    other = tmp_path / "exports"
    other.mkdir()
    (other / "pipeline.csv").write_text("id,stage\n1,won\n")
    (other / "notes.md").write_text("# Notes\n\nShip tents in dry bags.")
    result = runner.invoke(app, ["ingest", str(kb), str(other)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "passed over: 1 file: .csv (1); tables go in with: datawheel sources add" in text


def test_search_json_and_table(kb: Path) -> None:
    result = runner.invoke(
        app, ["search", "enterprise returns", "-w", str(kb), "--k", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [hit] = data["results"]
    assert (
        hit["title"] == "Refund policy"
        and hit["heading"] == "Refund policy > Enterprise"
        or hit["heading"].endswith("Enterprise")
    )
    assert "60 days" in hit["snippet"] and hit["uri"].endswith("refunds.md")
    table = runner.invoke(app, ["search", "mildew", "-w", str(kb), "--mode", "bm25"])
    assert table.exit_code == 0 and "tents" in table.stdout


def test_search_filter_and_bad_filter(kb: Path) -> None:
    ok = runner.invoke(
        app, ["search", "tent", "-w", str(kb), "--filter", "topic=billing", "--json"]
    )
    assert [h["title"] for h in json.loads(ok.stdout)["results"]] == ["Refund policy"]
    bad = runner.invoke(app, ["search", "tent", "-w", str(kb), "--filter", "topic"])
    assert bad.exit_code == 2 and "must look like key=value" in bad.output


def test_ingest_twice_is_a_no_op(kb: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(kb), str(tmp_path / "docs"), "--json"])
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 0, 2)


def test_missing_workspace_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "x", "-w", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "datawheel init" in result.output


def test_search_and_ask_on_an_empty_workspace_say_to_ingest(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "kb")]).exit_code == 0
    found = runner.invoke(app, ["search", "refund", "-w", str(tmp_path / "kb")])
    assert found.exit_code == 0 and "holds no documents yet; datawheel ingest" in found.output
    asked = runner.invoke(app, ["ask", "what is the refund policy", "-w", str(tmp_path / "kb")])
    assert asked.exit_code == 0 and "Ingest documents first" in asked.output
    assert "sources" not in asked.output  # no empty "closest sources" heading


def test_status_names_the_runtime_auto_picked(tmp_path: Path) -> None:
    from datawheel.models.embedder import resolve_runtime

    assert runner.invoke(app, ["init", str(tmp_path / "kb")]).exit_code == 0
    shown = runner.invoke(app, ["status", "-w", str(tmp_path / "kb")])
    assert shown.exit_code == 0, shown.output
    assert f"all-MiniLM-L6-v2:53aa5117:{resolve_runtime('auto')}" in shown.output
    data = json.loads(runner.invoke(app, ["status", "-w", str(tmp_path / "kb"), "--json"]).output)
    assert data["embedder"].endswith(":" + resolve_runtime("auto"))


def test_help_has_examples() -> None:
    """Every command and command group, walked from the app itself, shows an example."""
    import typer

    def paths(group: Any, prefix: list[str]) -> list[list[str]]:
        found = []
        for name, command in getattr(group, "commands", {}).items():
            found.append([*prefix, name])
            found += paths(command, [*prefix, name])
        return found

    every = paths(typer.main.get_command(app), [])
    assert len(every) > 45 and ["quarantine", "readmit"] in every
    for cmd in every:
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, cmd
    # help text is shown as written: brackets are not read as markup and dropped
    for cmd, text in (("clean", "'datawheel[spark]'"), ("evaluate", '"relevant": [paths]')):
        shown = " ".join(runner.invoke(app, [cmd, "--help"]).output.split())
        assert text in shown, cmd


def test_snippet_drops_markdown_emphasis() -> None:
    from datawheel.workspace import SearchHit

    hit = SearchHit(1, 1.0, "c", "d", "t", "u", "", "A **15% fee** on `opened` items " * 20)
    snippet = hit.snippet(60)
    assert "**" not in snippet and "`" not in snippet
    assert snippet.endswith("…") and len(snippet) <= 60


def test_version_is_the_installed_one() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"datawheel {version('datawheel')}"


def test_first_run_says_it_prepares_the_model_once(tmp_path: Path) -> None:
    """The one-time export that makes a first run slow is announced on stderr, without
    --verbose; stdout stays one JSON object, and the next run says nothing."""
    import os
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Tents\n\nDry your tent before storing it.\n")
    kb = tmp_path / "kb"
    assert runner.invoke(app, ["init", str(kb)]).exit_code == 0
    (kb / "datawheel.yaml").write_text("embedding:\n  runtime: onnx\n")
    exe = Path(sys.executable).parent / "datawheel"
    env = dict(os.environ, DATAWHEEL_CACHE=str(tmp_path / "cache"), COLUMNS="200")

    def ingest() -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(exe), "ingest", str(kb), str(docs), "--json", "--sync"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        json.loads(done.stdout)
        return done

    first = ingest()
    assert "exporting the embedding model to ONNX (once" in first.stderr, first.stderr
    assert "Loading weights" not in first.stderr  # no transformers progress bars
    (docs / "b.md").write_text("# Stoves\n\nNever run a stove inside a tent.\n")
    assert "(once" not in ingest().stderr


def test_the_demo_hint_is_a_command_that_runs_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After make demo the venv is not activated: the hint names .venv/bin/datawheel."""
    from datawheel.cli.demo import _program

    exe = tmp_path / ".venv" / "bin" / "datawheel"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [str(exe), "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert _program() == ".venv/bin/datawheel"
    monkeypatch.setenv("PATH", f"{exe.parent}:/usr/bin:/bin")  # an activated venv
    assert _program() == "datawheel"
