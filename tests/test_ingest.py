"""Ingest end to end on real files, the real model and a real SQLite store."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datawheel import Workspace
from datawheel.errors import ConfigError, ModelError
from datawheel.models.embedder import resolve_model_path


def _docs(folder: Path, n: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (folder / f"note-{i:04d}.md").write_text(
            f"# Note {i}\n\n## Topic\n\nItem {i} is about shipping zone {i % 7} and the "
            f"warehouse in city number {i}. " * 3,
            encoding="utf-8",
        )


def _kill_once(proc: subprocess.Popen[bytes], db: Path, count: str, at_least: int) -> int:
    """kill -9 the ingest ``proc`` once ``count`` (SQL) reaches ``at_least``; the count."""
    deadline, seen = time.time() + 300, 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=1) as conn:
                seen = conn.execute(count).fetchone()[0]
        except sqlite3.OperationalError:
            seen = 0
        if seen >= at_least:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed; give it more work"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return int(seen)


def _consistent(ws: Workspace) -> None:
    store_ids = ws.store.chunk_ids()
    assert ws.indexes.vectors.ids() == store_ids
    assert ws.indexes.bm25.ids() == store_ids


def test_incremental_update_and_sync(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nEnterprise customers get 60 days.\n")
    (docs / "shipping.txt").write_text("We ship with DHL and UPS. Orders before 2pm ship today.")
    ws = Workspace.init(tmp_path / "kb")
    first = ws.ingest([docs])
    assert (first.added, first.updated, first.unchanged, first.failed) == (2, 0, 0, [])
    chunks_before = ws.store.chunk_ids()

    again = ws.ingest([docs])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert ws.store.chunk_ids() == chunks_before

    (docs / "refunds.md").write_text("# Refunds\n\nEnterprise customers now get 90 days.\n")
    changed = ws.ingest([docs])
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 1)
    hit = ws.search("enterprise refund days", k=1)[0]
    assert "90 days" in hit.text and hit.title == "Refunds"

    (docs / "shipping.txt").unlink()
    kept = ws.ingest([docs])
    assert kept.removed == 0 and ws.store.counts()["documents"] == 2  # no --sync: kept
    synced = ws.ingest([docs], sync=True)
    assert synced.removed == 1 and ws.store.counts()["documents"] == 1
    assert all("DHL" not in h.text for h in ws.search("DHL UPS shipping", k=5))
    _consistent(ws)
    ws.close()


def test_bad_files_are_reported_and_the_rest_ingested(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nThe good document about gift cards.")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 10)
    (docs / "empty.txt").write_text("")
    (docs / "deals.csv").write_text("id,amount\n1,10\n")  # not documents: counted, not read
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n")
    ws = Workspace.init(tmp_path / "kb")
    report = ws.ingest([docs])
    assert report.added == 1
    assert report.skipped == {".csv": 1, ".png": 1}
    reasons = dict(report.failed)
    assert set(reasons) == {str(docs / n) for n in ("broken.pdf", "binary.txt", "empty.txt")}
    assert all(reasons.values())
    assert {f["uri"] for f in ws.store.failures()} == set(reasons)  # kept with the reason
    # fixing a file clears its failure on the next run
    (docs / "empty.txt").write_text("Now it has words about tents.")
    report = ws.ingest([docs])
    assert report.added == 1
    assert str(docs / "empty.txt") not in {f["uri"] for f in ws.store.failures()}
    ws.close()


def test_groups_and_filters_apply_inside_retrieval(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "fin").mkdir(parents=True)
    (docs / "pub").mkdir()
    (docs / "fin" / "expenses.md").write_text(
        "---\ngroups: [finance]\ntopic: money\n---\n# Expenses\n\nMeal limit is 40 dollars."
    )
    for i in range(30):
        (docs / "pub" / f"meal-{i}.md").write_text(f"# Meals {i}\n\nThe canteen meal {i} menu.")
    ws = Workspace.init(tmp_path / "kb")
    ws.ingest([docs / "pub"])
    ws.ingest([docs / "fin"])
    assert ws.search("meal limit dollars", k=1)[0].title == "Expenses"
    seen = ws.search("meal limit dollars", k=50, groups=["everyone"])
    assert seen and all(h.title != "Expenses" for h in seen)
    only = ws.search("canteen menu", k=3, filters={"topic": "money"})
    assert [h.title for h in only] == ["Expenses"]  # filter inside retrieval, not after top-k
    with pytest.raises(ConfigError, match=r"no document has the field 'colour' .* topic"):
        ws.search("canteen menu", filters={"colour": "red"})  # a typo, not an empty result
    ws.close()


def test_batches_close_at_batch_docs_or_batch_chunks(tmp_path: Path) -> None:
    """Each committed batch ends a progress step: by chunk count first, then by documents."""
    docs = tmp_path / "docs"
    _docs(docs, 12)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")  # a failure inside a batch
    for settings, expected in [
        ("batch_docs: 100\n  batch_chunks: 5", [6, 11, 13]),  # broken.pdf comes first
        ("batch_docs: 4\n  batch_chunks: 1000", [5, 9, 13]),
    ]:
        kb = tmp_path / f"kb-{expected[0]}"
        Workspace.init(kb).close()
        (kb / "datawheel.yaml").write_text(f"ingest:\n  {settings}\n")
        ws = Workspace.open(kb)
        steps: list[int] = []

        def progress(stage: str, n: int, _total: int, steps: list[int] = steps) -> None:
            if stage == "ingest":
                steps.append(n)

        report = ws.ingest([docs], progress=progress)
        assert steps == expected
        assert report.added == 12 and len(report.failed) == 1
        assert ws.store.counts()["documents"] == 12
        _consistent(ws)
        ws.close()


def test_model_failure_while_embedding_stops_cleanly_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    """Embedding runs beside parsing; its failure still stops the job with the model's
    message, before anything of the batch is written."""
    model = tmp_path / "broken-model"
    shutil.copytree(
        resolve_model_path("builtin:all-MiniLM-L6-v2"),
        model,
        ignore=shutil.ignore_patterns("model.safetensors"),
    )
    (model / "model.safetensors").write_bytes(b"not a safetensors file" * 100)
    docs = tmp_path / "docs"
    _docs(docs, 30)
    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    settings = "ingest:\n  batch_chunks: 5\nembedding:\n  runtime: onnx-int8\n"
    (kb / "datawheel.yaml").write_text(f"{settings}  model: {model}\n")
    ws = Workspace.open(kb)
    with pytest.raises(ModelError) as info:
        ws.ingest([docs])
    assert str(model) in str(info.value)
    assert ws.store.counts()["documents"] == 0
    ws.close()

    (kb / "datawheel.yaml").write_text(settings)
    ws = Workspace.open(kb)
    report = ws.ingest([docs])
    assert report.added == 30 and not report.failed
    _consistent(ws)
    ws.close()


def test_kill_9_mid_ingest_then_rerun_finishes_without_duplicates(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _docs(docs, 400)
    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    (kb / "datawheel.yaml").write_text("ingest:\n  batch_docs: 8\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "datawheel.cli.main", "ingest", str(kb), str(docs)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = kb / "datawheel.db"
    committed = _kill_once(proc, db, "select count(*) from documents", 16)
    assert 0 < committed < 400

    ws = Workspace.open(kb)
    report = ws.ingest([docs])
    assert report.unchanged >= committed
    assert report.added + report.unchanged == 400
    assert ws.store.counts()["documents"] == 400
    with sqlite3.connect(db) as conn:
        dup = conn.execute("select count(*) - count(distinct doc_id || '/' || ord) from chunks")
        assert dup.fetchone()[0] == 0
    _consistent(ws)
    assert ws.search("warehouse in city number 399", k=1, mode="bm25")[0].title == "Note 399"
    runs = ws.store.list_runs("ingest")
    assert runs[0]["status"] == "finished" and runs[1]["status"] == "interrupted"
    ws.close()


@pytest.mark.parametrize("bad", ["--bogus", "--mode=sideways"])
def test_cli_rejects_unknown_options(tmp_path: Path, bad: str) -> None:
    Workspace.init(tmp_path / "kb").close()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "datawheel.cli.main",
            "search",
            "x",
            "-w",
            str(tmp_path / "kb"),
            bad,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    if bad == "--bogus":
        assert "No such option: --bogus" in proc.stderr and "--mode" in proc.stderr
    else:
        assert "valid modes: bm25, dense, hybrid" in proc.stderr


def test_changed_settings_or_groups_redo_the_documents(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    long = " ".join(f"Sentence {i} about warehouse returns and refunds." for i in range(60))
    (docs / "long.md").write_text(f"# Long\n\n{long}\n")
    kb = tmp_path / "kb"
    ws = Workspace.init(kb)
    ws.ingest([docs])
    before = len(ws.store.chunk_ids())
    ws.close()
    (kb / "datawheel.yaml").write_text("chunking:\n  target_chars: 400\n  overlap_chars: 50\n")
    ws = Workspace.open(kb)
    report = ws.ingest([docs])
    assert report.updated == 1 and len(ws.store.chunk_ids()) > before
    regrouped = ws.ingest([docs], groups=["sales"])
    assert regrouped.updated == 1
    assert ws.search("warehouse returns", k=3, groups=["everyone"]) == []
    assert ws.search("warehouse returns", k=3, groups=["sales"])
    _consistent(ws)
    ws.close()


def test_another_runtime_re_embeds_once_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The index is per embedder (runtime included): switching re-embeds every chunk on
    first use, announced, and the next open finds it done."""
    from datawheel.store import indexes

    _docs(tmp_path / "docs", 6)
    ws = Workspace.init(tmp_path / "kb")
    (ws.path / "datawheel.yaml").write_text("embedding:\n  runtime: onnx-int8\n")
    ws.close()
    with Workspace.open(tmp_path / "kb") as ws:
        ws.ingest([tmp_path / "docs"])
        chunks = len(ws.store.chunk_ids())
    (tmp_path / "kb" / "datawheel.yaml").write_text("embedding:\n  runtime: torch\n")
    monkeypatch.setattr(indexes, "ANNOUNCE_EMBED_AT", chunks)
    with caplog.at_level("WARNING"), Workspace.open(tmp_path / "kb") as ws:
        hits = ws.search("shipping zone 3 warehouse", k=3, mode="dense")
        _consistent(ws)
    assert hits and f"embedding {chunks} chunks for all-MiniLM-L6-v2" in caplog.text
    assert ":torch into the index" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"), Workspace.open(tmp_path / "kb") as ws:
        assert ws.search("shipping zone 3 warehouse", k=3, mode="dense")
    assert "embedding" not in caplog.text


_SMALL_STEPS = """
import sys
from datawheel import ingest
from datawheel.cli.main import app
ingest._LARGE, ingest._STEP = 50, 20  # a 400-chunk file is a large one here
sys.argv = ["datawheel", *sys.argv[1:]]
app()
"""


def test_a_large_file_killed_mid_embedding_resumes_where_it_stopped(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    paragraphs = [
        f"Paragraph {i} of the handbook says that shipment {i} leaves dock {i % 9} at hour "
        f"{i % 24} and that its crate number {i * 7} is checked twice before loading. " * 7
        for i in range(400)
    ]
    (docs / "handbook.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SMALL_STEPS, "ingest", "-w", str(kb), str(docs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = kb / "datawheel.db"
    _kill_once(proc, db, "select count(*) from embeddings", 60)

    ws = Workspace.open(kb)
    assert ws.store.list_runs("ingest")[0]["status"] == "interrupted"  # said at once
    assert ws.store.counts()["documents"] == 0  # the document itself was not written yet
    with sqlite3.connect(db) as conn:
        kept = conn.execute("select count(*) from embeddings").fetchone()[0]
    embedded: list[int] = []
    embed = ws.embedder.embed
    ws.embedder.embed = lambda texts: embedded.append(len(texts)) or embed(texts)  # type: ignore[method-assign]
    report = ws.ingest([docs])

    total = report.chunks_added
    assert report.added == 1 and total > 300
    assert sum(embedded) == total - kept  # only what the killed run had not kept
    assert ws.search("crate number 2730", k=1, mode="bm25")[0].title == "handbook"
    _consistent(ws)
    ws.close()


def test_a_large_file_warns_with_its_chunk_count_and_shows_progress_per_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from datawheel import ingest

    monkeypatch.setattr(ingest, "_WARN_CHUNKS", 30)
    monkeypatch.setattr(ingest, "_LARGE", 30)
    monkeypatch.setattr(ingest, "_STEP", 8)
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "\n\n".join(
        f"Rule {i}: pallets of kind {i} are stacked {i % 5} high. " * 9 for i in range(60)
    )
    (docs / "rules.txt").write_text(text, encoding="utf-8")
    seen: list[tuple[str, int, int]] = []
    with Workspace.init(tmp_path / "kb") as ws, caplog.at_level("WARNING"):
        report = ws.ingest([docs], progress=lambda *step: seen.append(step))

    steps = [(done, total) for stage, done, total in seen if stage == "embed"]
    assert len(steps) == -(-report.chunks_added // 8) and steps[-1] == (report.chunks_added,) * 2
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)
    (warning,) = [r.getMessage() for r in caplog.records if "chunks to embed" in r.getMessage()]
    assert f"rules.txt: {report.chunks_added:,} chunks to embed, roughly" in warning
    assert "a stopped ingest resumes where it stopped" in warning
