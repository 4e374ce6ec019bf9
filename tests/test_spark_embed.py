"""Embedding a corpus as a Spark job (local mode) into PostgreSQL + pgvector, against the
normal ingest: the same chunks, vectors within cosine 0.999, the same top hits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="pip install 'datawheel[spark]'")

from datawheel.spark_embed import embed_with_spark  # noqa: E402
from datawheel.tables.spark import spark_session  # noqa: E402
from datawheel.workspace import Workspace  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

QUERIES = [
    "vitamin D deficiency and bone fractures",
    "stem cells in regenerative medicine",
    "antibiotic resistance in bacteria",
    "gene expression in cancer cells",
]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    with spark_session("local[2]") as session:
        yield session


@pytest.fixture
def corpus(scifact: Path, tmp_path: Path) -> Path:
    """The first 150 SciFact abstracts as text files (a few hundred chunks)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    with (scifact / "corpus.jsonl").open(encoding="utf-8") as fh:
        for _, line in zip(range(150), fh, strict=False):
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(
                f"{doc['title']}\n\n{doc['text']}\n", encoding="utf-8"
            )
    return folder


def _workspace(path: Path) -> Workspace:
    """A workspace embedding with ONNX fp32: the int8 runtime quantises each batch's
    activations with the batch's own range, so its vectors depend on which texts share a
    batch, and Spark's batches are not the local ingest's (cosine 0.98-1.0 measured)."""
    Workspace.init(path).close()
    with (path / "datawheel.yaml").open("a", encoding="utf-8") as fh:
        fh.write("\nembedding:\n  runtime: onnx\n")
    return Workspace.open(path)


def _vectors(ws: Workspace) -> dict[str, np.ndarray]:
    ids = sorted(ws.store.chunk_ids())
    return dict(zip(ids, ws.indexes.vectors.vectors(ids), strict=True))


def test_spark_embedding_equals_normal_ingest(
    spark, corpus: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATAWHEEL_DATABASE_URL", raising=False)
    with _workspace(tmp_path / "local") as ws:
        normal = ws.ingest([corpus])
        expected = _vectors(ws)
        top = [ws.search(q, k=1, mode="dense")[0].chunk_id for q in QUERIES]

    monkeypatch.setenv("DATAWHEEL_DATABASE_URL", pg_url)
    with _workspace(tmp_path / "pg") as ws:
        assert ws.store.is_postgres and ws.embedder.runtime == "onnx"
        report = embed_with_spark(ws, [corpus], spark=spark)
        assert (report.added, report.chunks_added, report.failed) == (
            normal.added,
            normal.chunks_added,
            [],
        )
        assert type(ws.indexes.vectors).__name__ == "PgVectorIndex"
        got = _vectors(ws)
        assert [ws.search(q, k=1, mode="dense")[0].chunk_id for q in QUERIES] == top
    assert got.keys() == expected.keys() and len(got) >= 200
    cosines = [float(got[i] @ expected[i]) for i in expected]
    assert min(cosines) > 0.999


def test_cli_ingest_on_spark(spark, corpus: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from datawheel.cli.main import app

    monkeypatch.delenv("DATAWHEEL_DATABASE_URL", raising=False)
    small = tmp_path / "small"
    small.mkdir()
    for path in sorted(corpus.iterdir())[:20]:
        (small / path.name).write_bytes(path.read_bytes())
    kb = tmp_path / "kb"
    _workspace(kb).close()
    runner = CliRunner()
    args = ["ingest", str(kb), str(small), "--engine", "spark", "--spark-master", "local[1]"]
    done = runner.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["added"] == 20 and report["failed"] == []
    again = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert (again["added"], again["unchanged"]) == (0, 20)  # incremental, as a local ingest
    with Workspace.open(kb) as ws:
        (hit,) = ws.search(QUERIES[0], k=1)
        assert hit.uri.startswith(str(small))
    wrong = runner.invoke(app, ["ingest", str(kb), str(small), "--engine", "ray"])
    assert wrong.exit_code == 2 and "valid engines: local, spark" in wrong.output
