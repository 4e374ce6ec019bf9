"""Copy a workspace's store to another database: SQLite to PostgreSQL, and back.

Every table of the schema is copied in dependency order, in batches read in primary-key
order. Each batch commits together with its checkpoint (the last key copied, in the
target's ``copy_checkpoints`` table), so a run killed at any point resumes after the last
committed batch and never writes a row twice. At the end the row counts of every table and
a checksum of the embedding cache (per model: count and sum of the vectors) are compared.

A target that already holds rows is refused unless ``merge=True``: then rows whose key the
target already has are kept as they are there (and counted as skipped), and integer ids
(runs, evaluations, outcomes, monitor history) are shifted past the target's own so both
histories survive, with ``run_id`` references shifted alike.

The vector index is not a table: the workspace rebuilds it from the copied embedding
cache, without re-embedding, the first time it opens the new store.

Example:
    >>> report = copy_store("sqlite:///kb/datawheel.db", "postgresql://db.internal/datawheel")
    >>> report.tables["chunks"].target
    12840
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import JSON, Connection, Integer, Table, func, insert, select, text, tuple_, update
from sqlalchemy.dialects import sqlite

from datawheel.config import CONFIG_FILE, Config, render_default_config
from datawheel.errors import WorkspaceError
from datawheel.store import postgres as pg
from datawheel.store import schema as t
from datawheel.store.sql import SQLStore

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# Tables the copy itself writes, that every store makes for itself, or that hold only
# short-lived state (the service's rate-limit windows).
_OWN = {"schema_migrations", "copy_checkpoints", "rate_limits"}
# Integer-id tables whose ``run_id`` points at ``runs.id``.
_RUN_REFS = {"evaluations", "ingest_failures", "monitor_snapshots", "monitor_findings"}


@dataclass
class TableCopy:
    source: int = 0  # rows in the source
    target: int = 0  # rows in the target after the copy
    inserted: int = 0
    skipped: int = 0  # already in the target (--merge)


@dataclass
class CopyReport:
    source: str
    target: str
    merge: bool
    resumed: bool = False
    tables: dict[str, TableCopy] = field(default_factory=dict)
    vectors: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> count, sum
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tables() -> list[Table]:
    """The tables a copy moves, parents before children, and ``runs`` first (its id offset
    is needed for the ``run_id`` of the tables that point at it)."""
    from datawheel.monitor import history  # noqa: F401 - puts the monitor tables on metadata

    ordered = [tbl for tbl in t.metadata.sorted_tables if tbl.name not in _OWN]
    return sorted(ordered, key=lambda tbl: tbl.name != "runs")  # stable: keeps the rest


def resolve(location: str, *, create: bool = False) -> str:
    """The store URL of a workspace folder (its own store; DATAWHEEL_DATABASE_URL is
    ignored, as it usually names the other side) or a database URL as given.

    ``create``: make a workspace folder (a default datawheel.yaml) where there is none.
    """
    if "://" in location:
        return location
    root = Path(location).expanduser().resolve()
    cfg = root / CONFIG_FILE
    if not cfg.exists():
        if not create:
            raise WorkspaceError(
                f"no workspace at {root} (no {CONFIG_FILE}); give a workspace folder or a "
                "database URL such as postgresql://user@host/dbname"
            )
        if root.exists() and any(root.iterdir()):
            raise WorkspaceError(f"{root} is not empty and not a workspace; pick another folder")
        root.mkdir(parents=True, exist_ok=True)
        cfg.write_text(render_default_config(), encoding="utf-8")
    config = Config.load(cfg)
    return config.store.url or f"sqlite:///{root / 'datawheel.db'}"


def build_indexes(folder: str | Path, store_url: str) -> int:
    """Open the workspace on ``store_url`` and build its vector index from the copied
    embedding cache (nothing is re-embedded when the cache has every chunk); returns the
    number of chunks indexed."""
    from datawheel.workspace import Workspace

    root = Path(folder).expanduser().resolve()
    with _environ("DATAWHEEL_DATABASE_URL", store_url):
        ws = Workspace.open(root)
        try:
            return len(ws.indexes.vectors)
        finally:
            ws.close()


@contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def copy_store(
    source_url: str,
    target_url: str,
    *,
    merge: bool = False,
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy every table from one store to another, resumably, and verify the result.

    Raises WorkspaceError when the target holds data (and ``merge`` is off), when source
    and target are the same store, or when the verification finds a difference.
    """
    started = datetime.now(UTC)
    shown_source, shown_target = pg.safe_url(source_url), pg.safe_url(target_url)
    if shown_source == shown_target:
        raise WorkspaceError(f"source and target are the same store ({shown_source})")
    source, target = SQLStore(source_url), SQLStore(target_url)
    report = CopyReport(shown_source, shown_target, merge)
    try:
        with target.engine.connect() as conn:
            marks = _checkpoints(conn, shown_source)
        report.resumed = bool(marks)
        if not marks and not merge:
            filled = _filled_tables(target)
            if filled:
                raise WorkspaceError(
                    f"the target {shown_target} already holds data ({', '.join(filled)}); "
                    "copy into an empty database, or pass --merge to add this workspace to "
                    "it (rows with the same key are kept as they are in the target)"
                )
        totals = _counts(source)
        offsets: dict[str, int] = {}
        for table in tables():
            offsets[table.name] = _copy_table(
                source, target, table, shown_source, merge, batch_size, offsets, progress, totals
            )
        if target.is_postgres:
            _reset_sequences(target)
        _verify(source, target, shown_source, report)
    finally:
        source.close()
        target.close()
    report.seconds = (datetime.now(UTC) - started).total_seconds()
    return report


# -- one table --------------------------------------------------------------------------


def _copy_table(
    source: SQLStore,
    target: SQLStore,
    table: Table,
    source_name: str,
    merge: bool,
    batch_size: int,
    offsets: dict[str, int],
    progress: Progress | None,
    totals: dict[str, int],
) -> int:
    """Copy the rows after the checkpoint; returns the id offset the table's rows got."""
    mark = _start(target, table, source_name, merge)
    total = totals[table.name]
    if mark["done"]:
        if progress:
            progress(table.name, total, total)
        return int(mark["id_offset"])
    keys = list(table.primary_key.columns)
    last = mark["last_key"]
    read = int(mark["rows_read"])
    offset = int(mark["id_offset"])
    run_offset = offsets.get("runs", 0)
    if progress:
        progress(table.name, read, total)
    while True:
        query = select(table).order_by(*keys).limit(batch_size)
        if last is not None:
            query = query.where(tuple_(*keys) > tuple_(*last))
        with source.engine.connect() as sconn:
            rows = [dict(r._mapping) for r in sconn.execute(query)]
        if not rows:
            break
        last = [_jsonable(rows[-1][c.name]) for c in keys]
        out = [_for_target(table, r, offset, run_offset) for r in rows]
        with target.engine.begin() as tconn:
            inserted = _insert(tconn, target, table, out, merge)
            read += len(rows)
            tconn.execute(
                update(t.copy_checkpoints)
                .where(_mark_where(source_name, table.name))
                .values(
                    last_key=last,
                    rows_read=read,
                    rows_inserted=t.copy_checkpoints.c.rows_inserted + inserted,
                    updated_at=datetime.now(UTC),
                )
            )
        if progress:
            progress(table.name, read, total)
        if len(rows) < batch_size:
            break
    with target.engine.begin() as tconn:
        tconn.execute(
            update(t.copy_checkpoints)
            .where(_mark_where(source_name, table.name))
            .values(done=True, updated_at=datetime.now(UTC))
        )
    return offset


def _start(target: SQLStore, table: Table, source_name: str, merge: bool) -> dict[str, Any]:
    """The table's checkpoint, made on first sight with the target's row count and offset."""
    with target.engine.begin() as conn:
        row = conn.execute(
            select(t.copy_checkpoints).where(_mark_where(source_name, table.name))
        ).first()
        if row is not None:
            return dict(row._mapping)
        before = conn.execute(select(func.count()).select_from(table)).scalar_one()
        offset = 0
        if merge and _integer_id(table) is not None:
            offset = int(conn.execute(select(func.max(_integer_id(table)))).scalar() or 0)
        mark = {
            "source": source_name,
            "table_name": table.name,
            "last_key": None,
            "rows_read": 0,
            "rows_inserted": 0,
            "target_before": before,
            "id_offset": offset,
            "done": False,
            "updated_at": datetime.now(UTC),
        }
        conn.execute(insert(t.copy_checkpoints).values(**mark))
        return mark


def _insert(
    conn: Connection, store: SQLStore, table: Table, rows: list[dict[str, Any]], merge: bool
) -> int:
    if store.is_postgres:
        return _copy_insert(conn, table, rows, merge)
    stmt: Any = insert(table)
    if merge:
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    result = conn.execute(stmt, rows)
    return len(rows) if not merge else max(int(result.rowcount), 0)


def _copy_insert(conn: Connection, table: Table, rows: list[dict[str, Any]], merge: bool) -> int:
    """COPY into a scratch table, then one INSERT ... SELECT (ON CONFLICT DO NOTHING)."""
    scratch = f"_migrate_{table.name}"
    conn.execute(
        text(f'CREATE TEMP TABLE IF NOT EXISTS "{scratch}" (LIKE "{table.name}") ON COMMIT DROP')
    )
    names = [c.name for c in table.columns]
    jsons = {c.name for c in table.columns if isinstance(c.type, JSON)}
    pg.copy_rows(
        conn,
        scratch,
        names,
        ([_json_text(r[n]) if n in jsons else r[n] for n in names] for r in rows),
    )
    cols = ", ".join(f'"{n}"' for n in names)
    conflict = " ON CONFLICT DO NOTHING" if merge else ""
    result = conn.execute(
        text(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{scratch}"{conflict}')
    )
    return int(result.rowcount)


# -- checks -----------------------------------------------------------------------------


def _verify(source: SQLStore, target: SQLStore, source_name: str, report: CopyReport) -> None:
    with target.engine.connect() as conn:
        marks = {m["table_name"]: m for m in _checkpoints(conn, source_name)}
    problems = []
    src_counts, dst_counts = _counts(source), _counts(target)
    for table in tables():
        mark = marks[table.name]
        row = TableCopy(
            source=src_counts[table.name],
            target=dst_counts[table.name],
            inserted=int(mark["rows_inserted"]),
            skipped=int(mark["rows_read"]) - int(mark["rows_inserted"]),
        )
        report.tables[table.name] = row
        expected = int(mark["target_before"]) + row.inserted
        if row.target != expected or int(mark["rows_read"]) != row.source:
            problems.append(
                f"{table.name}: source {row.source}, read {mark['rows_read']}, "
                f"target {row.target} (expected {expected})"
            )
        if not report.merge and row.skipped:
            problems.append(f"{table.name}: {row.skipped} rows were not written")
    src_sums = _vector_sums(source)
    dst_sums = _vector_sums(target, {m: keys for m, (_, _, keys) in src_sums.items()})
    for model, (count, total, _) in src_sums.items():
        got = dst_sums.get(model)
        report.vectors[model] = {"count": count, "sum": float(total.sum())}
        if got is None or got[0] != count or not np.allclose(got[1], total, atol=1e-3):
            problems.append(f"embeddings of {model}: the vector checksum differs")
    if problems:
        raise WorkspaceError(
            "the copy does not match its source: "
            + "; ".join(problems)
            + ". Re-run the same command to resume; if it persists, copy into a new database"
        )


def _vector_sums(
    store: SQLStore, only: dict[str, set[str]] | None = None
) -> dict[str, tuple[int, np.ndarray, set[str]]]:
    """Per model: how many vectors, their sum (float64), and their text hashes."""
    out: dict[str, tuple[int, np.ndarray, set[str]]] = {}
    query = select(t.embeddings.c.model_id, t.embeddings.c.text_hash, t.embeddings.c.vector)
    with store.engine.connect() as conn:
        for model, text_hash, blob in conn.execution_options(yield_per=5000).execute(query):
            if only is not None and text_hash not in only.get(model, ()):
                continue
            vec = np.frombuffer(blob, dtype=np.float32).astype(np.float64)
            count, total, keys = out.get(model, (0, np.zeros_like(vec), set()))
            if total.shape != vec.shape:
                raise WorkspaceError(f"embeddings of {model} have mixed dimensions")
            keys.add(text_hash)
            out[model] = (count + 1, total + vec, keys)
    return out


def _counts(store: SQLStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            tbl.name: conn.execute(select(func.count()).select_from(tbl)).scalar_one()
            for tbl in tables()
        }


def _filled_tables(store: SQLStore) -> list[str]:
    return [name for name, n in _counts(store).items() if n]


def _checkpoints(conn: Connection, source_name: str) -> list[dict[str, Any]]:
    query = select(t.copy_checkpoints).where(t.copy_checkpoints.c.source == source_name)
    return [dict(r._mapping) for r in conn.execute(query)]


def _mark_where(source_name: str, table_name: str) -> Any:
    c = t.copy_checkpoints.c
    return (c.source == source_name) & (c.table_name == table_name)


def _reset_sequences(store: SQLStore) -> None:
    """Explicit ids do not move PostgreSQL's sequences: point each past the largest id."""
    with store.engine.begin() as conn:
        for table in tables():
            col = _integer_id(table)
            if col is None:
                continue
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', '{col.name}'), "
                    f'COALESCE(MAX("{col.name}"), 1), MAX("{col.name}") IS NOT NULL) '
                    f'FROM "{table.name}"'
                )
            )


# -- values -----------------------------------------------------------------------------


def _integer_id(table: Table) -> Any:
    keys = list(table.primary_key.columns)
    if len(keys) == 1 and isinstance(keys[0].type, Integer) and keys[0].autoincrement is True:
        return keys[0]
    return None


def _for_target(table: Table, row: dict[str, Any], offset: int, run_offset: int) -> dict[str, Any]:
    out = {k: _utc(v) for k, v in row.items()}
    ident = _integer_id(table)
    if offset and ident is not None:
        out[ident.name] += offset
    if run_offset and table.name in _RUN_REFS and out.get("run_id") is not None:
        out["run_id"] += run_offset
    return out


def _utc(value: Any) -> Any:
    # SQLite keeps datetimes without a zone; datawheel always writes UTC.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
