"""Tests for datawheel.models.embedder on the real packaged all-MiniLM-L6-v2 (no mocks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from datawheel.errors import ConfigError, ModelError
from datawheel.models import onnx_export
from datawheel.models.embedder import (
    BUILTIN_MODEL,
    BUILTIN_SHA256,
    RUNTIMES,
    Embedder,
    load_embedder,
    resolve_model_path,
)

SENTENCES = [
    "The cat is sleeping on the sofa.",
    "Aspirin lowers the risk of heart attacks in some patients.",
    "Quarterly revenue grew by eight percent year over year.",
    "How do I reset my password?",
    "Neutrophils are the most abundant white blood cells in humans.",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX cache for the module, so the export runs once."""
    return tmp_path_factory.mktemp("datawheel-cache")


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return load_embedder(runtime="torch")


@pytest.fixture(scope="module")
def int8_embedder(cache_dir: Path) -> Embedder:
    return load_embedder(runtime="onnx-int8", cache_dir=cache_dir)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_packaged_weights_match_upstream_hash() -> None:
    weights = resolve_model_path(BUILTIN_MODEL) / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert digest == BUILTIN_SHA256


def test_model_id_names_weights_and_runtime(int8_embedder: Embedder) -> None:
    assert int8_embedder.model_id == f"all-MiniLM-L6-v2:{BUILTIN_SHA256[:8]}:onnx-int8"
    assert int8_embedder.dim == 384


# Distinct token lengths, so reversing the input yields exactly the same batches.
MIXED = ["x", "short text here", "a much longer sentence " * 20, "", "a medium length text"]


@pytest.mark.parametrize(
    "runtime", ["torch", "onnx-int8", "torch-bf16", "openvino", "openvino-int8"]
)
def test_shape_norm_and_order(runtime: str, cache_dir: Path) -> None:
    embedder = load_embedder(runtime=runtime, batch_size=2, cache_dir=cache_dir)
    vectors = embedder.embed(MIXED)
    assert vectors.shape == (len(MIXED), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reversed_back = embedder.embed(MIXED[::-1])[::-1]
    np.testing.assert_allclose(vectors, reversed_back, atol=1e-5)
    # Each row is the embedding of its own text. int8 rows move a little with their
    # batch-mates (activations are quantised with one scale per batch), fp32/bf16 barely.
    alone = np.vstack([embedder.embed([text]) for text in MIXED])
    similarity = alone @ vectors.T
    assert (similarity.argmax(axis=1) == np.arange(len(MIXED))).all()
    floor = {"onnx-int8": 0.95, "openvino": 0.999, "openvino-int8": 0.999}.get(runtime, 0.9999)
    assert np.diag(similarity).min() >= floor, np.diag(similarity)


@pytest.mark.parametrize("runtime", ["onnx-int8", "openvino", "openvino-int8"])
def test_async_calls_queued_back_to_back_match_embed(runtime: str, cache_dir: Path) -> None:
    """Ingest queues each commit batch with embed_async before the last one is done; every
    future must hold its own texts' rows, in order, as embed would return them."""
    embedder = load_embedder(runtime=runtime, batch_size=2, cache_dir=cache_dir)
    calls = [MIXED, MIXED[::-1], MIXED[1:3], [], MIXED[:1]]
    futures = [embedder.embed_async(texts) for texts in calls]
    for texts, future in zip(calls, futures, strict=True):
        got = future.result(timeout=120)
        assert got.shape == (len(texts), 384)
        np.testing.assert_allclose(got, embedder.embed(texts), atol=1e-5)
    with pytest.raises(TypeError):
        embedder.embed_async("one string")  # type: ignore[arg-type]


def test_empty_input(int8_embedder: Embedder, torch_embedder: Embedder) -> None:
    for embedder in (int8_embedder, torch_embedder):
        out = embedder.embed([])
        assert out.shape == (0, 384)
        assert out.dtype == np.float32


def test_long_text_is_truncated_not_rejected(int8_embedder: Embedder) -> None:
    out = int8_embedder.embed(["word " * 5000])
    assert out.shape == (1, 384)


def test_int8_close_to_torch(int8_embedder: Embedder, torch_embedder: Embedder) -> None:
    cos = _cos(int8_embedder.embed(SENTENCES), torch_embedder.embed(SENTENCES))
    assert cos.min() >= 0.98, cos


def test_onnx_fp32_matches_torch(cache_dir: Path, torch_embedder: Embedder) -> None:
    onnx = load_embedder(runtime="onnx", cache_dir=cache_dir)
    cos = _cos(onnx.embed(SENTENCES), torch_embedder.embed(SENTENCES))
    assert cos.min() >= 0.9999, cos


def test_bf16_close_to_torch(torch_embedder: Embedder) -> None:
    bf16 = load_embedder(runtime="torch-bf16")
    cos = _cos(bf16.embed(SENTENCES), torch_embedder.embed(SENTENCES))
    assert cos.min() >= 0.999, cos


def test_semantic_sanity(int8_embedder: Embedder) -> None:
    anchor, paraphrase, unrelated = int8_embedder.embed(
        [
            "The cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "Interest rates were raised by the central bank.",
        ]
    )
    assert float(anchor @ paraphrase) > float(anchor @ unrelated) + 0.2


def test_bad_model_path_raises_model_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError) as info:
        load_embedder(model=str(missing))
    assert str(missing) in str(info.value)


def test_folder_without_weights_raises_model_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelError) as info:
        load_embedder(model=str(tmp_path), runtime="torch")
    assert str(tmp_path) in str(info.value)


def test_unknown_builtin_raises_model_error() -> None:
    with pytest.raises(ModelError, match="builtin:all-MiniLM-L6-v2"):
        load_embedder(model="builtin:nope")


def test_unknown_runtime_lists_valid_runtimes() -> None:
    with pytest.raises(ConfigError) as info:
        load_embedder(runtime="tensorflow")
    for runtime in RUNTIMES:
        assert runtime in str(info.value)


def test_constructor_is_lazy(tmp_path: Path) -> None:
    embedder = load_embedder(runtime="onnx-int8", cache_dir=tmp_path)
    assert isinstance(embedder, Embedder)
    assert not (tmp_path / "onnx").exists()  # nothing exported until first use


def test_cache_is_reused(cache_dir: Path) -> None:
    first = load_embedder(runtime="onnx-int8", cache_dir=cache_dir)
    first.embed(["warm the cache"])
    files = sorted((cache_dir / "onnx").rglob("*.onnx"))
    assert {f.name for f in files} == {onnx_export.FP32_NAME, onnx_export.INT8_NAME}
    before = {f: f.stat().st_mtime_ns for f in files}
    second = load_embedder(runtime="onnx-int8", cache_dir=cache_dir)
    second.embed(["use the cache"])
    assert {f: f.stat().st_mtime_ns for f in files} == before
    assert not [p for p in (cache_dir / "onnx").iterdir() if p.name.startswith(".tmp-")]
