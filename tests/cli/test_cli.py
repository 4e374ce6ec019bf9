"""The CLI through a real subprocess-free runner, on a real workspace."""

from __future__ import annotations

import json
import re
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


def test_ingest_takes_the_workspace_like_every_other_command(
    kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    more = tmp_path / "more"
    more.mkdir()
    (more / "boots.md").write_text("# Boots\n\nWax leather boots twice a season.")
    (more / "stoves.md").write_text("# Stoves\n\nClean the stove jet after each trip.")

    by_option = runner.invoke(app, ["ingest", "-w", str(kb), str(more / "boots.md"), "--json"])
    assert by_option.exit_code == 0, by_option.output
    assert json.loads(by_option.stdout.splitlines()[-1])["added"] == 1
    monkeypatch.setenv("DATAWHEEL_WORKSPACE", str(kb))
    by_env = runner.invoke(app, ["ingest", str(more), "--json"])
    assert by_env.exit_code == 0, by_env.output
    assert json.loads(by_env.stdout.splitlines()[-1])["added"] == 1  # stoves; boots unchanged

    alone = runner.invoke(app, ["ingest", str(kb)])
    assert alone.exit_code == 2
    assert "is a workspace; say what to ingest into it" in " ".join(alone.output.split())


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


def test_status_shows_the_cpu_features_that_decide_the_runtimes(tmp_path: Path) -> None:
    from datawheel.models.cpu import cpu_flags

    assert runner.invoke(app, ["init", str(tmp_path / "kb")]).exit_code == 0
    data = json.loads(runner.invoke(app, ["status", "-w", str(tmp_path / "kb"), "--json"]).output)
    flags = cpu_flags()
    assert data["cpu"]["features"] == [f for f in data["cpu"]["features"] if f in flags]
    assert ("avx2" in data["cpu"]["features"]) is ("avx2" in flags)
    assert ("avx512_vnni" in data["cpu"]["features"]) is ("avx512_vnni" in flags)
    assert "llama_cpp" not in data["cpu"]  # the extractive generator: nothing native to try
    shown = runner.invoke(app, ["status", "-w", str(tmp_path / "kb")]).output
    assert "cpu features" in shown


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


def test_everyone_means_every_caller_and_hidden_matches_are_counted(
    kb: Path, tmp_path: Path
) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    (hr / "salary.md").write_text("# Salary bands\n\nSalary bands are reviewed every March.")
    assert runner.invoke(app, ["ingest", "-w", str(kb), str(hr), "--groups", "hr"]).exit_code == 0

    # documents ingested without --groups are shared with everyone: a sales caller reads them
    shared = runner.invoke(
        app, ["search", "enterprise refund", "-w", str(kb), "--groups", "sales", "--json"]
    )
    assert json.loads(shared.stdout)["results"][0]["title"] == "Refund policy"

    hidden = runner.invoke(
        app, ["search", "salary bands March", "-w", str(kb), "--groups", "sales", "--mode",
              "bm25"],
    )  # fmt: skip
    text = " ".join(hidden.output.split())
    assert "no results: 1 passage matches but is shared only with groups other than sales" in text
    assert "Salary" not in text  # counted, never named
    as_json = runner.invoke(
        app, ["search", "salary bands March", "-w", str(kb), "--groups", "sales", "--mode",
              "bm25", "--json"],
    )  # fmt: skip
    assert json.loads(as_json.stdout) == {
        "query": "salary bands March", "mode": "bm25", "results": [], "hidden": 1
    }  # fmt: skip


def test_ingest_says_which_files_are_gone_and_follows_linked_folders_once(
    kb: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "travel.md").write_text("# Travel\n\nBook economy class for flights under 6 hours.")
    (docs / "shared").symlink_to(shared, target_is_directory=True)
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    (docs / "tents.txt").unlink()

    result = runner.invoke(app, ["ingest", "-w", str(kb), str(docs)])
    text = " ".join(result.output.split())

    assert "1 file is gone since the last ingest and still searchable; re-run with --sync" in text
    assert f"failed {docs / 'loop'}: symbolic link to a folder read already" in text
    report = json.loads(
        runner.invoke(app, ["ingest", "-w", str(kb), str(docs), "--sync", "--json"]).stdout
    )
    assert report["removed"] == 1 and report["gone"] == 0 and report["unchanged"] == 2
    found = runner.invoke(app, ["search", "economy flights", "-w", str(kb), "--json"]).stdout
    assert json.loads(found)["results"][0]["uri"] == str(docs / "shared" / "travel.md")


def test_interactions_lists_the_ids_to_vote_on(kb: Path) -> None:
    asked = runner.invoke(app, ["ask", "enterprise refund window?", "-w", str(kb), "--user",
                                "ann", "--json"])  # fmt: skip
    ident = json.loads(asked.stdout)["id"]
    runner.invoke(app, ["ask", "tent storage?", "-w", str(kb), "--user", "ben"])

    listed = runner.invoke(app, ["interactions", "-w", str(kb), "--user", "ann", "--json"])

    assert [i["id"] for i in json.loads(listed.stdout)] == [ident]
    table = runner.invoke(app, ["interactions", "-w", str(kb), "--limit", "5"]).output
    assert ident in table and "vote with: datawheel feedback ID up|down" in table
    missing = runner.invoke(app, ["feedback", "abcdef123456", "up", "-w", str(kb)])
    assert "datawheel interactions lists recent ones" in " ".join(missing.output.split())


def test_narrow_terminals_keep_the_file_name_and_the_note(kb: Path, tmp_path: Path) -> None:
    deep = tmp_path / "a-long-folder-name" / "another-long-folder-name" / "docs" / "tutorial"
    deep.mkdir(parents=True)
    (deep / "cross-origin-resource-sharing.md").write_text(
        "# CORS\n\nAllow the front-end origin with the CORS middleware and list its methods."
    )
    runner.invoke(app, ["ingest", "-w", str(kb), str(deep)])

    shown = (
        CliRunner()
        .invoke(
            app,
            ["search", "CORS middleware origin", "-w", str(kb), "-k", "1"],
            env={"COLUMNS": "80"},
        )
        .output
    )

    source = "".join(
        line.split("│")[3].strip() for line in shown.splitlines() if line.count("│") == 5
    )  # the title / source cell, its wrapped lines joined
    assert source.startswith("CORS…/") and source.endswith("/cross-origin-resource-sharing.md")
    assert max(len(line) for line in shown.splitlines()) <= 80


def test_the_command_line_starts_without_the_optional_pandas() -> None:
    """A bare `pip install datawheel` has no pandas (it comes with extras): the CLI, its
    help and the workspace settings must load without it."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['pandas'] = None\n"
        "from datawheel.cli.main import app\n"
        "import datawheel.config\n"
        "sys.argv = ['datawheel', '--version']; app()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("datawheel ")


def test_improve_counts_add_up(kb: Path) -> None:
    questions = [f"question number {i} about enterprise refunds and tents" for i in range(12)]
    for q in questions:
        asked = json.loads(runner.invoke(app, ["ask", q, "-w", str(kb), "--json"]).stdout)
        voted = runner.invoke(app, ["feedback", asked["id"], "down", "-w", str(kb)])
        assert voted.exit_code == 0, voted.output
    shown = " ".join(runner.invoke(app, ["improve", "-w", str(kb)]).output.split())

    match = re.search(
        r"(\d+) answers with feedback: (\d+) to train, (\d+) held out to judge"
        r"(?:, (\d+) held out with no helpful source)?",
        shown,
    )
    assert match, shown
    total, train, judged, unjudged = (int(g or 0) for g in match.groups())
    assert total == 12 and train + judged + unjudged == total and unjudged > 0
