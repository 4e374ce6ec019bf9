"""ONNX Runtime embedders: the exported transformer in fp32 (``onnx``) or int8."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from datawheel.errors import ModelError
from datawheel.models.embedder import (
    _BaseEmbedder,
    _load_tokenizer,
    _ModelSpec,
    _pad_batch,
    _pool,
    weights_sha256,
)


class OnnxEmbedder(_BaseEmbedder):
    """onnxruntime on the exported transformer, then pooling + L2 norm in numpy."""

    def __init__(self, spec: _ModelSpec, runtime: str, batch_size: int, cache_dir: Path) -> None:
        super().__init__(spec, runtime, batch_size)
        self.cache_dir = cache_dir
        self.onnx_path: Path | None = None

    def _load(self) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        from datawheel.models.onnx_export import ensure_onnx

        sha = weights_sha256(self.spec.weights)
        int8 = self.runtime == "onnx-int8"
        self.onnx_path = ensure_onnx(
            self.spec.transformer_dir, self.cache_dir, self.spec.name, sha, int8=int8
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = _cpu_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = ort.InferenceSession(
                str(self.onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - a corrupt cache file or an unsupported graph
            raise ModelError(
                f"onnxruntime cannot load {self.onnx_path}: {exc} - delete that file to re-export, "
                "or use embedding.runtime 'torch'"
            ) from exc
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer, self._pad_id = _load_tokenizer(self.spec)

    def _prepare(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        lengths, encodings = self._token_lengths(texts)
        return lengths, (encodings, lengths)

    def _encode(self, texts: list[str], prepared: Any, idx: np.ndarray) -> np.ndarray:
        encodings, lengths = prepared
        ids, mask = _pad_batch(encodings, lengths, idx, int(lengths[idx].max()), self._pad_id)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feed)[0]
        return _pool(hidden, mask, self.spec.pooling)


def _cpu_threads() -> int:
    """CPUs this process may run on (the affinity mask, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
