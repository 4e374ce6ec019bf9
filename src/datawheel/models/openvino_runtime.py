"""The OpenVINO runtime: the transformer converted once to OpenVINO IR, compiled for this CPU.

The conversion goes straight from PyTorch (``openvino.convert_model``) so attention stays
one ``ScaledDotProductAttention`` op, which OpenVINO runs as a fused kernel. On CPUs with
AMX or AVX512-BF16 OpenVINO runs the matrix work in bf16 and keeps normalisation in fp32:
~1.5x the throughput of ``onnx-int8`` on AMX, the same on AVX512-BF16 alone (AMD Zen 4), at
cosine ~0.99998 to fp32 (int8: ~0.995). Elsewhere it runs in fp32, slower than
``onnx-int8``; ``auto`` picks it only on CPUs with native bf16.

``openvino-int8`` quantises that IR once with NNCF (static int8: weights per channel,
activation scales measured on the demo texts shipped with datawheel), so the weight
matrices run on the CPU's int8 dot-product units: ~1.5x ``openvino`` on Zen 4, cosine
~0.996 to fp32, and, the scales being fixed, a text's vector does not depend on its
batch-mates.

Pooling and the L2 norm are appended to the graph, so a forward pass returns finished
vectors, and batches queue on several OpenVINO streams, those of successive ``embed_async``
calls one behind the other, so the cores never wait for Python between batches or calls.
The IR is cached beside the ONNX exports (``<cache>/onnx/<name>-<sha16>-v<N>/``) and
written atomically.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import queue
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from datawheel.errors import ModelError
from datawheel.models.embedder import (
    _BaseEmbedder,
    _load_tokenizer,
    _ModelSpec,
    _pad_batch,
    checked_texts,
    logger,
    prepare_log,
    unit_rows,
    weights_sha256,
)
from datawheel.models.onnx_export import (
    _MAX_EXPORT_ERROR,
    _example_inputs,
    _quiet_transformers,
    _staging,
    export_error,
    export_folder,
    prepare_folder,
)
from datawheel.models.onnx_runtime import _cpu_threads

IR_NAME = "model-openvino.xml"
INT8_IR_NAME = "model-openvino-int8.xml"
#: Calibration batches for int8 quantisation: NNCF measures activation ranges on them.
_CALIBRATION_BATCHES = 24
PROBES_NAME = "probes-fp32.npz"
#: When the int8 copy loads, probe texts are embedded alone and in a batch: below this
#: cosine between the two, the CPU's int8 kernels are not trusted and the bf16/fp32 IR runs
#: instead (they agree to ~0.9999999 on Zen 4).
_MIN_AGREEMENT = 0.99
#: ... and below this cosine to the fp32 vectors of the same probes (0.995-0.998 on Zen 4;
#: an earlier int8 graph on an AMX CPU fell to 0.66 for texts alone).
_MIN_TO_FP32 = 0.98
_PROBES = (
    "How do I reset my password?",
    "Aspirin lowers the risk of heart attacks in some patients.",
    "Quarterly revenue grew by eight percent year over year, driven by enterprise renewals "
    "in Europe and a new self-serve plan that doubled sign-ups among small teams.",
    "refund",
)
#: Inference requests in flight per core: a second one keeps the core busy while Python
#: pads the next batch and copies the last one out.
_STREAMS_PER_CORE = 2
#: Batch widths are rounded up to a multiple of this: OpenVINO JIT-compiles its fused
#: attention for every new input shape, and fewer shapes cost less than a little padding
#: (+3.5% here).
_PAD_MULTIPLE = 8


class OpenVinoEmbedder(_BaseEmbedder):
    """OpenVINO on the converted transformer, with pooling and normalisation in the graph."""

    def __init__(self, spec: _ModelSpec, runtime: str, batch_size: int, cache_dir: Path) -> None:
        super().__init__(spec, runtime, batch_size)
        self.cache_dir = cache_dir
        self.ir_path: Path | None = None
        self.chosen_by_auto = False  # set by load_embedder when runtime 'auto' picked this

    def _load(self) -> None:
        ov = _import_openvino()
        sha = weights_sha256(self.spec.weights)
        self._tokenizer, self._pad_id = _load_tokenizer(self.spec)
        self.ir_path = fp_ir = ensure_openvino_ir(self.spec, self.cache_dir, sha)
        core = ov.Core()
        if self.runtime == "openvino-int8":
            self._inputs = {i.get_any_name() for i in core.read_model(str(fp_ir)).inputs}
            self.ir_path = ensure_int8_ir(fp_ir, self._calibration_feeds)
        self._compile(ov, core)
        if self.runtime == "openvino-int8":
            alone, to_fp32 = self.int8_agreement(self._fp32_probes(core, fp_ir))
            if alone < _MIN_AGREEMENT or to_fp32 < _MIN_TO_FP32:
                # seen once with static int8 on an AMX CPU: texts alone drifted, batches not
                say = logger.info if self.chosen_by_auto else logger.warning
                say(
                    "int8 vectors on this CPU drift (cosine %.3f between a text alone and "
                    "batched, %.3f to fp32): running %s in bf16/fp32 instead; set "
                    "embedding.runtime 'openvino' to skip the int8 copy",
                    alone,
                    to_fp32,
                    self.spec.name,
                )
                self.ir_path = fp_ir
                self._compile(ov, core)

    def _compile(self, ov: Any, core: Any) -> None:
        """Compile ``ir_path`` twice: on throughput streams for batches, for latency for one
        text."""
        streams = _STREAMS_PER_CORE * _cpu_threads()
        config = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": str(streams),
            "CPU_DENORMALS_OPTIMIZATION": "YES",  # flush denormals to zero: +2% here
        }
        if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            config["INFERENCE_PRECISION_HINT"] = "bf16"
        try:
            model = _with_pooling(core.read_model(str(self.ir_path)), self.spec.pooling)
            compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # noqa: BLE001 - a corrupt cache file or an unsupported graph
            raise ModelError(
                f"OpenVINO cannot compile {self.ir_path}: {exc} - delete that file to convert "
                "the model again, or use embedding.runtime 'onnx-int8'"
            ) from exc
        self._inputs = {i.get_any_name() for i in compiled.inputs}
        self._compiled = compiled
        self._queue = ov.AsyncInferQueue(compiled, streams)
        self._queue.set_callback(_collect)
        # an async caller can wake (and the interpreter exit) while the last callback is
        # still returning: drain the queue before OpenVINO's threads are torn down
        weakref.finalize(self, self._queue.wait_all)
        # a single text (a query) runs on its own copy compiled for latency: one stream on
        # every core instead of one core of the throughput streams (p95 5.8 -> 3.4-5 ms on Zen 4)
        single = dict(config, PERFORMANCE_HINT="LATENCY")
        del single["NUM_STREAMS"]
        try:
            fast = core.compile_model(model, "CPU", single)
        except Exception as exc:  # noqa: BLE001 - as above
            raise ModelError(f"OpenVINO cannot compile {self.ir_path}: {exc}") from exc
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(_cpu_threads()):
            self._requests.put(fast.create_infer_request())

    def int8_agreement(self, fp32: np.ndarray) -> tuple[float, float]:
        """The lowest cosines, over the probe texts, between each text embedded alone and
        inside a full batch, and between either and its fp32 vector ``fp32``."""
        lengths, prepared = self._prepare(list(_PROBES) * 8)
        together = np.asarray(self._compiled(self._feed(prepared, np.arange(len(lengths))))[0])
        alone = np.vstack(
            [self._encode([], prepared, np.array([i]))[0] for i in range(len(_PROBES))]
        )
        together = together[: len(_PROBES)]
        to_fp32 = min((alone * fp32).sum(axis=1).min(), (together * fp32).sum(axis=1).min())
        return float((alone * together).sum(axis=1).min()), float(to_fp32)

    def _fp32_probes(self, core: Any, fp_ir: Path) -> np.ndarray:
        """The probe texts' vectors from the fp32 IR, computed once and kept beside it."""
        path = fp_ir.with_name(PROBES_NAME)
        with contextlib.suppress(OSError, KeyError, ValueError), np.load(path) as saved:
            if saved["texts"].tolist() == list(_PROBES):
                return np.asarray(saved["vectors"], dtype=np.float32)
        model = _with_pooling(core.read_model(str(fp_ir)), self.spec.pooling)
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        _, prepared = self._prepare(list(_PROBES))
        vectors = np.asarray(compiled(self._feed(prepared, np.arange(len(_PROBES))))[0])
        vectors = vectors.astype(np.float32)
        with _staging(fp_ir.parent) as tmp:
            np.savez(tmp / PROBES_NAME, texts=np.array(_PROBES), vectors=vectors)
            os.replace(tmp / PROBES_NAME, path)
        return vectors

    def _calibration_feeds(self) -> list[dict[str, np.ndarray]]:
        """Batches as ingest forms them, of chunks and questions from the bundled demo."""
        texts = calibration_texts()
        lengths, prepared = self._prepare(texts)
        batches = self._batches(lengths)
        step = max(1, len(batches) // _CALIBRATION_BATCHES)
        return [self._feed(prepared, idx) for idx in batches[::step][:_CALIBRATION_BATCHES]]

    def _prepare(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        lengths, encodings = self._token_lengths(texts)
        return lengths, (encodings, lengths)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One text on this thread (queries from many threads run side by side); more
        through the stream queue (:meth:`embed_async`)."""
        items = checked_texts(texts)
        if len(items) <= 1:
            return super().embed(items)
        return self._submit(items).result()

    def embed_async(self, texts: Sequence[str]) -> Future[np.ndarray]:
        """Start embedding ``texts``; the future's result is what :meth:`embed` returns.

        The feeder thread tokenizes the texts and queues their batches behind those of
        earlier calls, then returns to the next call: the streams never drain between
        calls (ingest embeds one call per commit batch; +5% here).
        """
        return self._submit(checked_texts(texts))

    def _submit(self, items: list[str]) -> Future[np.ndarray]:
        future: Future[np.ndarray] = Future()
        self._feeder.submit(self._enqueue, items, future)
        return future

    def _enqueue(self, items: list[str], future: Future[np.ndarray]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        pending: _Pending | None = None
        try:
            if not items:
                future.set_result(np.zeros((0, self.dim), dtype=np.float32))
                return
            self.warm_up()
            lengths, prepared = self._prepare(items)
            batches = self._batches(lengths)
            pending = _Pending(future, np.empty((len(items), self.dim), np.float32), len(batches))
            for idx in batches:  # blocks while every stream is busy
                self._queue.start_async(self._feed(prepared, idx), (idx, pending))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            if pending is None:
                future.set_exception(exc)
            else:
                pending.fail(exc)

    def _encode(self, texts: list[str], prepared: Any, idx: np.ndarray) -> np.ndarray:
        """One text, on the latency-compiled copy (more go through the stream queue)."""
        request = self._requests.get()  # an InferRequest serves one thread at a time
        try:
            return np.array(request.infer(self._feed(prepared, idx))[0], dtype=np.float32)
        finally:
            self._requests.put(request)

    def _feed(self, prepared: Any, idx: np.ndarray) -> dict[str, np.ndarray]:
        encodings, lengths = prepared
        longest = int(lengths[idx].max())
        rounded = -(-longest // _PAD_MULTIPLE) * _PAD_MULTIPLE
        width = min(rounded, max(longest, self.spec.max_seq_length))
        ids, mask = _pad_batch(encodings, lengths, idx, width, self._pad_id)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        return feed


def ensure_openvino_ir(spec: _ModelSpec, cache_root: Path, weights_sha: str) -> Path:
    """Return the cached OpenVINO IR of a model's transformer, converting it on first use."""
    folder = export_folder(cache_root, spec.name, weights_sha)
    xml = folder / IR_NAME
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    prepare_folder(folder)
    with _staging(folder) as tmp:
        prepare_log.info("converting %s to OpenVINO IR (once, ~10 s) -> %s", spec.name, xml)
        convert_transformer(spec.transformer_dir, tmp / IR_NAME)
        # the weights first, the graph last: a complete .xml means a complete pair
        os.replace(tmp / IR_NAME.replace(".xml", ".bin"), xml.with_suffix(".bin"))
        os.replace(tmp / IR_NAME, xml)
    return xml


def ensure_int8_ir(fp_xml: Path, feeds: Callable[[], list[dict[str, np.ndarray]]]) -> Path:
    """Return the int8 copy of the IR ``fp_xml``, quantising it once (NNCF) on ``feeds()``.

    Post-training static quantisation: weights per channel, activations with scales that
    NNCF measures on the calibration batches (SmoothQuant and bias correction included).
    """
    xml = fp_xml.with_name(INT8_IR_NAME)
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    ov = _import_openvino()  # first: it declines telemetry, which NNCF reports through too
    nncf = _import_nncf()
    prepare_log.info("quantising the OpenVINO model to int8 (once, ~20 s) -> %s", xml)
    data = feeds()
    try:
        model = ov.Core().read_model(str(fp_xml))
        # NNCF draws progress bars on stdout, where they would garble --json output
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            quantised = nncf.quantize(
                model,
                nncf.Dataset(data),
                preset=nncf.QuantizationPreset.MIXED,
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(data),
            )
    except Exception as exc:  # noqa: BLE001 - any NNCF failure is a model problem
        raise ModelError(
            f"cannot quantise {fp_xml} to int8: {exc} - use embedding.runtime 'openvino'"
        ) from exc
    with _staging(fp_xml.parent) as tmp:
        ov.save_model(quantised, str(tmp / INT8_IR_NAME), compress_to_fp16=False)
        os.replace(tmp / INT8_IR_NAME.replace(".xml", ".bin"), xml.with_suffix(".bin"))
        os.replace(tmp / INT8_IR_NAME, xml)
    return xml


def calibration_texts() -> list[str]:
    """Chunks of the bundled demo knowledge base and its questions: varied, ~1,000 chars."""
    from datawheel.clean.chunking import chunk_document
    from datawheel.ingest import index_text
    from datawheel.sources.base import SourceItem
    from datawheel.sources.discovery import discover

    demo = Path(__file__).resolve().parents[1] / "demo"
    texts = []
    for found in discover(demo / "kb", max_file_bytes=1 << 24):
        if isinstance(found, SourceItem):
            doc = found.load()
            for piece in chunk_document(doc, 1000, 150):
                texts.append(index_text(doc.title, " > ".join(piece.heading_path), piece.text))
    for line in (demo / "traffic.jsonl").read_text(encoding="utf-8").splitlines():
        texts.append(json.loads(line)["question"])
    return texts


def _import_nncf() -> Any:
    try:
        import nncf
    except ImportError as exc:
        raise ModelError(
            "embedding.runtime 'openvino-int8' needs NNCF to quantise the model once: "
            "pip install 'datawheel[openvino]' - or use embedding.runtime 'openvino'"
        ) from exc
    nncf.set_log_level(logging.ERROR)
    return nncf


def convert_transformer(transformer_dir: Path, out_xml: Path) -> None:
    """Convert the Hugging Face model in ``transformer_dir`` to IR and check it against torch.

    The IR keeps fp32 weights (bf16 is chosen when compiling, per CPU) and dynamic batch
    and sequence axes; it is compared with torch at a shape other than the traced one.
    """
    import torch
    from transformers import AutoModel

    ov = _import_openvino()
    with _quiet_transformers():
        model = _load_for_conversion(AutoModel, transformer_dir)
    wants_types = "token_type_ids" in inspect.signature(model.forward).parameters
    wrapper = _HiddenStates(model, wants_types)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if wants_types else [])
    example = _example_inputs(torch, [[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]], wants_types)
    inputs = [(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in names]
    # tracing runs the model: transformers would warn about config fields it does not use
    with warnings.catch_warnings(), torch.no_grad(), _quiet_transformers():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches
        example_input = dict(zip(names, example, strict=True))
        converted = ov.convert_model(wrapper, example_input=example_input, input=inputs)
    ov.save_model(converted, str(out_xml), compress_to_fp16=False)
    _validate(ov, wrapper, out_xml, names, wants_types)


def _load_for_conversion(auto_model: Any, transformer_dir: Path) -> Any:
    """The model with SDPA attention where it supports it (one fused op), else eager."""
    errors = []
    for attention in ("sdpa", "eager"):
        try:
            return auto_model.from_pretrained(
                str(transformer_dir), attn_implementation=attention
            ).eval()
        except Exception as exc:  # noqa: BLE001 - any load failure is a model problem
            errors.append(f"{attention}: {exc}")
    raise ModelError(
        f"cannot load the transformer in {transformer_dir} for OpenVINO: {'; '.join(errors)} - "
        "use embedding.runtime 'torch' or point embedding.model at a sentence-transformers folder"
    )


def _HiddenStates(model: Any, wants_types: bool) -> Any:  # noqa: N802 - builds a Module
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):  # type: ignore[no-untyped-def]
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if wants_types:
                kwargs["token_type_ids"] = token_type_ids
            return self.model(**kwargs).last_hidden_state

    return HiddenStates().eval()


def _validate(ov: Any, wrapper: Any, xml: Path, names: list[str], wants_types: bool) -> None:
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def run(inputs: tuple[Any, ...]) -> np.ndarray:
        return compiled({n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]

    error = export_error(wrapper, wants_types, run)
    if not error < _MAX_EXPORT_ERROR:
        raise ModelError(
            f"the OpenVINO conversion of {xml.name} differs from torch (max error {error:.3g}); "
            "use embedding.runtime 'onnx-int8' or 'torch' for this model"
        )
    logger.debug("OpenVINO conversion validated (max abs error %.2g)", error)


def _import_openvino() -> Any:
    try:
        import openvino as ov
    except ImportError as exc:
        raise ModelError(
            "embedding.runtime 'openvino' needs OpenVINO: pip install 'datawheel[openvino]' "
            "- or use embedding.runtime 'onnx-int8'"
        ) from exc
    _decline_telemetry()
    return ov


def _decline_telemetry() -> None:
    """Keep OpenVINO's tools from sending usage telemetry: nothing leaves this machine.

    ``openvino.convert_model`` reports each conversion to Google Analytics unless the user
    has run OpenVINO's ``opt_in_out --opt_out``; every consent check now answers "declined",
    which is what that opt-out file makes it answer (the file itself is the user's to write).
    """
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package: OpenVINO uses its own stub
        return

    def declined(self: Any, *args: Any, **kwargs: Any) -> Any:
        return ConsentCheckResult.DECLINED

    OptInChecker.check = declined  # type: ignore[method-assign]


class _Pending:
    """The rows of one ``embed_async`` call, filled in by the stream queue's callback."""

    def __init__(self, future: Future[np.ndarray], out: np.ndarray, batches: int) -> None:
        self.future = future
        self.out = out
        self.left = batches
        self.lock = threading.Lock()

    def done(self, idx: np.ndarray, rows: np.ndarray) -> None:
        self.out[idx] = rows
        with self.lock:
            self.left -= 1
            if self.left == 0 and not self.future.done():
                self.future.set_result(unit_rows(self.out))

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if not self.future.done():
                self.future.set_exception(exc)


def _collect(request: Any, userdata: tuple[np.ndarray, _Pending]) -> None:
    idx, pending = userdata
    try:
        pending.done(idx, request.get_output_tensor(0).data)
    except BaseException as exc:  # noqa: BLE001 - raised in OpenVINO's thread: hand it over
        pending.fail(exc)


def _with_pooling(model: Any, pooling: str) -> Any:
    """``model`` with sentence-transformers pooling and the L2 norm after its hidden states."""
    import openvino.opset13 as ops

    old = model.get_results()[0]
    hidden = old.input_value(0)
    mask = next(p for p in model.get_parameters() if p.get_friendly_name() == "attention_mask")
    weights = ops.convert(ops.unsqueeze(mask, np.int64(-1)), "f32")
    if pooling == "cls":
        pooled = ops.gather(hidden, ops.constant(np.int64(0)), ops.constant(np.int64(1)))
    elif pooling == "max":
        keep = ops.greater(weights, ops.constant(np.float32(0)))
        pooled = ops.reduce_max(ops.select(keep, hidden, ops.constant(np.float32(-1e9))), [1])
    else:
        summed = ops.reduce_sum(ops.multiply(hidden, weights), [1])
        count = ops.maximum(ops.reduce_sum(weights, [1]), ops.constant(np.float32(1e-9)))
        pooled = ops.divide(summed, count)
    normed = ops.normalize_l2(pooled, ops.constant(np.array([1], dtype=np.int64)), 1e-12, "max")
    model.remove_result(old)
    model.add_results([ops.result(normed)])
    return model
