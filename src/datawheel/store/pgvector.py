"""The PostgreSQL vector index: pgvector with an HNSW index, in the store's own database.

One table per embedding model (``vectors_<tag>``, like the embedded ``vectors-<tag>.npz``),
holding each chunk's unit vector with its groups and filterable fields, so filters run in
SQL *inside* retrieval. Below ``ann_min`` rows there is no HNSW index and search is exact;
``save()`` builds the index once the table reaches ``ann_min`` (bulk loads build it once,
which is much faster than growing it row by row) and PostgreSQL keeps it up to date after.

Vectors are unit length, so inner product (``<#>``, negated by pgvector) is the cosine.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from datawheel.errors import MissingExtraError
from datawheel.store.catalog import Filter
from datawheel.store.postgres import copy_rows

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


def _pgvector() -> Any:
    try:
        import pgvector
    except ImportError as exc:
        raise MissingExtraError("the PostgreSQL vector index (pgvector)", "postgres") from exc
    return pgvector


class PgVectorIndex:
    """Nearest-neighbour search in PostgreSQL; the same interface as ``NumpyVectorIndex``.

    Example:
        >>> index = PgVectorIndex(store.engine, dim=384, table="vectors_1a2b3c4d")
        >>> index.upsert(["c1"], np.ones((1, 384), np.float32) / 19.6, [{}], [["everyone"]])
        >>> index.search(np.ones(384, np.float32) / 19.6, k=1)[0][0]
        'c1'
    """

    def __init__(
        self,
        engine: Engine,
        dim: int,
        table: str = "vectors",
        ann_min: int = 50_000,
        ef_search: int = 128,
        m: int = 16,
        ef_construction: int = 64,
    ) -> None:
        if not _NAME.match(table):
            raise ValueError(f"bad vector table name {table!r}")
        _pgvector()
        self.engine = engine
        self.dim = dim
        self.table = table
        self.ann_min = ann_min
        self.ef_search = ef_search
        self.m, self.ef_construction = m, ef_construction
        with engine.begin() as conn:
            # CREATE TABLE IF NOT EXISTS races in PostgreSQL (two sessions can both miss the
            # table and one fails on pg_type), so processes opening the index queue here.
            self._lock(conn)
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {table} ("
                    "id text PRIMARY KEY, "
                    f"embedding vector({dim}) NOT NULL, "
                    "groups text[] NOT NULL, "
                    "fields jsonb NOT NULL)"
                )
            )

    # -- writes ---------------------------------------------------------------------------

    def upsert(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        fields: Sequence[Mapping[str, str]],
        groups: Sequence[Iterable[str]],
    ) -> None:
        if len(ids) == 0:
            return
        pgvector = _pgvector()
        from psycopg.types.json import Jsonb

        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        latest = {chunk_id: i for i, chunk_id in enumerate(ids)}  # the last write of an id wins
        scratch = f"_stage_{self.table}"
        with self.engine.begin() as conn:
            self._lock(conn)
            # New ids only (a bulk load): straight into the table, no scratch copy.
            fresh = not conn.execute(
                text(f"SELECT 1 FROM {self.table} WHERE id = ANY(:ids) LIMIT 1"),
                {"ids": list(latest)},
            ).first()
            if not fresh:
                conn.execute(
                    text(
                        f"CREATE TEMP TABLE IF NOT EXISTS {scratch} "
                        f"(LIKE {self.table} INCLUDING DEFAULTS) ON COMMIT DROP"
                    )
                )
            # pgvector's binary form goes over as raw bytes; the server reads it with
            # vector_recv, so no per-connection type registration is needed.
            copy_rows(
                conn,
                self.table if fresh else scratch,
                ["id", "embedding", "groups", "fields"],
                (
                    (
                        chunk_id,
                        pgvector.Vector(matrix[i]).to_binary(),
                        list(groups[i]),
                        Jsonb(dict(fields[i])),
                    )
                    for chunk_id, i in latest.items()
                ),
                binary=["text", "bytea", "text[]", "jsonb"],
            )
            if fresh:
                return
            conn.execute(
                text(
                    f"INSERT INTO {self.table} SELECT * FROM {scratch} ORDER BY id "
                    "ON CONFLICT (id) DO UPDATE "
                    "SET embedding = EXCLUDED.embedding, groups = EXCLUDED.groups, "
                    "fields = EXCLUDED.fields"
                )
            )

    def delete(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self.engine.begin() as conn:
            self._lock(conn)
            result = conn.execute(
                text(f"DELETE FROM {self.table} WHERE id = ANY(:ids)"), {"ids": ids}
            )
        return int(result.rowcount)

    def _lock(self, conn: Connection) -> None:
        # Writers of one table take turns: two upserts (or an upsert and a delete) of
        # overlapping ids in different orders would otherwise deadlock.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": self.table})

    def save(self) -> None:
        """Build the HNSW index once the table is big enough for it to pay off."""
        if self._has_hnsw() or len(self) < self.ann_min:
            return
        log.info("building the pgvector HNSW index on %s (%d rows)", self.table, len(self))
        with self.engine.begin() as conn:
            self._lock(conn)  # another process may be building the same index right now
            # A build inside maintenance_work_mem is several times faster than one that spills.
            conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
            conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {self.table}_hnsw ON {self.table} "
                    f"USING hnsw (embedding vector_ip_ops) "
                    f"WITH (m = {int(self.m)}, ef_construction = {int(self.ef_construction)})"
                )
            )
            conn.execute(text(f"ANALYZE {self.table}"))

    # -- reads ----------------------------------------------------------------------------

    def search(
        self, query: np.ndarray, k: int, flt: Filter | None = None
    ) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        q = _literal(query, self.dim)
        where, params = _where(flt)
        sql = text(
            f"SELECT id, -(embedding <#> CAST(:q AS vector)) AS score FROM {self.table} "
            f"{where} ORDER BY embedding <#> CAST(:q AS vector) LIMIT :k"
        )
        params.update(q=q, k=k)
        with self.engine.begin() as conn:
            # One round trip for both settings; with a filter, keep walking the graph until
            # k rows pass it (pgvector >= 0.8).
            conn.execute(
                text(
                    "SELECT set_config('hnsw.ef_search', :ef, true), "
                    "set_config('hnsw.iterative_scan', :scan, true)"
                ),
                {
                    "ef": str(max(int(self.ef_search), k)),
                    "scan": "strict_order" if where else "off",
                },
            )
            rows = conn.execute(sql, params).all()
            if where and len(rows) < k:
                # The graph walk gave up before k matches (a very selective filter): the
                # filter's own rows, scanned exactly, are few enough to be cheap.
                conn.execute(text("SET LOCAL enable_indexscan = off"))
                rows = conn.execute(sql, params).all()
        return [(r[0], float(r[1])) for r in rows]

    def scores(self, query: np.ndarray, ids: Sequence[str]) -> list[float]:
        if not ids:
            return []
        sql = text(
            f"SELECT id, -(embedding <#> CAST(:q AS vector)) FROM {self.table} WHERE id = ANY(:ids)"
        )
        with self.engine.connect() as conn:
            found: dict[str, float] = dict(
                conn.execute(sql, {"q": _literal(query, self.dim), "ids": list(ids)}).all()
            )
        return [float(found[i]) if i in found else -1.0 for i in ids]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of live ids (zeros for unknown ones)."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        where = {chunk_id: row for row, chunk_id in enumerate(ids)}
        sql = text(f"SELECT id, embedding::text FROM {self.table} WHERE id = ANY(:ids)")
        with self.engine.connect() as conn:
            for chunk_id, literal in conn.execute(sql, {"ids": list(where)}):
                out[where[chunk_id]] = np.array(json.loads(literal), dtype=np.float32)
        return out

    def ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(text(f"SELECT id FROM {self.table}")).scalars())

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {self.table}")).scalar_one())

    def _has_hnsw(self) -> bool:
        with self.engine.connect() as conn:
            return _index_exists(conn, f"{self.table}_hnsw")


def _index_exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one()


def _literal(vector: np.ndarray, dim: int) -> str:
    v = np.asarray(vector, dtype=np.float32).reshape(dim)
    return "[" + ",".join(map(repr, v.tolist())) + "]"


def _where(flt: Filter | None) -> tuple[str, dict[str, Any]]:
    if flt is None or flt.empty:
        return "", {}
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if flt.equals:
        clauses.append("fields @> CAST(:eq AS jsonb)")
        params["eq"] = json.dumps(dict(flt.equals))
    if flt.groups is not None:
        clauses.append("groups && CAST(:groups AS text[])")
        params["groups"] = sorted(flt.groups)
    return "WHERE " + " AND ".join(clauses), params


def table_name(vector_tag: str) -> str:
    """The vector table of an embedding model's tag (the hex digest the index files use)."""
    return f"vectors_{vector_tag}" if vector_tag else "vectors"
