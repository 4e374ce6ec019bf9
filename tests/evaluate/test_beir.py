"""``datawheel evaluate`` on BEIR data: a tiny judged set made here, and the real SciFact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datawheel import Workspace
from datawheel.cli.main import app

runner = CliRunner()
DOCS = {
    "d1": ("Tent care", "Dry the tent fully before storage to prevent mildew on the fly."),
    "d2": ("Down jackets", "Wash down jackets with a special soap and tumble dry with balls."),
    "d3": ("Refunds", "Enterprise customers can return products within sixty days."),
    "d4": ("Gift cards", "Gift cards never expire and cannot be exchanged for cash."),
    "d5": ("Shipping", "Orders placed before one pm ship the same business day."),
}
QUERIES = {"q1": "mildew tent storage", "q2": "gift cards expire", "q3": "enterprise return"}
QRELS = {"q1": "d1", "q2": "d4", "q3": "d3"}


@pytest.fixture()
def beir(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in DOCS.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": t}) + "\n" for k, t in QUERIES.items())
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS.items())
    )
    return root


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_evaluate_json_contract(beir: Path, tmp_path: Path, mode: str) -> None:
    ws = tmp_path / "kb"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--beir",
            str(beir),
            "--split",
            "test",
            "--mode",
            mode,
            "-w",
            str(ws),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # exactly one JSON object on stdout
    data = json.loads(lines[0])
    assert {"ndcg@10", "recall@100", "mrr@10", "queries", "mode"} <= set(data)
    assert data["mode"] == mode and data["queries"] == 3
    assert data["ndcg@10"] == pytest.approx(1.0) and data["recall@100"] == 1.0
    with Workspace.open(ws) as w:
        [row] = w.store.evaluations()
        assert row["mode"] == mode and row["versions"]["embedder"].startswith("all-MiniLM")
        assert row["metrics"]["ndcg@10"] == pytest.approx(1.0)


def test_unknown_split_names_the_valid_ones(beir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", "--beir", str(beir), "--split", "dev", "-w", str(tmp_path / "kb")]
    )
    assert result.exit_code == 2
    assert "valid splits: test" in result.output


@pytest.fixture(scope="module")
def scifact_third(scifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SciFact's test split over a third of its corpus: every judged document and every third
    of the rest (about 1,900 of 5,183), so the test embeds a third as much. The full corpus is
    measured by benchmarks/quality.py, whose figures the README shows."""
    root = tmp_path_factory.mktemp("scifact-third")
    (root / "qrels").mkdir()
    qrels = (scifact / "qrels" / "test.tsv").read_text()
    judged = {line.split("\t")[1] for line in qrels.splitlines()[1:] if line}
    lines = (scifact / "corpus.jsonl").read_text().splitlines(keepends=True)
    kept = [x for i, x in enumerate(lines) if i % 3 == 0 or json.loads(x)["_id"] in judged]
    (root / "corpus.jsonl").write_text("".join(kept))
    (root / "queries.jsonl").write_text((scifact / "queries.jsonl").read_text())
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


@pytest.mark.slow
def test_scifact_hybrid_beats_each_retriever(scifact_third: Path, tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "kb")
    scores = {
        mode: ws.evaluate(scifact_third, split="test", mode=mode)["ndcg@10"]
        for mode in ("bm25", "dense", "hybrid")
    }
    ws.close()
    # the README's figures come from benchmarks/quality.py on the whole corpus; this guards
    # against regressions (measured here: bm25 0.764, dense 0.751, hybrid 0.813)
    assert scores["bm25"] >= 0.74 and scores["dense"] >= 0.72
    assert scores["hybrid"] >= 0.79
    assert scores["hybrid"] > max(scores["bm25"], scores["dense"]) + 0.02


def test_evaluation_stays_inside_its_corpus(beir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(
        "".join(  # decoys that match every query word for word
            json.dumps({"_id": f"x{i}", "title": q, "text": q * 3}) + "\n"
            for i, q in enumerate(QUERIES.values())
        )
    )
    ws = Workspace.init(tmp_path / "kb")
    ws.ingest([other])
    result = ws.evaluate(beir, split="test", mode="bm25")
    ws.close()
    assert result["ndcg@10"] == pytest.approx(1.0)


def test_a_query_that_is_itself_a_corpus_document_is_not_its_own_answer(tmp_path: Path) -> None:
    """As in ArguAna and Quora, each query is also a corpus document under the same id: BEIR
    leaves that document out of the ranking (ignore_identical_ids), and so do we."""
    root = tmp_path / "args"
    (root / "qrels").mkdir(parents=True)
    docs = {
        "a1": "School uniforms reduce bullying because clothes no longer show family income.",
        "a2": "Uniforms do not stop bullying; children find other marks of status to tease.",
        "a3": "Homework in primary school has little effect on later exam results.",
        "a4": "Early homework builds study habits that pay off in secondary school exams.",
    }
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": t}) + "\n" for k, t in docs.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": docs[k]}) + "\n" for k in ("a1", "a3"))
    )
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\na1\ta2\t1\na3\ta4\t1\n")
    with Workspace.init(tmp_path / "kb") as ws:
        result = ws.evaluate(root, split="test", mode="bm25")
    # the counter-argument ranks first once the query's own text is out of the way
    assert result["mrr@10"] == pytest.approx(1.0) and result["ndcg@10"] == pytest.approx(1.0)
