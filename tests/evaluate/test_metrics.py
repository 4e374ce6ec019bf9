from __future__ import annotations

import math

import pytest

from datawheel.evaluate.metrics import mrr_at, ndcg_at, recall_at, score_run


def test_ndcg_matches_the_textbook_formula() -> None:
    rel = {"a": 1, "b": 1}
    # hits at ranks 2 and 3: (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3))
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at(["x", "a", "b"], rel) == pytest.approx(expected)
    assert ndcg_at(["a", "b"], rel) == pytest.approx(1.0)
    assert ndcg_at(["x", "y"], rel) == 0.0


def test_graded_relevance_and_cutoff() -> None:
    rel = {"a": 2, "b": 1}
    assert ndcg_at(["b", "a"], rel) < ndcg_at(["a", "b"], rel) == pytest.approx(1.0)
    assert ndcg_at(["x"] * 10 + ["a"], rel, k=10) == 0.0


def test_recall_and_mrr() -> None:
    rel = {"a": 1, "b": 1, "c": 1, "d": 0}
    assert recall_at(["a", "z", "c"], rel, k=100) == pytest.approx(2 / 3)
    assert recall_at(["a", "z", "c"], rel, k=1) == pytest.approx(1 / 3)
    assert mrr_at(["z", "d", "c"], rel) == pytest.approx(1 / 3)
    assert mrr_at(["z"] * 10 + ["a"], rel) == 0.0


def test_score_run_averages_over_judged_queries_only() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": ["a"], "q2": ["x", "b"]}
    m = score_run(run, qrels)
    assert m["queries"] == 2
    assert m["mrr@10"] == pytest.approx((1 + 0.5) / 2)
    assert m["recall@100"] == pytest.approx(1.0)
