from __future__ import annotations

import pytest

from datawheel.apps.rag.fuse import convex, rrf, standardise


def test_standardise_z_scores() -> None:
    z = standardise({"a": 3.0, "b": 1.0})
    assert z == {"a": pytest.approx(1.0), "b": pytest.approx(-1.0)}
    assert standardise({"a": 2.0, "b": 2.0}) == {"a": 0.0, "b": 0.0}  # no signal
    assert standardise({}) == {}


def test_convex_weights() -> None:
    sparse = {"a": 9.0, "b": 1.0, "c": 1.0}
    dense = {"a": 0.1, "b": 0.9, "c": 0.5}
    assert convex(sparse, dense, 0.0)[0][0] == "a"
    assert convex(sparse, dense, 1.0)[0][0] == "b"
    mixed = dict(convex(sparse, dense, 0.5))
    assert mixed["c"] < mixed["a"] and mixed["c"] < mixed["b"]


def test_one_retriever_without_signal_leaves_the_other_in_charge() -> None:
    fused = convex({"a": 0.0, "b": 0.0}, {"a": 0.2, "b": 0.8}, 0.3)
    assert [cid for cid, _ in fused] == ["b", "a"]


def test_rrf_rewards_agreement() -> None:
    fused = rrf([[("a", 1), ("b", 1)], [("b", 1), ("c", 1)]], k=60)
    assert fused[0][0] == "b"
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
