"""The OpenVINO runtime and the ``auto`` choice, on the real packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from datawheel.errors import ModelError
from datawheel.models import embedder as embedder_module
from datawheel.models.embedder import (
    BUILTIN_SHA256,
    Embedder,
    load_embedder,
    resolve_model_path,
    resolve_runtime,
)
from datawheel.models.openvino_runtime import (
    INT8_IR_NAME,
    IR_NAME,
    PROBES_NAME,
    OpenVinoEmbedder,
    calibration_texts,
)

pytest.importorskip("openvino", reason="the [openvino] extra is part of the test install")

SENTENCES = [
    "The cat is sleeping on the sofa.",
    "Aspirin lowers the risk of heart attacks in some patients.",
    "Quarterly revenue grew by eight percent year over year.",
    "How do I reset my password?",
    "Neutrophils are the most abundant white blood cells in humans. " * 12,
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the module, so the conversion runs once."""
    return tmp_path_factory.mktemp("datawheel-cache")


@pytest.fixture(scope="module")
def openvino(cache_dir: Path) -> Embedder:
    return load_embedder(runtime="openvino", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return load_embedder(runtime="torch").embed(SENTENCES)


def test_close_to_torch_fp32(openvino: Embedder, reference: np.ndarray) -> None:
    vectors = openvino.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = (vectors * reference).sum(axis=1)
    assert cos.min() >= 0.999, cos  # bf16 on AMX CPUs, fp32 elsewhere


def test_many_batches_match_one_at_a_time(cache_dir: Path, reference: np.ndarray) -> None:
    """Several batches go through the stream queue; rows must land in input order."""
    small = load_embedder(runtime="openvino", batch_size=1, cache_dir=cache_dir)
    texts = SENTENCES * 3
    vectors = small.embed(texts)
    alone = np.vstack([small.embed([t]) for t in texts])
    np.testing.assert_allclose(vectors, alone, atol=1e-4)
    assert ((vectors @ reference.T).argmax(axis=1) == np.arange(len(texts)) % 5).all()


def test_threads_share_one_embedder(openvino: Embedder) -> None:
    expected = {t: openvino.embed([t])[0] for t in SENTENCES}
    got: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            texts = SENTENCES[n % 5 :] + SENTENCES[: n % 5]
            got[n] = openvino.embed(texts)
            for text, row in zip(texts, got[n], strict=True):
                np.testing.assert_allclose(row, expected[text], atol=1e-4)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(got) == 8


@pytest.mark.parametrize("mode", ["cls", "max"])
def test_pooling_in_the_graph_matches_numpy(mode: str, tmp_path: Path, cache_dir: Path) -> None:
    """cls and max pooling are built into the OpenVINO graph; onnx pools in numpy."""
    model = tmp_path / f"minilm-{mode}"
    shutil.copytree(resolve_model_path("builtin:all-MiniLM-L6-v2"), model, symlinks=True)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config["pooling_mode_mean_tokens"] = False
    config[f"pooling_mode_{'cls_token' if mode == 'cls' else 'max_tokens'}"] = True
    pooling.unlink()
    pooling.write_text(json.dumps(config))
    ours = load_embedder(str(model), runtime="openvino", cache_dir=cache_dir).embed(SENTENCES)
    numpy_pooled = load_embedder(str(model), runtime="onnx", cache_dir=cache_dir).embed(SENTENCES)
    mean = load_embedder(runtime="onnx", cache_dir=cache_dir).embed(SENTENCES)
    assert (ours * numpy_pooled).sum(axis=1).min() >= 0.999
    assert (ours * mean).sum(axis=1).min() < 0.99  # the pooling mode really changed


def test_ir_is_converted_once_and_reused(cache_dir: Path, openvino: Embedder) -> None:
    openvino.embed(["warm"])
    (xml,) = (cache_dir / "onnx").glob(f"all-MiniLM-L6-v2-*/{IR_NAME}")
    assert xml.with_suffix(".bin").stat().st_size > 80_000_000  # fp32 weights
    before = (xml.stat().st_mtime_ns, xml.with_suffix(".bin").stat().st_mtime_ns)
    load_embedder(runtime="openvino", cache_dir=cache_dir).embed(["again"])
    assert (xml.stat().st_mtime_ns, xml.with_suffix(".bin").stat().st_mtime_ns) == before
    assert not [p for p in (cache_dir / "onnx").iterdir() if p.name.startswith(".tmp-")]


def test_openvino_tools_send_no_telemetry(
    openvino: Embedder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without an opt-out file OpenVINO's converter would report to Google Analytics."""
    openvino.warm_up()
    monkeypatch.delenv("CI", raising=False)  # CI=true alone turns it off
    monkeypatch.setenv("HOME", str(tmp_path))  # no opt-out file of this user's
    from openvino.tools.ovc.telemetry_utils import init_ovc_telemetry

    assert init_ovc_telemetry().consent is False


def test_corrupt_ir_names_the_file(tmp_path: Path, cache_dir: Path) -> None:
    (xml,) = (cache_dir / "onnx").glob(f"all-MiniLM-L6-v2-*/{IR_NAME}")
    copy = tmp_path / "onnx" / xml.parent.name
    copy.mkdir(parents=True)
    (copy / IR_NAME).write_text("<net>not a model", encoding="utf-8")
    shutil.copy(xml.with_suffix(".bin"), copy / xml.with_suffix(".bin").name)
    with pytest.raises(ModelError) as info:
        load_embedder(runtime="openvino", cache_dir=tmp_path).embed(["x"])
    assert IR_NAME in str(info.value) and "delete that file" in str(info.value)


def test_failed_load_reaches_the_async_caller(
    tmp_path: Path, cache_dir: Path, openvino: Embedder
) -> None:
    """A model that cannot load fails the future with the model's message, on every call."""
    openvino.embed(["convert the IR into cache_dir"])
    (xml,) = (cache_dir / "onnx").glob(f"all-MiniLM-L6-v2-*/{IR_NAME}")
    copy = tmp_path / "onnx" / xml.parent.name
    copy.mkdir(parents=True)
    (copy / IR_NAME).write_text("<net>not a model", encoding="utf-8")
    shutil.copy(xml.with_suffix(".bin"), copy / xml.with_suffix(".bin").name)
    broken = load_embedder(runtime="openvino", cache_dir=tmp_path)
    for _ in range(2):
        with pytest.raises(ModelError, match="delete that file"):
            broken.embed_async(SENTENCES).result(timeout=120)


def test_missing_openvino_says_which_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(ModelError, match=r"datawheel\[openvino\]"):
        load_embedder(runtime="openvino", cache_dir=tmp_path).embed(["x"])


def test_auto_picks_openvino_only_on_native_bf16_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedder_module, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert resolve_runtime("auto") == "openvino"
    monkeypatch.setattr(embedder_module, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert resolve_runtime("auto") == "openvino"
    # with AVX512-VNNI and no AMX (Zen 4), the NNCF-quantised copy - when NNCF is installed
    monkeypatch.setattr(embedder_module, "cpu_flags", lambda: {"avx512_bf16", "avx512_vnni"})
    assert resolve_runtime("auto") == "openvino-int8"
    amx = {"amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni"}
    monkeypatch.setattr(embedder_module, "cpu_flags", lambda: amx)
    assert resolve_runtime("auto") == "openvino-int8"  # checked against fp32 when it loads
    monkeypatch.setattr(embedder_module, "cpu_flags", lambda: {"avx512_bf16", "avx512_vnni"})
    monkeypatch.setitem(sys.modules, "nncf", None)
    assert resolve_runtime("auto") == "openvino"
    monkeypatch.setattr(embedder_module, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_vnni"})
    assert resolve_runtime("auto") == "onnx-int8"
    monkeypatch.setattr(embedder_module, "cpu_flags", set)
    assert resolve_runtime("auto") == "onnx-int8"
    assert resolve_runtime("torch") == "torch"


def test_auto_model_id_names_the_runtime_it_chose() -> None:
    chosen = load_embedder(runtime="auto")
    assert chosen.runtime == resolve_runtime("auto")
    assert chosen.model_id == f"all-MiniLM-L6-v2:{BUILTIN_SHA256[:8]}:{chosen.runtime}"


@pytest.fixture(scope="module")
def openvino_int8(cache_dir: Path) -> Embedder:
    return load_embedder(runtime="openvino-int8", cache_dir=cache_dir)


def test_int8_close_to_torch_fp32(openvino_int8: Embedder, reference: np.ndarray) -> None:
    """Static int8 (NNCF, calibrated on the demo texts) keeps each text's direction."""
    vectors = openvino_int8.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = (vectors * reference).sum(axis=1)
    assert cos.min() >= 0.98 and cos.mean() >= 0.99, cos
    assert cos.min() < 0.99999, cos  # really quantised, not the fp32 graph
    # static scales: a text's vector does not depend on its batch-mates
    alone = np.vstack([openvino_int8.embed([t]) for t in SENTENCES])
    np.testing.assert_allclose(vectors, alone, atol=1e-4)


def test_int8_quantised_once_beside_the_ir(
    cache_dir: Path, openvino_int8: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    openvino_int8.warm_up()
    (xml,) = (cache_dir / "onnx").glob(f"all-MiniLM-L6-v2-*/{INT8_IR_NAME}")
    (fp,) = (cache_dir / "onnx").glob(f"all-MiniLM-L6-v2-*/{IR_NAME}")
    assert xml.with_suffix(".bin").stat().st_size < fp.with_suffix(".bin").stat().st_size / 2
    before = xml.with_suffix(".bin").stat().st_mtime_ns
    monkeypatch.setitem(sys.modules, "nncf", None)  # the cached copy needs no NNCF
    load_embedder(runtime="openvino-int8", cache_dir=cache_dir).embed(["again"])
    assert xml.with_suffix(".bin").stat().st_mtime_ns == before


def test_int8_without_nncf_says_which_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_dir: Path, openvino: Embedder
) -> None:
    openvino.warm_up()
    (fp,) = (cache_dir / "onnx").glob(f"all-MiniLM-L6-v2-*/{IR_NAME}")
    copy = tmp_path / "onnx" / fp.parent.name
    copy.mkdir(parents=True)
    for path in (fp, fp.with_suffix(".bin")):
        shutil.copy(path, copy / path.name)
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(ModelError, match=r"datawheel\[openvino\]"):
        load_embedder(runtime="openvino-int8", cache_dir=tmp_path).embed(["x"])
    assert not (copy / INT8_IR_NAME).exists()


def test_calibration_texts_are_chunks_and_questions() -> None:
    texts = calibration_texts()
    assert len(texts) >= 100
    assert max(map(len, texts)) > 800 and min(map(len, texts)) < 100


@pytest.mark.parametrize("drift", [(0.66, 0.99), (0.9999, 0.66)], ids=["alone", "to-fp32"])
def test_int8_that_drifts_runs_the_fp_ir(
    drift: tuple[float, float],
    openvino_int8: Embedder,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A CPU whose int8 kernels give a text alone another vector than in a batch, or stray
    from fp32, gets the bf16/fp32 IR instead, with a warning, never drifting vectors."""
    openvino_int8.warm_up()
    (probes,) = (cache_dir / "onnx").glob(f"all-MiniLM-L6-v2-*/{PROBES_NAME}")
    with np.load(probes) as saved:
        fp32, texts = saved["vectors"], saved["texts"].tolist()
    torch = load_embedder(runtime="torch").embed(texts)
    assert (fp32 * torch).sum(axis=1).min() > 0.9999  # the reference really is fp32
    alone, to_fp32 = openvino_int8.int8_agreement(fp32)  # type: ignore[attr-defined]
    assert alone >= 0.99 and 0.98 <= to_fp32 < 0.99999, (alone, to_fp32)
    assert openvino_int8.ir_path.name == INT8_IR_NAME  # type: ignore[attr-defined]
    monkeypatch.setattr(OpenVinoEmbedder, "int8_agreement", lambda self, fp32: drift)
    drifting = load_embedder(runtime="openvino-int8", cache_dir=cache_dir)
    with caplog.at_level("WARNING"):
        drifting.warm_up()
    assert drifting.ir_path.name == IR_NAME  # type: ignore[attr-defined]
    assert "drift" in caplog.text and "embedding.runtime 'openvino'" in caplog.text
    fp = load_embedder(runtime="openvino", cache_dir=cache_dir).embed(SENTENCES)
    np.testing.assert_allclose(drifting.embed(SENTENCES), fp, atol=1e-5)


def test_int8_that_auto_picked_falls_back_without_a_warning(
    openvino_int8: Embedder,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Where 'auto' chose int8 and the CPU's int8 kernels drift, the bf16 IR runs with an
    info line, not a warning on every command: the user asked for nothing in particular."""
    openvino_int8.warm_up()  # the int8 copy exists
    monkeypatch.setattr(embedder_module, "cpu_flags", lambda: {"avx512_bf16", "avx512_vnni"})
    monkeypatch.setattr(OpenVinoEmbedder, "int8_agreement", lambda self, fp32: (0.66, 0.66))
    auto = load_embedder(runtime="auto", cache_dir=cache_dir)
    assert auto.runtime == "openvino-int8"
    with caplog.at_level("INFO"):
        auto.warm_up()
    assert auto.ir_path.name == IR_NAME  # type: ignore[attr-defined]
    drift = [r for r in caplog.records if "drift" in r.getMessage()]
    assert [r.levelname for r in drift] == ["INFO"]
