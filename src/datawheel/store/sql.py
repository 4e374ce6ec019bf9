"""The relational store on SQLAlchemy 2 Core: SQLite (embedded) or PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Engine,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from datawheel.errors import WorkspaceError
from datawheel.store import postgres as pg
from datawheel.store import schema as t
from datawheel.store.base import ChunkView, DocumentRecord, DocumentWrite, document_fields

log = logging.getLogger(__name__)

_BATCH = 500  # ids per IN (...) clause
_MIGRATE_LOCK = 0x6D696772  # "migr": one schema migration at a time on a shared server
_INDEX_LOCK = 0x696E6478  # "indx": a batch's store and index writes, across workers
_GENERATION = "documents_generation"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class SQLStore:
    """Documents, chunks, embedding cache, runs and evaluations in one database.

    Example:
        >>> store = SQLStore("sqlite:///kb/datawheel.db")
        >>> store.counts()["documents"]
        0
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._held = threading.local()
        if pg.is_postgres(url):
            # No pool_pre_ping: it costs a round trip per checkout (several per search); a
            # connection the server dropped fails once and the pool replaces it.
            self.engine: Engine = create_engine(pg.engine_url(url), pool_size=10)
            self._open_postgres()
            return
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            with self.engine.begin() as conn:
                applied = t.migrate(conn)
        except OperationalError as exc:
            raise WorkspaceError(
                f"cannot open the store at {self.engine.url!r}: {exc.orig}. "
                "Check the path or DATAWHEEL_DATABASE_URL."
            ) from exc
        if applied:
            log.info("applied migrations %s", applied)
        self._mark_dead_runs()

    def _mark_dead_runs(self) -> None:
        """A run still "running" whose process is gone (kill -9, a crash, a reboot) is
        recorded as interrupted as soon as the workspace is opened again. SQLite only: its
        runs all come from this machine, so a pid that is not alive here is dead."""
        with self.engine.begin() as conn:
            running = conn.execute(
                select(t.runs.c.id, t.runs.c.pid).where(t.runs.c.status == "running")
            ).all()
            dead = [r.id for r in running if r.pid is not None and not _alive(r.pid)]
            if dead:
                conn.execute(
                    update(t.runs).where(t.runs.c.id.in_(dead)).values(status="interrupted")
                )

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def _open_postgres(self) -> None:
        try:
            with self.engine.begin() as conn:
                # Workers opening the same new database at once apply migrations one by one.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
                pg.ensure_pgvector(conn, self.engine.url)
                applied = t.migrate(conn)
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                raise pg.connect_error(exc, self.engine.url) from exc
            raise
        if applied:
            log.info("applied migrations %s to %s", applied, pg.safe_url(self.engine.url))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the workspace's write lock while a batch goes to the store and the indexes.

        On PostgreSQL every worker shares one session advisory lock, so a document's chunks
        and its vectors change together even with several writers (a killed writer's lock
        goes with its connection). SQLite needs none: it has one writer at a time.
        """
        depth = getattr(self._held, "depth", 0)
        if not self.is_postgres or depth:  # re-entrant within a thread
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _INDEX_LOCK})
            conn.commit()
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _INDEX_LOCK})
                conn.commit()

    def generation(self) -> int:
        """A number that changes whenever documents are written or deleted (PostgreSQL;
        0 on SQLite, where the process that writes is the one that searches)."""
        if not self.is_postgres:
            return 0
        return int(self.get_state(_GENERATION, "0") or 0)

    def _bump_generation(self, conn: Any) -> None:
        stmt = postgresql.insert(t.state).values(key=_GENERATION, value="1")
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["key"],
                set_={"value": func.cast(func.cast(t.state.c.value, BigInteger) + 1, Text)},
            )
        )

    # -- documents and chunks -------------------------------------------------------------

    def document_states(self, uri_prefix: str | None = None) -> dict[str, tuple[str, str]]:
        query = select(t.documents.c.uri, t.documents.c.id, t.documents.c.fingerprint)
        if uri_prefix:
            query = query.where(t.documents.c.uri.startswith(uri_prefix, autoescape=True))
        with self.engine.connect() as conn:
            return {uri: (doc_id, fp) for uri, doc_id, fp in conn.execute(query)}

    def write_documents(
        self, writes: list[DocumentWrite], vectors: Mapping[str, np.ndarray], model_id: str
    ) -> None:
        if not writes:
            return
        doc_ids = [w.document.id for w in writes]
        now = datetime.now(UTC)
        docs = [
            {
                "id": d.id,
                "uri": d.uri,
                "fingerprint": d.fingerprint,
                "title": d.title,
                "kind": d.kind,
                "author": d.author,
                "date": d.date,
                "topic": d.topic,
                "groups": d.groups,
                "meta": d.meta,
                "chunk_count": len(w.chunks),
                "ingested_at": now,
            }
            for w in writes
            for d in [w.document]
        ]
        rows = [c.__dict__ for w in writes for c in w.chunks]
        with self.engine.begin() as conn:
            if self.is_postgres:
                pg.lock_document_writes(conn)
                self._bump_generation(conn)
            for part in _batches(doc_ids):
                conn.execute(delete(t.chunks).where(t.chunks.c.doc_id.in_(part)))
                conn.execute(delete(t.documents).where(t.documents.c.id.in_(part)))
            if self.is_postgres:  # COPY: several times faster than INSERT for big batches
                _copy(conn, t.documents, docs)
                _copy(conn, t.chunks, rows)
            else:
                conn.execute(insert(t.documents), docs)
                if rows:
                    conn.execute(insert(t.chunks), rows)
            if vectors:
                self._insert_ignore(
                    conn,
                    t.embeddings,
                    [
                        {"text_hash": h, "model_id": model_id, "vector": _to_blob(v)}
                        for h, v in vectors.items()
                    ],
                )

    def delete_documents(self, doc_ids: Iterable[str]) -> int:
        ids = list(doc_ids)
        removed = 0
        with self.engine.begin() as conn:
            if self.is_postgres:
                pg.lock_document_writes(conn)
                self._bump_generation(conn)
            for part in _batches(ids):
                conn.execute(delete(t.chunks).where(t.chunks.c.doc_id.in_(part)))
                removed += conn.execute(
                    delete(t.documents).where(t.documents.c.id.in_(part))
                ).rowcount
        return removed

    def chunks(self, ids: Iterable[str] | None = None) -> Iterator[ChunkView]:
        base = select(
            t.chunks,
            t.documents.c.title,
            t.documents.c.uri,
            t.documents.c.kind,
            t.documents.c.author,
            t.documents.c.date,
            t.documents.c.topic,
            t.documents.c.groups,
            t.documents.c.meta,
        ).join(t.documents, t.documents.c.id == t.chunks.c.doc_id)
        with self.engine.connect() as conn:
            if ids is None:
                result = conn.execution_options(yield_per=2000).execute(
                    base.order_by(t.chunks.c.doc_id, t.chunks.c.ord)
                )
                for row in result:
                    yield _view(row._mapping)
                return
            for part in _batches(list(ids)):
                for row in conn.execute(base.where(t.chunks.c.id.in_(part))):
                    yield _view(row._mapping)

    def chunk_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(t.chunks.c.id)).scalars())

    def chunk_text_hashes(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.chunks.c.id, t.chunks.c.text_hash))
            return {cid: th for cid, th in rows}

    def chunk_ids_of(self, doc_ids: Iterable[str]) -> list[str]:
        out: list[str] = []
        with self.engine.connect() as conn:
            for part in _batches(list(doc_ids)):
                query = select(t.chunks.c.id).where(t.chunks.c.doc_id.in_(part))
                out.extend(conn.execute(query).scalars())
        return out

    def cached_vectors(self, text_hashes: Iterable[str], model_id: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self.engine.connect() as conn:
            for part in _batches(list(set(text_hashes))):
                query = select(t.embeddings.c.text_hash, t.embeddings.c.vector).where(
                    t.embeddings.c.model_id == model_id, t.embeddings.c.text_hash.in_(part)
                )
                for text_hash, blob in conn.execute(query):
                    out[text_hash] = np.frombuffer(blob, dtype=np.float32)
        return out

    def cache_vectors(self, vectors: Mapping[str, np.ndarray], model_id: str) -> None:
        """Keep vectors in the embedding cache ahead of their documents (a large document
        embedded in steps); rows already there are left as they are."""
        if not vectors:
            return
        rows = [
            {"text_hash": h, "model_id": model_id, "vector": _to_blob(v)}
            for h, v in vectors.items()
        ]
        with self.engine.begin() as conn:
            self._insert_ignore(conn, t.embeddings, rows)

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in [
                    ("documents", t.documents),
                    ("chunks", t.chunks),
                    ("failures", t.ingest_failures),
                    ("embeddings_cached", t.embeddings),
                    ("interactions", t.interactions),
                    ("votes", t.feedback),
                ]
            }

    def doc_groups(self, doc_ids: Iterable[str]) -> dict[str, list[str]]:
        """The groups allowed to read each document (a deleted document is absent)."""
        ids = list(dict.fromkeys(doc_ids))
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = select(t.documents.c.id, t.documents.c.groups).where(
                    t.documents.c.id.in_(ids[start : start + 500])
                )
                out.update({r.id: list(r.groups or []) for r in conn.execute(query)})
        return out

    def documents(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        query = select(t.documents).order_by(t.documents.c.uri).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- state ----------------------------------------------------------------------------

    def get_state(self, key: str, default: str | None = None) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(t.state.c.value).where(t.state.c.key == key)).scalar()
        return default if value is None else value

    def set_state(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.state).where(t.state.c.key == key))
            conn.execute(insert(t.state).values(key=key, value=value))

    # -- table versions -------------------------------------------------------------------

    def record_table_version(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.table_versions).where(
                    t.table_versions.c.source == row["source"], t.table_versions.c.run == row["run"]
                )
            )
            conn.execute(insert(t.table_versions).values(**row, created_at=datetime.now(UTC)))

    def table_versions(self, source: str | None = None) -> list[dict[str, Any]]:
        query = select(t.table_versions).order_by(t.table_versions.c.source, t.table_versions.c.run)
        if source is not None:
            query = query.where(t.table_versions.c.source == source)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- runs, failures, evaluations ------------------------------------------------------

    def start_run(self, kind: str, params: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            # A run still "running" from a dead process was interrupted (crash, kill -9).
            conn.execute(
                update(t.runs)
                .where(t.runs.c.status == "running", t.runs.c.kind == kind)
                .where(t.runs.c.pid != os.getpid())
                .values(status="interrupted")
            )
            result = conn.execute(
                insert(t.runs).values(
                    kind=kind, status="running", params=params, counts={}, pid=os.getpid()
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            started = conn.execute(
                select(t.runs.c.started_at).where(t.runs.c.id == run_id)
            ).scalar_one()
            now = datetime.now(UTC)
            if started is not None and started.tzinfo is None:
                started = started.replace(tzinfo=UTC)
            duration = (now - started).total_seconds() if started else None
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(status=status, counts=counts, finished_at=now, duration_s=duration)
            )

    def record_failures(self, run_id: int, failures: list[tuple[str, str, str | None]]) -> None:
        if not failures:
            return
        with self.engine.begin() as conn:
            uris = [f[0] for f in failures]
            for part in _batches(uris):
                conn.execute(delete(t.ingest_failures).where(t.ingest_failures.c.uri.in_(part)))
            conn.execute(
                insert(t.ingest_failures),
                [
                    {"uri": u, "reason": r, "fingerprint": fp, "run_id": run_id}
                    for u, r, fp in {f[0]: f for f in failures}.values()
                ],
            )

    def clear_failures(self, uris: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            for part in _batches(list(uris)):
                conn.execute(delete(t.ingest_failures).where(t.ingest_failures.c.uri.in_(part)))

    def failures(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.ingest_failures).order_by(t.ingest_failures.c.uri))
            return [dict(r._mapping) for r in rows]

    def record_evaluation(self, run_id: int | None, row: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(insert(t.evaluations).values(run_id=run_id, **row))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def evaluations(self, limit: int = 20) -> list[dict[str, Any]]:
        query = select(t.evaluations).order_by(t.evaluations.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def ingest_roots(self) -> list[str]:
        """Every folder or file an ingest run was given (absolute paths)."""
        query = select(t.runs.c.params).where(t.runs.c.kind == "ingest")
        with self.engine.connect() as conn:
            found = {
                p for (params,) in conn.execute(query) for p in (params or {}).get("paths", [])
            }
        return sorted(found)

    def list_runs(self, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        query = select(t.runs).order_by(t.runs.c.id.desc()).limit(limit)
        if kind:
            query = query.where(t.runs.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- helpers --------------------------------------------------------------------------

    def _insert_ignore(self, conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
        dialect = self.engine.dialect.name
        stmt: Any
        if dialect == "sqlite":
            stmt = sqlite.insert(table).on_conflict_do_nothing()
        elif dialect == "postgresql":
            if len(rows) > 1000:  # COPY into a scratch table, then one INSERT ... SELECT
                _copy_ignore(conn, table, rows)
                return
            stmt = postgresql.insert(table).on_conflict_do_nothing()
        else:  # pragma: no cover - other databases are not supported yet
            raise SQLAlchemyError(f"unsupported database {dialect}")
        conn.execute(stmt, rows)


def _copy(conn: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = [c.name for c in table.columns if c.name in rows[0]]
    jsons = {c.name for c in table.columns if isinstance(c.type, JSON)}
    pg.copy_rows(
        conn,
        table.name,
        names,
        ([json.dumps(r[n]) if n in jsons else r[n] for n in names] for r in rows),
    )


def _copy_ignore(conn: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    scratch = f"_copy_{table.name}"
    conn.execute(
        text(f'CREATE TEMP TABLE IF NOT EXISTS "{scratch}" (LIKE "{table.name}") ON COMMIT DROP')
    )
    conn.execute(text(f'TRUNCATE "{scratch}"'))
    names = list(rows[0])
    pg.copy_rows(conn, scratch, names, ([r[n] for n in names] for r in rows))
    cols = ", ".join(f'"{n}"' for n in names)
    conn.execute(
        text(
            f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{scratch}" '
            "ON CONFLICT DO NOTHING"
        )
    )


def _view(m: Any) -> ChunkView:
    doc = DocumentRecord(
        id=m["doc_id"],
        uri=m["uri"],
        fingerprint="",
        title=m["title"],
        kind=m["kind"],
        groups=list(m["groups"] or []),
        author=m["author"],
        date=m["date"],
        topic=m["topic"],
        meta=m["meta"] or {},
    )
    return ChunkView(
        id=m["id"],
        doc_id=m["doc_id"],
        ord=m["ord"],
        heading=m["heading"],
        text=m["text"],
        text_hash=m["text_hash"],
        title=m["title"],
        uri=m["uri"],
        groups=list(m["groups"] or []),
        fields=document_fields(doc),
    )


def _to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _batches(items: list[str], size: int = _BATCH) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
