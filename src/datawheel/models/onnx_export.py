"""Export a sentence-transformers model's transformer to ONNX, optionally int8-quantised.

The exported graph maps ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the
model takes them) to ``last_hidden_state``; pooling and normalisation happen in numpy
(see :mod:`datawheel.models.embedder`).

Files are cached under ``<cache_root>/onnx/<name>-<sha16>-v<EXPORTER_VERSION>/`` and are
written atomically: each file is produced in a temporary folder next to the cache and then
moved into place with :func:`os.replace`, so a killed export never leaves a half file.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from datawheel.errors import ModelError  # noqa: E402

logger = logging.getLogger(__name__)
prepare_log = logging.getLogger("datawheel.prepare")  # shown by the CLI: see embedder.py

#: Bump whenever the exported graph or the quantisation recipe changes (invalidates caches).
EXPORTER_VERSION = "1"
OPSET = 17
FP32_NAME = "model.onnx"
INT8_NAME = "model-int8.onnx"
#: Largest allowed |onnx - torch| on unmasked hidden states when validating an export.
_MAX_EXPORT_ERROR = 1e-3


def export_folder(cache_root: Path, name: str, weights_sha256: str) -> Path:
    """Return the cache folder for one model's exported files (it may not exist yet)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"
    return Path(cache_root) / "onnx" / f"{safe}-{weights_sha256[:16]}-v{EXPORTER_VERSION}"


def prepare_folder(folder: Path) -> None:
    """Create a model's cache folder and drop staging folders that killed exports left."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create the model cache folder {folder}: {exc} - set DATAWHEEL_CACHE "
            "to a writable folder"
        ) from exc
    _remove_stale_staging(folder.parent)


def ensure_onnx(
    transformer_dir: Path, cache_root: Path, name: str, weights_sha256: str, *, int8: bool
) -> Path:
    """Return the cached ONNX file for a model, exporting (and quantising) it on first use."""
    folder = export_folder(cache_root, name, weights_sha256)
    fp32 = folder / FP32_NAME
    target = folder / INT8_NAME if int8 else fp32
    if target.is_file():
        logger.debug("reusing cached ONNX model %s", target)
        return target
    prepare_folder(folder)
    if not fp32.is_file():
        with _staging(folder) as tmp:
            prepare_log.info("exporting the embedding model to ONNX (once, ~10 s) -> %s", fp32)
            export_transformer(transformer_dir, tmp / FP32_NAME)
            _write_meta(tmp / "meta.json", transformer_dir, weights_sha256)
            os.replace(tmp / "meta.json", folder / "meta.json")
            os.replace(tmp / FP32_NAME, fp32)
    if int8 and not target.is_file():
        with _staging(folder) as tmp:
            prepare_log.info("quantising the ONNX model to int8 (once, ~10 s) -> %s", target)
            quantize_int8(fp32, tmp / INT8_NAME)
            os.replace(tmp / INT8_NAME, target)
    return target


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars or config chatter from transformers while converting."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def export_transformer(transformer_dir: Path, out_path: Path) -> None:
    """Export the Hugging Face model in ``transformer_dir`` to ``out_path`` and validate it.

    The attention mask is turned into an additive 4-D float mask before it enters the
    model, so the traced graph has no shape-specialised mask code and works for any batch
    size and sequence length; the export is checked against torch at a second shape.
    """
    import torch
    from transformers import AutoModel

    try:
        with _quiet_transformers():
            model = AutoModel.from_pretrained(str(transformer_dir), attn_implementation="eager")
    except Exception as exc:  # noqa: BLE001 - any load failure is a model problem
        raise ModelError(
            f"cannot load the transformer in {transformer_dir} for ONNX export: {exc} - "
            "use embedding.runtime 'torch' or point embedding.model at a "
            "sentence-transformers folder"
        ) from exc
    model.eval()
    wants_types = "token_type_ids" in inspect.signature(model.forward).parameters
    wrapper = _hidden_states_module(model, wants_types)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if wants_types else [])
    example = _example_inputs(torch, [[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]], wants_types)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            example,
            str(out_path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,  # the torch.export-based default needs onnxscript; TorchScript is enough
        )
    _validate(wrapper, out_path, wants_types)


def quantize_int8(src: Path, out_path: Path) -> None:
    """Dynamic int8 quantisation of every MatMul: signed int8 weights, per output channel.

    Signed weights use the u8 x s8 VNNI/AMX kernels (unsigned weights ran ~2x slower here)
    and per-channel scales keep the embeddings within ~0.995 cosine of fp32 (per-tensor
    scales dropped to ~0.94).
    """
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )

    with _quiet_root_logger():
        quantize_dynamic(
            str(src),
            str(out_path),
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
        )


def _hidden_states_module(model: object, wants_types: bool):  # type: ignore[no-untyped-def]
    """Wrap ``model`` in a ``torch.nn.Module`` that returns ``last_hidden_state``."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):  # type: ignore[no-untyped-def]
            mask = attention_mask[:, None, None, :].to(torch.float32)
            additive = (1.0 - mask) * torch.finfo(torch.float32).min
            kwargs = {"input_ids": input_ids, "attention_mask": additive}
            if wants_types:
                kwargs["token_type_ids"] = token_type_ids
            return self.model(**kwargs).last_hidden_state

    # eval() matters: torch.onnx.export restores the wrapper's mode afterwards, and a fresh
    # Module is in training mode, which would switch dropout on in the wrapped model.
    return HiddenStates().eval()


def _example_inputs(torch, rows: list[list[int]], wants_types: bool) -> tuple:  # type: ignore[no-untyped-def]
    ids = torch.tensor(rows, dtype=torch.long)
    mask = (ids != 0).long()
    return (ids, mask, torch.zeros_like(ids)) if wants_types else (ids, mask)


def export_error(wrapper, wants_types: bool, run) -> float:  # type: ignore[no-untyped-def]
    """Largest |converted - torch| on unmasked hidden states, at a shape other than the
    traced one; ``run`` maps the torch input tensors to the converted graph's output."""
    import numpy as np
    import torch

    rows = [
        [7, 8, 9, 10, 11, 12, 13, 14, 15],
        [7, 8, 9, 0, 0, 0, 0, 0, 0],
        [7, 8, 9, 10, 11, 0, 0, 0, 0],
    ]
    inputs = _example_inputs(torch, rows, wants_types)
    with torch.no_grad():
        expected = wrapper(*inputs).numpy()
    got = run(inputs)
    mask = inputs[1].numpy()[..., None].astype(bool)
    return float(np.abs((got - expected) * mask).max())


def _validate(wrapper, onnx_path: Path, wants_types: bool) -> None:  # type: ignore[no-untyped-def]
    """Compare the ONNX graph with torch at a shape different from the traced one."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def run(inputs):  # type: ignore[no-untyped-def]
        feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=True)}
        return session.run(None, feed)[0]

    error = export_error(wrapper, wants_types, run)
    if not error < _MAX_EXPORT_ERROR:
        raise ModelError(
            f"the ONNX export of {onnx_path.name} differs from torch (max error {error:.3g}); "
            "use embedding.runtime 'torch' for this model"
        )
    logger.debug("ONNX export validated (max abs error %.2g)", error)


def _write_meta(path: Path, transformer_dir: Path, weights_sha256: str) -> None:
    import onnxruntime  # type: ignore[import-untyped]
    import torch
    import transformers

    meta = {
        "source": str(transformer_dir),
        "weights_sha256": weights_sha256,
        "exporter_version": EXPORTER_VERSION,
        "opset": OPSET,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    """A temporary folder beside ``folder`` (same filesystem, so os.replace is atomic)."""
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_staging(parent: Path, max_age_s: float = 3600.0) -> None:
    """Delete temporary folders left behind by exports that were killed (over an hour old)."""
    now = time.time()
    for path in parent.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Mute onnxruntime.quantization's chatter, which it logs straight to the root logger.

    While quantising, root-logger records below WARNING and its "consider pre-processing"
    warning are dropped; records of named loggers are untouched.
    """

    def keep(record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
