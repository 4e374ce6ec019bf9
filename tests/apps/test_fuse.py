from __future__ import annotations

import pytest

from datawheel.apps.rag.fuse import convex, normalise, rrf


def test_normalise_min_max() -> None:
    assert normalise([("a", 10.0), ("b", 5.0), ("c", 0.0)]) == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert normalise([("a", 3.0)]) == {"a": 1.0}
    assert normalise([]) == {}


def test_convex_weights_and_missing_entries() -> None:
    sparse = [("a", 9.0), ("b", 1.0)]
    dense = [("b", 0.9), ("c", 0.5)]
    assert [cid for cid, _ in convex(sparse, dense, 0.0)][0] == "a"
    assert [cid for cid, _ in convex(sparse, dense, 1.0)][0] == "b"
    scores = dict(convex(sparse, dense, 0.5))
    assert scores["a"] == pytest.approx(0.5)  # 0.5 * 1 + 0.5 * missing(0)
    assert scores["b"] == pytest.approx(0.5)  # 0.5 * 0 + 0.5 * 1


def test_rrf_rewards_agreement() -> None:
    fused = rrf([[("a", 1), ("b", 1)], [("b", 1), ("c", 1)]], k=60)
    assert fused[0][0] == "b"
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
