"""The ingest job: discover → parse what changed → chunk → embed → store → index.

Safe to kill at any moment: each batch of documents (with all their chunks) is one
transaction, the indexes are files replaced atomically and reconciled with the store on
open, so a re-run finishes the job without duplicates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.clean.chunking import chunk_document
from datawheel.errors import DatawheelError, SourceError
from datawheel.sources import SourceDocument, SourceFailure, SourceItem, SourceSkipped, discover
from datawheel.store.base import ChunkRecord, DocumentRecord, DocumentWrite

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class IngestReport:
    """What an ingest run did; ``failed`` lists (uri, reason)."""

    seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    gone: int = 0  # documents whose files are gone, kept because --sync was not given
    chunks_added: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # file type -> files not read
    run_id: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"uri": u, "reason": r} for u, r in self.failed]
        return data

    @property
    def counts(self) -> dict[str, Any]:
        data = self.to_dict()
        data["failed"] = len(self.failed)
        return data


#: Bump when parsing or chunking changes what a document becomes: every document is redone.
PIPELINE_VERSION = 1


def pipeline_tag(ws: Workspace, groups: Sequence[str] | None) -> str:
    """What besides the raw bytes decides a document's chunks; part of its fingerprint, so
    changing chunk settings or ``--groups`` and re-ingesting redoes the affected documents."""
    settings = [
        PIPELINE_VERSION,
        ws.config.chunking.model_dump(),
        sorted(groups or []),
        sorted(ws.config.ingest.default_groups),
    ]
    return hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:8]


def doc_id_for(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:32]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def index_text(title: str, heading: str, body: str) -> str:
    """What gets embedded and keyword-indexed: the title and heading path give context."""
    head = " > ".join(p for p in (title, heading) if p)
    return f"{head}\n{body}" if head else body


def _document_write(
    doc: SourceDocument, item: SourceItem, ws: Workspace, groups: Sequence[str] | None
) -> DocumentWrite:
    meta = dict(doc.metadata)
    doc_groups = groups or meta.pop("groups", None) or ws.config.ingest.default_groups
    if isinstance(doc_groups, str):
        doc_groups = [g.strip() for g in doc_groups.split(",") if g.strip()]
    meta.pop("groups", None)
    doc_id = doc_id_for(item.uri)
    record = DocumentRecord(
        id=doc_id,
        uri=item.uri,
        fingerprint=f"{item.fingerprint}-{pipeline_tag(ws, groups)}",
        title=doc.title,
        kind=str(meta.pop("kind", "")),
        groups=sorted({str(g) for g in doc_groups}),
        author=_opt(meta.pop("author", None)),
        date=_opt(meta.pop("date", None)),
        topic=_opt(meta.pop("topic", None)),
        meta=_jsonable(meta),
    )
    cfg = ws.config.chunking
    chunks = []
    for piece in chunk_document(doc, cfg.target_chars, cfg.overlap_chars):
        heading = " > ".join(piece.heading_path)
        th = text_hash(index_text(doc.title, heading, piece.text))
        cid = hashlib.sha256(f"{doc_id}\0{piece.ord}\0{th}".encode()).hexdigest()[:32]
        chunks.append(ChunkRecord(cid, doc_id, piece.ord, heading, piece.text, th))
    return DocumentWrite(record, chunks)


def run_ingest(
    ws: Workspace,
    paths: Sequence[Path],
    *,
    sync: bool = False,
    groups: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    roots = [Path(p).expanduser().resolve() for p in paths]
    run_id = ws.store.start_run("ingest", {"paths": [str(r) for r in roots], "sync": sync})
    report.run_id = run_id
    try:
        _ingest(ws, roots, sync, groups, progress, report)
    except BaseException:
        report.seconds = time.perf_counter() - started
        ws.store.finish_run(run_id, "failed", report.counts)
        raise
    report.seconds = time.perf_counter() - started
    ws.store.finish_run(run_id, "finished", report.counts)
    return report


def _ingest(
    ws: Workspace,
    roots: list[Path],
    sync: bool,
    groups: Sequence[str] | None,
    progress: Progress | None,
    report: IngestReport,
) -> None:
    store = ws.store
    max_bytes = int(ws.config.ingest.max_file_mb * 1024 * 1024)
    states = store.document_states()
    tag = pipeline_tag(ws, groups)
    pending: list[SourceItem] = []
    seen: set[str] = set()
    failures: list[tuple[str, str, str | None]] = []
    for root in roots:
        if not root.exists():
            failures.append((str(root), "path does not exist; check the spelling", None))
            continue
        for found in discover(root, max_file_bytes=max_bytes):
            if isinstance(found, SourceSkipped):
                report.skipped[found.suffix] = report.skipped.get(found.suffix, 0) + 1
                continue
            if isinstance(found, SourceFailure):
                failures.append((found.uri, found.reason, None))
                seen.add(found.uri)
                continue
            if found.uri in seen:
                continue
            seen.add(found.uri)
            state = states.get(found.uri)
            if state is not None and state[1] == f"{found.fingerprint}-{tag}":
                report.unchanged += 1
            else:
                pending.append(found)
        if progress:
            progress("discover", len(seen), 0)
    report.seen = len(seen)
    total = len(pending)
    max_docs, max_chunks = ws.config.ingest.batch_docs, ws.config.ingest.batch_chunks
    writes: list[DocumentWrite] = []
    chunks = 0
    in_flight: _Batch | None = None  # embedding while the next batch is parsed
    if pending:
        ws.indexes  # noqa: B018 - reconcile (and embed what is missing) before the pipeline
    try:
        for number, item in enumerate(pending, start=1):
            try:
                write = _document_write(item.load(), item, ws, groups)
                writes.append(write)
                chunks += len(write.chunks)
            except SourceError as exc:
                failures.append((item.uri, str(exc), item.fingerprint))
            except DatawheelError:  # a config or model problem stops the job
                raise
            except Exception as exc:  # a parser bug must not stop the whole job
                log.exception("unexpected error reading %s", item.uri)
                failures.append((item.uri, f"unexpected error: {exc!r}", item.fingerprint))
            if len(writes) >= max_docs or chunks >= max_chunks or number == total:
                started = _start_batch(ws, writes, number)
                if in_flight is not None:
                    _commit(ws, in_flight, states, report, progress, total)
                in_flight, writes, chunks = started, [], 0
        if in_flight is not None:
            _commit(ws, in_flight, states, report, progress, total)
    except BaseException:
        if in_flight is not None:
            in_flight.cancel()
        raise
    gone = [
        doc_id
        for uri, (doc_id, _) in states.items()
        if uri not in seen and any(_under(uri, root) for root in roots)
    ]
    if not sync:
        report.gone = len(gone)
    elif gone:
        with store.writing():
            old = store.chunk_ids_of(gone)
            store.delete_documents(gone)
            ws.indexes.delete(old)
        report.removed = len(gone)
    ws.indexes.save()
    report.failed = [(u, r) for u, r, _ in failures]
    store.record_failures(report.run_id or 0, failures)


#: From this many chunks to embed, a batch is embedded in steps of ``_STEP`` chunks whose
#: vectors are kept in the embedding cache as each step finishes, with progress: a large
#: document stopped half way (Ctrl-C, kill -9) resumes where it stopped on the next run.
_LARGE = 512
_STEP = 256
#: From this many chunks a warning says how long the embedding may take.
_WARN_CHUNKS = 10_000


@dataclass
class _Batch:
    """A batch of parsed documents whose new chunk texts are being embedded."""

    writes: list[DocumentWrite]
    texts: dict[str, str]  # text hash -> what is embedded and keyword-indexed
    cached: dict[str, np.ndarray]
    parts: list[tuple[list[str], Future[np.ndarray]]]  # text hashes and their vectors
    done: int  # documents handled once this batch is committed (for progress)

    @property
    def in_steps(self) -> bool:
        return len(self.parts) > 1

    def cancel(self) -> None:
        for _, future in self.parts:
            future.cancel()


def _start_batch(ws: Workspace, writes: list[DocumentWrite], done: int) -> _Batch:
    """Look up cached vectors and start embedding the rest (``embed_async``)."""
    embedder = ws.embedder
    texts = {
        c.text_hash: index_text(w.document.title, c.heading, c.text)
        for w in writes
        for c in w.chunks
    }
    cached = ws.store.cached_vectors(texts, embedder.model_id) if texts else {}
    missing = [h for h in texts if h not in cached]
    if len(missing) >= _WARN_CHUNKS:
        largest = max(writes, key=lambda w: len(w.chunks))
        log.warning(
            "%s: %s chunks to embed, roughly %d-%d minutes on a 2-core CPU (100-25 chunks/s); "
            "they are kept every %d chunks, so a stopped ingest resumes where it stopped",
            largest.document.uri,
            f"{len(missing):,}",
            max(1, len(missing) // 6000),
            max(1, len(missing) // 1500),
            _STEP,
        )
    step = _STEP if len(missing) >= _LARGE else max(1, len(missing))
    parts = [
        (part, embedder.embed_async([texts[h] for h in part]))
        for part in (missing[i : i + step] for i in range(0, len(missing), step))
    ]
    return _Batch(writes, texts, cached, parts, done)


def _commit(
    ws: Workspace,
    batch: _Batch,
    states: dict[str, tuple[str, str]],
    report: IngestReport,
    progress: Progress | None,
    total: int,
) -> None:
    """Wait for the batch's vectors, then write documents, chunks and indexes in one go."""
    writes = batch.writes
    if writes:
        embedder = ws.embedder
        fresh: dict[str, np.ndarray] = {}
        total_new = sum(len(hashes) for hashes, _ in batch.parts)
        for hashes, future in batch.parts:
            part = dict(zip(hashes, future.result(), strict=True))
            fresh.update(part)
            if batch.in_steps:  # kept now: a re-run after a stop finds these in the cache
                ws.store.cache_vectors(part, embedder.model_id)
                if progress:
                    progress("embed", len(fresh), total_new)
        vectors_by_hash = {**batch.cached, **fresh}
        with ws.store.writing():  # PostgreSQL: other workers may write the same documents
            replaced = [w.document.id for w in writes if w.document.uri in states]
            if ws.store.is_postgres:
                replaced = [w.document.id for w in writes]
            old_chunks = ws.store.chunk_ids_of(replaced) if replaced else []
            ws.store.write_documents(writes, fresh, embedder.model_id)
            ws.store.clear_failures(w.document.uri for w in writes)
            indexes = ws.indexes
            indexes.delete(old_chunks)
            indexes.add(writes, batch.texts, vectors_by_hash)
            if ws.store.is_postgres:  # our own write: nothing to reconcile for it later
                indexes.generation = ws.store.generation()
        for w in writes:
            if w.document.uri in states:
                report.updated += 1
            else:
                report.added += 1
            report.chunks_added += len(w.chunks)
    if progress:
        progress("ingest", batch.done, total)


def _under(uri: str, root: Path) -> bool:
    text = str(root)
    return (
        uri == text
        or uri.startswith(text.rstrip("/") + "/")
        or uri.startswith(text + "!")
        or uri.startswith(text + "#")
    )


def _opt(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, str | int | float | bool) or value is None:
            out[str(key)] = value
        elif isinstance(value, Iterable) and not isinstance(value, bytes | dict):
            out[str(key)] = [str(v) for v in value]
        else:
            out[str(key)] = str(value)
    return out
