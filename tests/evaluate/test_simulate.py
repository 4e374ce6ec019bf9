"""simulate on a slice of SciFact: the flywheel improves, and test queries never leak."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from datawheel import Workspace
from datawheel.evaluate.beir import load_qrels, load_queries

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_beir(scifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 train and 80 test queries, their relevant abstracts and 400 distractors."""
    root = tmp_path_factory.mktemp("beir_small")
    rng = random.Random(7)
    train = load_qrels(scifact / "qrels" / "train.tsv")
    test = load_qrels(scifact / "qrels" / "test.tsv")
    train_ids = sorted(train)[:200]
    test_ids = sorted(test)[:80]
    wanted = {d for q in train_ids for d in train[q]} | {d for q in test_ids for d in test[q]}
    lines = (scifact / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    others = [ln for ln in lines if json.loads(ln)["_id"] not in wanted]
    keep = [ln for ln in lines if json.loads(ln)["_id"] in wanted] + rng.sample(others, 400)
    (root / "corpus.jsonl").write_text("\n".join(keep) + "\n", encoding="utf-8")
    queries = load_queries(scifact / "queries.jsonl", set(train_ids) | set(test_ids))
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()),
        encoding="utf-8",
    )
    (root / "qrels").mkdir()
    for name, qrels, ids in (("train", train, train_ids), ("test", test, test_ids)):
        rows = ["query-id\tcorpus-id\tscore"]
        rows += [f"{q}\t{d}\t{g}" for q in ids for d, g in qrels[q].items()]
        (root / "qrels" / f"{name}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def simulated(small_beir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("sim") / "ws"
    with Workspace.init(path) as ws:
        result = ws.simulate(small_beir)
    return path, result


def test_the_promoted_version_beats_before_on_the_test_split(simulated: tuple[Path, dict]) -> None:
    _, result = simulated
    for side in ("before", "after"):
        assert set(result[side]) == {"ndcg@10", "recall@100", "mrr@10", "promoted"}
    assert result["before"]["promoted"] is None
    assert result["after"]["promoted"] == "v1"
    assert result["after"]["ndcg@10"] > result["before"]["ndcg@10"] + 0.02
    dropped = result["train_queries_dropped_as_test_duplicates"]
    assert result["votes"]["up"] + result["votes"]["down"] == result["train_queries"]
    assert result["train_queries"] + dropped == 200


def test_test_queries_never_reach_training(simulated: tuple[Path, dict], small_beir: Path) -> None:
    path, _ = simulated
    test_text = set(
        load_queries(
            small_beir / "queries.jsonl", set(load_qrels(small_beir / "qrels" / "test.tsv"))
        ).values()
    )
    train_text = set(
        load_queries(
            small_beir / "queries.jsonl", set(load_qrels(small_beir / "qrels" / "train.tsv"))
        ).values()
    )
    with Workspace.open(path) as ws:
        asked = {i.question for i in ws.interactions.interactions()}
        memory = {e.question for e in ws.model.memory.entries}
        # every train query asked, except those worded exactly like a test query
        assert asked == train_text - test_text
        assert not asked & test_text
        assert memory and not memory & test_text  # no answer-memory entry from a test query
        voted = {f.interaction_id for f in ws.interactions.feedback()}
        logged = {i.id: i.question for i in ws.interactions.interactions()}
        assert not {logged[i] for i in voted} & test_text  # no ranker training row either


def test_rollback_restores_the_measured_baseline(
    simulated: tuple[Path, dict], small_beir: Path, tmp_path: Path
) -> None:
    path, result = simulated
    copy = tmp_path / "ws"
    shutil.copytree(path, copy)
    with Workspace.open(copy) as ws:
        assert [v["id"] for v in ws.versions() if v["current"]] == ["v1"]
        assert ws.rollback() is None
        again = ws.evaluate(small_beir, split="test")
    assert again["ndcg@10"] == pytest.approx(result["before"]["ndcg@10"], abs=1e-9)


def test_nothing_ranks_differently_when_no_candidate_wins(
    simulated: tuple[Path, dict], small_beir: Path, tmp_path: Path
) -> None:
    path, result = simulated
    copy = tmp_path / "ws"
    shutil.copytree(path, copy)
    with Workspace.open(copy) as ws:
        ws.rollback()
        report = ws.improve(margin=1.0)  # no candidate can win by a whole nDCG point
        # the 👍 answers still refresh the answer memory, with the ranking left as it was
        assert report.promoted == "v2"
        assert ws.model.ranker is None
        after = ws.evaluate(small_beir, split="test")
    assert after["ndcg@10"] == pytest.approx(result["before"]["ndcg@10"], abs=1e-9)
