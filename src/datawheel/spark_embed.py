"""Embed a large corpus as a Spark job: the texts spread over the executors, batches per
partition, the vectors written through the normal ingest path (PostgreSQL + pgvector when the
workspace's store is PostgreSQL).

Two levels:

- :func:`embed_frame` adds a vector column to any Spark DataFrame of texts. Each partition is
  embedded in batches by ``mapInArrow``; the model is loaded by path (offline, no model hub),
  once per Python worker process, which Spark reuses across tasks.
- :func:`embed_with_spark` ingests files, folders and exports into a workspace exactly as
  ``Workspace.ingest`` does (parsing, chunking, ids, the embedding cache, the store, the
  indexes), except that every batch of new chunk texts is embedded by :func:`embed_frame`.

The model folder (``embedding.model``, or the built-in model's package) and datawheel itself
must be installed at the same path on every executor. The driver exports an ONNX runtime's
model into datawheel's cache before the first job; on a cluster, each executor exports its own
copy on first use (point ``DATAWHEEL_CACHE`` at shared storage to do it once).

Example::

    with Workspace.open("kb") as ws:   # DATAWHEEL_DATABASE_URL=postgresql://... for pgvector
        report = embed_with_spark(ws, ["docs/"], master="spark://head:7077")
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.tables.spark import spark_session

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from datawheel.ingest import IngestReport, Progress
    from datawheel.models.embedder import Embedder
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)

#: documents per ingest batch, so that each Spark job has enough texts to spread
BATCH_DOCS = 2000


@lru_cache(maxsize=4)
def _worker_embedder(model: str, runtime: str, batch_size: int, cache_dir: str) -> Embedder:
    """The embedder of a Python worker process, loaded on its first partition."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # load by path; never ask a model hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from datawheel.models.embedder import load_embedder

    return load_embedder(model, runtime, batch_size, cache_dir=Path(cache_dir))


def embed_frame(
    frame: DataFrame,
    *,
    model: str,
    runtime: str = "onnx-int8",
    batch_size: int = 32,
    cache_dir: str | None = None,
    text: str = "text",
    vector: str = "vector",
) -> DataFrame:
    """``frame`` with ``vector`` (array<float>, unit length): the embedding of ``text``.

    Args:
        model: a sentence-transformers folder readable by every executor.
        runtime / batch_size: as ``embedding.runtime`` and ``embedding.batch_size``.
        cache_dir: where ONNX runtimes keep their exported model (default: datawheel's cache).
    """
    from pyspark.sql import types as T

    from datawheel.models.embedder import default_cache_dir

    cache = str(cache_dir or default_cache_dir())
    schema = T.StructType(
        [*frame.schema.fields, T.StructField(vector, T.ArrayType(T.FloatType()), False)]
    )

    def embed_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        embedder = _worker_embedder(model, runtime, batch_size, cache)
        for batch in batches:
            texts = [t or "" for t in batch.column(text).to_pylist()]
            vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
            flat = pa.array(vectors.reshape(-1), pa.float32())
            offsets = pa.array(np.arange(0, vectors.size + 1, vectors.shape[1], dtype=np.int32))
            lists = pa.ListArray.from_arrays(offsets, flat)
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, lists], names=[*batch.schema.names, vector]
            )

    return frame.mapInArrow(embed_partition, schema)


class SparkEmbedder:
    """An :class:`~datawheel.models.embedder.Embedder` whose ``embed`` is a Spark job.

    It stands in for the workspace's embedder (same ``model_id`` and ``dim``, so cached
    vectors and indexes stay valid): each call spreads the texts over ``partitions``
    (default: the session's parallelism) and collects the vectors in input order.
    """

    def __init__(self, inner: Any, spark: SparkSession, partitions: int | None = None) -> None:
        self.inner = inner
        self.spark = spark
        self.partitions = partitions
        self.dim: int = inner.dim
        self._ready = False
        self._feeder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datawheel-spark")

    def _model(self) -> str:
        """The model as the executors load it: the built-in one by name (so its name, and the
        cached ONNX export, are the driver's), any other by its folder."""
        from datawheel.models.embedder import BUILTIN_MODEL, BUILTIN_NAME, resolve_model_path

        path = Path(self.inner.model_path)
        if self.inner.spec.name == BUILTIN_NAME and path == resolve_model_path(BUILTIN_MODEL):
            return BUILTIN_MODEL
        return str(path)

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)

    def embed_async(self, texts: Sequence[str]) -> Future[np.ndarray]:
        """One Spark job per call, in order, on a thread of its own."""
        return self._feeder.submit(self.embed, list(texts))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self._ready:  # an ONNX runtime exports the model once, here, not in each worker
            self.inner.warm_up()
            self._ready = True
        parts = self.partitions or self.spark.sparkContext.defaultParallelism
        frame = self.spark.createDataFrame(
            [(i, t) for i, t in enumerate(texts)], "i long, text string"
        ).repartition(max(1, min(parts, len(texts))))
        embedded = embed_frame(
            frame,
            model=self._model(),
            runtime=self.inner.runtime,
            batch_size=self.inner.batch_size,
        )
        table = embedded.select("i", "vector").toArrow()
        order = np.argsort(table.column("i").to_numpy())
        flat = table.column("vector").combine_chunks().flatten().to_numpy()
        return flat.reshape(len(texts), self.dim)[order]


def embed_with_spark(
    ws: Workspace,
    paths: Sequence[str | Path],
    *,
    spark: SparkSession | None = None,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    partitions: int | None = None,
    batch_docs: int = BATCH_DOCS,
    sync: bool = False,
    groups: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """``Workspace.ingest`` with the embedding done by Spark; returns its report.

    ``spark`` is a session to use, else the running one, else a new one on ``master``
    (default ``local[2]``) with ``conf``. Documents are committed ``batch_docs`` at a time,
    each batch's new texts one Spark job of ``partitions`` tasks.
    """
    with spark_session(master, conf, spark) as session:
        embedder = SparkEmbedder(ws.embedder, session, partitions)
        indexes = ws.indexes  # reconciled with the store by the workspace's own embedder
        with _batch_docs(ws, batch_docs), ws.serving(embedder, indexes):
            return ws.ingest(paths, sync=sync, groups=groups, progress=progress)


@contextmanager
def _batch_docs(ws: Workspace, n: int) -> Iterator[None]:
    """Commit ``n`` documents per batch inside the block, however many chunks they have
    (Spark jobs are worth their start)."""
    cfg = ws.config.ingest
    saved = cfg.batch_docs, cfg.batch_chunks
    cfg.batch_docs, cfg.batch_chunks = n, 10**9
    try:
        yield
    finally:
        cfg.batch_docs, cfg.batch_chunks = saved
