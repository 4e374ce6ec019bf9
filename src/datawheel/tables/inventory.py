"""Inventory: profile every source and say what kind of data it is and what it is good for.

Each table source is loaded with :func:`datawheel.tables.read.load` and profiled in DuckDB:
rows, and per column the type (inferred from the text for CSV/Excel), null rate, distinct
count, min and max; plus size and last update. The document knowledge base becomes one more
entry (documents, chunks, kinds, newest ingest). Every entry is then classified as
business-process, customer-interaction, expert-knowledge or public-web data, with value
density, flywheel effect, priority and the AI application it suits, by :class:`InventoryRules`:
rules that are data (``inventory:`` in ``datawheel.yaml``, :mod:`.inventory_rules`), with the
reasons that decided it (:mod:`.classify`). :mod:`.inventory_html` renders the HTML report.

Example::

    inventory = build_inventory(ws, InventoryRules())
    for entry in inventory.ranked():
        print(entry.name, entry.classification.category if entry.classification else entry.error)
    Path("inventory.html").write_text(render_html(inventory), encoding="utf-8")
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from datawheel.errors import DatawheelError
from datawheel.tables.classify import Classification, classify, classify_documents
from datawheel.tables.dialect import Connection, Dialect
from datawheel.tables.inventory_rules import CATEGORIES, LEVELS, InventoryRules
from datawheel.tables.pipeline import session
from datawheel.tables.read import hide_password, ident, load
from datawheel.tables.spec import TableSource
from datawheel.tables.types import infer_types, typed_sql

if TYPE_CHECKING:
    from datawheel.store.sql import SQLStore
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)

# --- profiles ------------------------------------------------------------------------------

Value = int | float | str | bool | None


@dataclass
class ColumnProfile:
    name: str
    type: str  # integer, double, date, timestamp, boolean, varchar (or DuckDB's, e.g. struct)
    stored_type: str  # as loaded: VARCHAR for CSV/Excel text
    nulls: int  # NULL or blank
    null_rate: float
    distinct: int | None
    min: Value = None
    max: Value = None
    sample: list[str] = field(default_factory=list, repr=False)  # for content hints; not reported

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["sample"]
        return data


@dataclass
class SourceProfile:
    name: str
    origin: str  # the file, or the URL (password hidden) and table or query
    format: str
    rows: int
    columns: list[ColumnProfile]
    size_bytes: int | None = None  # None for databases
    modified: str | None = None  # file modification time (UTC)
    newest: str | None = None  # largest value of any date/timestamp column
    newest_column: str | None = None
    rejected_lines: int = 0
    encoding: str | None = None

    @property
    def last_updated(self) -> str | None:
        return self.modified or self.newest

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"] = [c.to_dict() for c in self.columns]
        data["last_updated"] = self.last_updated
        return data


@dataclass
class DocumentsProfile:
    documents: int
    chunks: int
    kinds: dict[str, int]
    text_chars: int
    newest_ingest: str | None
    newest_date: str | None


@dataclass
class InventoryEntry:
    name: str
    kind: Literal["table", "documents"]
    profile: SourceProfile | None = None
    documents: DocumentsProfile | None = None
    classification: Classification | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "error": self.error,
            "profile": self.profile.to_dict() if self.profile else None,
            "documents": asdict(self.documents) if self.documents else None,
            "classification": asdict(self.classification) if self.classification else None,
        }


@dataclass
class Inventory:
    workspace: str
    generated_at: str
    entries: list[InventoryEntry]

    def summary(self) -> dict[str, int]:
        """Entries per category (and ``error`` for the unreadable ones)."""
        counts = dict.fromkeys([*CATEGORIES, "error"], 0)
        for e in self.entries:
            counts[e.classification.category if e.classification else "error"] += 1
        return counts

    def ranked(self) -> list[InventoryEntry]:
        """Entries by priority, then value density, then flywheel; unreadable ones last."""

        def key(e: InventoryEntry) -> tuple[int, ...]:
            c = e.classification
            if c is None:
                return (9, 9, 9)
            return tuple(LEVELS.index(x) for x in (c.priority, c.value_density, c.flywheel))

        return sorted(self.entries, key=key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "generated_at": self.generated_at,
            "summary": self.summary(),
            "entries": [e.to_dict() for e in self.entries],
        }


# --- profiling -----------------------------------------------------------------------------

_SCALAR = ("integer", "double", "date", "timestamp", "boolean", "varchar")


def _plain(value: Any) -> Value:
    """A min/max value as JSON-friendly data."""
    if isinstance(value, dt.date):  # datetime too
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


_DUCKDB = Dialect()


def _profile_columns(
    con: Connection,
    table: str,
    names: list[str],
    rows: int,
    sample_rows: int,
    *,
    stored: dict[str, str] | None = None,
    dialect: Dialect = _DUCKDB,
    sample_sql: Callable[[str], str] | None = None,
) -> list[ColumnProfile]:
    """Per column of ``table``: type, nulls, distinct, min, max and a sample of text values.

    ``con`` is DuckDB's connection, or one with its ``execute(sql).fetchone()/fetchall()``
    running ``dialect``'s SQL (Spark's, see :mod:`datawheel.tables.spark_profile`), which
    then passes ``stored`` (the columns' DuckDB type names) and ``sample_sql`` (the query
    for the sample, given the quoted text columns) too.
    """
    if stored is None:
        stored = {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()}
    kinds = infer_types(con, table, {n: stored[n] for n in names}, {}, {}, dialect)
    # values present (blank text counts as missing), distinct, min and max of the typed values,
    # typed once per row in a subquery (Spark would type them once per distinct count)
    typed, aggs = [], []
    for n in names:
        e = ident(n)
        if kinds[n] in _SCALAR:
            typed.append(f"{typed_sql(e, stored[n], kinds[n], dialect)} AS {e}")
            aggs += [f"count({e})", f"count(DISTINCT {e})", f"min({e})", f"max({e})"]
        else:
            typed.append(e)
            aggs += [f"count({e})", "NULL", "NULL", "NULL"]
    query = f"SELECT {', '.join(aggs) or '1'} FROM (SELECT {', '.join(typed) or '1'} FROM {table})"
    got = list(con.execute(query).fetchone() or [])
    present = {n: int(got[4 * i] or 0) for i, n in enumerate(names)}
    stats = {n: tuple(got[4 * i + 1 : 4 * i + 4]) for i, n in enumerate(names)}
    # a sample of the text values, for the classification's content hints
    text = [n for n in names if kinds[n] == "varchar"]
    samples: dict[str, list[str]] = {n: [] for n in text}
    if text:
        cols = ", ".join(ident(n) for n in text)
        query = (
            sample_sql(cols)
            if sample_sql
            else f"SELECT {cols} FROM {table} USING SAMPLE reservoir({int(sample_rows)} ROWS) "
            "REPEATABLE (7)"
        )
        sampled = con.execute(query).fetchall()
        for row in sampled:
            for n, v in zip(text, row, strict=True):
                if v is not None and str(v).strip():
                    samples[n].append(str(v))
    out = []
    for n in names:
        distinct, lo, hi = stats.get(n, (None, None, None))
        nulls = rows - present[n]
        out.append(
            ColumnProfile(
                name=n,
                type=kinds[n],
                stored_type=stored[n],
                nulls=nulls,
                null_rate=round(nulls / rows, 4) if rows else 0.0,
                distinct=distinct,
                min=_plain(lo),
                max=_plain(hi),
                sample=samples.get(n, []),
            )
        )
    return out


def sampled_rows(rows: int, sample_rows: int) -> list[int]:
    """The positions (``__dw_row``, from 1) of the rows DuckDB's profile samples.

    DuckDB's repeatable reservoir sample picks its rows from the row count alone, not from
    their values, so another engine (Spark) samples the same rows by position.
    """
    with duckdb.connect() as con:
        picked = con.execute(
            f"SELECT range + 1 FROM range({int(rows)}) "
            f"USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE (7)"
        ).fetchall()
    return sorted(int(r[0]) for r in picked)


def profile_source(
    source: TableSource,
    workdir: Path | None = None,
    *,
    sample_rows: int = 200,
    memory_limit: str = "2GB",
) -> SourceProfile:
    """Load ``source`` into DuckDB and profile it.

    Args:
        source: a table source with an absolute path (see ``Workspace.table_source``).
        workdir: folder for temporary files (a UTF-8 copy of a file in another encoding);
            default: a temporary folder removed afterwards.
        sample_rows: text values sampled per column for the classification's content hints.

    Raises:
        DatawheelError: the source cannot be read (missing file, bad URL, ...).
    """
    with session(memory_limit) as (con, work):
        loaded = load(con, source, "raw", workdir=workdir or work)
        columns = _profile_columns(con, "raw", loaded.columns, loaded.rows, sample_rows)
    return source_profile(source, loaded.rows, columns, len(loaded.rejected), loaded.encoding)


def source_profile(
    source: TableSource,
    rows: int,
    columns: list[ColumnProfile],
    rejected_lines: int,
    encoding: str | None,
) -> SourceProfile:
    """The profile of ``source`` from its profiled columns: newest date, size, last update."""
    dated = [c for c in columns if c.type in ("date", "timestamp") and c.max is not None]
    newest = max(dated, key=lambda c: str(c.max), default=None)
    profile = SourceProfile(
        name=source.name,
        origin=_origin(source),
        format="sql" if source.url else _format(source),
        rows=rows,
        columns=columns,
        newest=str(newest.max) if newest else None,
        newest_column=newest.name if newest else None,
        rejected_lines=rejected_lines,
        encoding=encoding,
    )
    if source.path and "://" not in source.path:  # a local file (Spark reads others too)
        stat = Path(source.path).stat()
        profile.size_bytes = stat.st_size
        profile.modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat(
            timespec="seconds"
        )
    return profile


def _format(source: TableSource) -> str:
    return source.format if source.format != "auto" else Path(source.path or "").suffix[1:]


def _origin(source: TableSource) -> str:
    if source.path:
        return source.path
    url = source.url or ""
    shown = url if url.startswith("env:") else hide_password(url)
    return f"{shown} table {source.table}" if source.table else f"{shown} query {source.query}"


def profile_documents(store: SQLStore) -> DocumentsProfile:
    """Documents, chunks and kinds in the knowledge base, and its newest ingest."""
    from sqlalchemy import func, select

    from datawheel.store import schema as t

    d = t.documents
    per_kind = select(
        d.c.kind,
        func.count(),
        func.sum(d.c.chunk_count),
        func.max(d.c.ingested_at),
        func.max(d.c.date),
    ).group_by(d.c.kind)
    chars = select(func.coalesce(func.sum(func.length(t.chunks.c.text)), 0))
    with store.engine.connect() as conn:
        rows = conn.execute(per_kind).all()
        text_chars = int(conn.execute(chars).scalar_one())
    ingests = [r[3] for r in rows if r[3] is not None]
    dates = [r[4] for r in rows if r[4]]
    return DocumentsProfile(
        documents=sum(r[1] for r in rows),
        chunks=sum(int(r[2] or 0) for r in rows),
        kinds={(r[0] or "unknown"): r[1] for r in sorted(rows, key=lambda r: -r[1])},
        text_chars=text_chars,
        newest_ingest=max(ingests).isoformat(timespec="seconds") if ingests else None,
        newest_date=str(max(dates)) if dates else None,
    )


# --- the whole inventory -------------------------------------------------------------------


def _error_text(exc: Exception) -> str:
    if isinstance(exc, DatawheelError):
        return str(exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # not DuckDB's SQL echo
    return f"cannot read it: {first}; check that the file or table holds what its format says"


Profiler = Callable[[TableSource, int], SourceProfile]  # a source and its sample_rows


@contextmanager
def _profiler(engine: str, spark_master: str | None) -> Iterator[Profiler]:
    if engine == "spark":  # one Spark session for every source
        from datawheel.tables.spark_profile import spark_profiler

        with spark_profiler(spark_master) as profile:
            yield profile
        return
    yield lambda source, sample_rows: profile_source(source, sample_rows=sample_rows)


def build_inventory(
    ws: Workspace,
    rules: InventoryRules,
    *,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> Inventory:
    """Profile and classify every table source of ``ws`` and its knowledge base.

    A source that cannot be read becomes an entry with its error; the others go on. With
    ``engine="spark"`` the CSV, TSV and Parquet sources are profiled on Spark (``spark_master``,
    default ``local[2]``) with the same figures; other sources become entries with an error.
    """
    entries: list[InventoryEntry] = []
    with _profiler(engine, spark_master) as profile_one:
        for name in ws.config.sources:
            try:
                profile = profile_one(ws.table_source(name), rules.sample_rows)
            except Exception as exc:  # any failure of one source is reported, not fatal
                log.info("inventory: %s cannot be read: %s", name, exc)  # shown in the entry
                entries.append(InventoryEntry(name, "table", error=_error_text(exc)))
                continue
            classification = classify(profile, rules)
            entries.append(InventoryEntry(name, "table", profile, None, classification))
    docs = profile_documents(ws.store)
    entries.append(
        InventoryEntry("knowledge base", "documents", None, docs, classify_documents(docs, rules))
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return Inventory(str(ws.path), now, entries)
