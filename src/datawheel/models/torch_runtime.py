"""The PyTorch runtimes: sentence-transformers in fp32 (``torch``) or bf16 (``torch-bf16``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from datawheel.errors import ModelError
from datawheel.models.embedder import (
    BUILTIN_MODEL,
    TORCH_PAD_MULTIPLE,
    TORCH_SINGLE_THREAD_TOKENS,
    _BaseEmbedder,
    _load_tokenizer,
    _pad_batch,
    cpu_flags,
    logger,
)


class TorchEmbedder(_BaseEmbedder):
    """sentence-transformers on CPU (runtime ``torch`` in fp32, ``torch-bf16`` in bf16)."""

    def _load(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        kwargs: dict[str, Any] = {}
        if self.runtime == "torch-bf16":
            kwargs["model_kwargs"] = {"dtype": torch.bfloat16}
            if not _cpu_has_bf16():
                logger.warning("no native bf16 on this CPU (AMX/AVX512-BF16): torch-bf16 is slow")
        try:
            self._model = SentenceTransformer(str(self.spec.root), device="cpu", **kwargs)
        except Exception as exc:  # noqa: BLE001 - any load failure is a model problem
            raise ModelError(
                f"cannot load the sentence-transformers model at {self.spec.root}: {exc} - point "
                f"embedding.model at a sentence-transformers folder, or use {BUILTIN_MODEL!r}"
            ) from exc
        self._model.eval()
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        dim = int((get_dim or self._model.get_sentence_embedding_dimension)() or self.dim)
        if dim != self.dim:
            logger.warning("model %s has dimension %d, not %d", self.spec.root, dim, self.dim)
            self.dim = dim
        self._probe: dict[str, Any] = {}
        if (self.spec.transformer_dir / "tokenizer.json").is_file():
            self._tokenizer, self._pad_id = _load_tokenizer(self.spec)
            prepare = getattr(self._model, "preprocess", None) or self._model.tokenize
            self._probe = dict(prepare(["probe"]))
            if not {"input_ids", "attention_mask"} <= self._probe.keys():
                self._probe = {}  # unusual inputs: let sentence-transformers tokenize

    def _prepare(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        lengths, encodings = self._token_lengths(texts)
        return lengths, (encodings, lengths)

    def _encode(self, texts: list[str], prepared: Any, idx: np.ndarray) -> np.ndarray:
        """Run the sentence-transformers pipeline on our own, bucketed, tokenisation.

        Widths are rounded up to a multiple of TORCH_PAD_MULTIPLE: oneDNN builds a kernel
        for every new input shape, and with free widths that cost never stops (bf16 ran at
        a fifth of its speed until every shape had been seen).
        """
        import torch

        encodings, lengths = prepared
        with torch.inference_mode():
            if encodings is None or not self._probe:
                batch = [texts[i] for i in idx]
                vectors = self._model.encode(
                    batch,
                    batch_size=len(batch),
                    normalize_embeddings=True,
                    convert_to_tensor=True,
                    show_progress_bar=False,
                )
                return vectors.float().numpy()
            longest = int(lengths[idx].max())
            width = -(-longest // TORCH_PAD_MULTIPLE) * TORCH_PAD_MULTIPLE
            width = max(longest, min(width, self.spec.max_seq_length))
            ids, mask = _pad_batch(encodings, lengths, idx, width, self._pad_id)
            small = ids.size <= TORCH_SINGLE_THREAD_TOKENS
            features: dict[str, Any] = {
                k: v for k, v in self._probe.items() if not isinstance(v, torch.Tensor)
            }
            features["input_ids"] = torch.from_numpy(ids)
            features["attention_mask"] = torch.from_numpy(mask)
            if "token_type_ids" in self._probe:
                features["token_type_ids"] = torch.zeros_like(features["input_ids"])
            with _torch_threads(1) if small else contextlib.nullcontext():
                vectors = self._model(features)["sentence_embedding"]
        return vectors.float().numpy()


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch ops on ``count`` intra-op threads, then restore (process-wide setting)."""
    import torch

    before = torch.get_num_threads()
    if before == count:
        yield
        return
    with _THREADS_LOCK:
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(before)


_THREADS_LOCK = threading.Lock()


def _cpu_has_bf16() -> bool:
    flags = cpu_flags()
    return not flags or bool(flags & {"amx_bf16", "avx512_bf16"})  # unknown: do not warn
