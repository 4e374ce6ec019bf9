"""Profile a table source in DuckDB: row count, schema, null rates and binned distributions.

A :class:`Snapshot` is what one monitor run remembers about a source, so the next run can
compare against it. Files arrive as text (see :mod:`datawheel.tables.read`), so each text
column gets a type first: the one declared under ``clean.types``, else the narrowest of
integer, double, date, timestamp, boolean that every non-empty value converts to.

Distributions are binned on the *reference's* bins so two snapshots compare bin by bin:
numeric columns on the reference's quantile edges (right-closed bins, the outer ones open),
text and boolean columns on the reference's top categories plus one "other" bin.

Example::

    with session("2GB") as (con, work):
        load(con, source, "raw", workdir=work)
        snap = profile(con, "raw", source.name, bins=10, top_k=20)
    snap.rows, snap.schema, snap.columns["amount"].nulls
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from datawheel.tables.read import ROW, ident
from datawheel.tables.types import infer_types, typed_sql

NUMERIC, CATEGORICAL, DATE, OTHER = "numeric", "categorical", "date", "other"
KINDS = {
    "integer": NUMERIC,
    "double": NUMERIC,
    "varchar": CATEGORICAL,
    "boolean": CATEGORICAL,
    "date": DATE,
    "timestamp": DATE,
}
CATEGORY_CHARS = 200  # longer values are compared by their first 200 characters


@dataclass
class ColumnStats:
    """One column of a snapshot."""

    type: str  # integer, double, varchar, date, timestamp, boolean, or DuckDB's type name
    nulls: float  # share of rows with no value (empty text counts as none)
    edges: list[float] | None = None  # numeric: inner bin edges
    categories: list[str] | None = None  # text/boolean: the reference's top categories
    counts: list[int] | None = None  # rows per bin; for categories the last bin is "other"
    min: float | str | None = None
    max: float | str | None = None
    ref: int | None = None  # snapshot whose bins these are; None: this snapshot's own
    unique: bool = False  # an integer column whose values are all distinct: an id

    @property
    def kind(self) -> str:
        return KINDS.get(self.type, OTHER)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnStats:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Snapshot:
    """What one run saw of one source."""

    source: str
    rows: int
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    date_column: str | None = None
    newest: str | None = None  # ISO date of the newest value in date_column
    id: int | None = None
    taken_at: datetime | None = None

    @property
    def schema(self) -> dict[str, str]:
        return {name: c.type for name, c in self.columns.items()}

    def stats_dict(self) -> dict[str, dict[str, Any]]:
        return {name: asdict(c) for name, c in self.columns.items()}


def profile(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    *,
    bins: int = 10,
    top_k: int = 20,
    declared: dict[str, str] | None = None,
    previous_types: dict[str, str] | None = None,
    anchors: dict[str, ColumnStats] | None = None,
    date_column: str | None = None,
) -> Snapshot:
    """Profile DuckDB table ``table`` (as loaded by :func:`datawheel.tables.read.load`).

    Args:
        declared: column → type from the source's ``clean.types``; wins over inference.
        previous_types: the last snapshot's types, kept for columns with no value to infer from.
        anchors: column → reference stats whose bins (edges or categories) are reused.
        date_column: the column for freshness; default: the first date/timestamp column.
    """
    native = {
        name: str(kind).upper()
        for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()
        if name != ROW
    }
    types = infer_types(con, table, native, declared or {}, previous_types or {})
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __dw_typed AS SELECT "
        + ", ".join(f"{typed_sql(ident(c), native[c], t)} AS {ident(c)}" for c, t in types.items())
        + f" FROM {table}"
    )
    if date_column is None:
        date_column = next((c for c, t in types.items() if KINDS.get(t) == DATE), None)
    rows, columns, newest = _basic_stats(con, "__dw_typed", types, date_column)
    anchors = anchors or {}
    for name, stats in columns.items():
        anchor = anchors.get(name)
        if anchor is not None and anchor.kind != stats.kind:
            anchor = None
        if stats.kind == NUMERIC:
            edges = anchor.edges if anchor and anchor.edges is not None else None
            stats.edges, stats.counts = _numeric_bins(con, "__dw_typed", name, edges, bins)
        elif stats.kind == CATEGORICAL:
            cats = anchor.categories if anchor and anchor.categories is not None else None
            stats.categories, stats.counts = _category_bins(con, "__dw_typed", name, cats, top_k)
    con.execute("DROP TABLE __dw_typed")
    is_date = KINDS.get(types.get(date_column or "", "")) == DATE
    return Snapshot(source, rows, columns, date_column if is_date else None, newest)


def _basic_stats(
    con: duckdb.DuckDBPyConnection, table: str, types: dict[str, str], date_column: str | None
) -> tuple[int, dict[str, ColumnStats], str | None]:
    parts = ["count(*)"]
    for c, t in types.items():
        col = ident(c)
        parts.append(f"count({col})")
        if KINDS.get(t) == NUMERIC:
            parts += [f"min(CAST({col} AS DOUBLE))", f"max(CAST({col} AS DOUBLE))"]
        elif KINDS.get(t) == DATE:
            parts += [f"CAST(min({col}) AS VARCHAR)", f"CAST(max({col}) AS VARCHAR)"]
        else:
            parts += ["NULL", "NULL"]
    has_date = date_column in types and KINDS.get(types[date_column or ""]) == DATE
    parts.append(f"CAST(max({ident(date_column or '')}) AS DATE)" if has_date else "NULL")
    row = con.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchone() or ()
    rows = int(row[0])
    columns: dict[str, ColumnStats] = {}
    filled_of: dict[str, int] = {}
    for i, (c, t) in enumerate(types.items()):
        filled, low, high = row[1 + 3 * i : 4 + 3 * i]
        filled_of[c] = int(filled)
        columns[c] = ColumnStats(
            type=t,
            nulls=round(1 - filled / rows, 6) if rows else 0.0,
            min=_finite(low),
            max=_finite(high),
        )
    integers = [c for c, t in types.items() if t == "integer"]
    if integers:
        counts = ", ".join(f"count(DISTINCT {ident(c)})" for c in integers)
        distinct = con.execute(f"SELECT {counts} FROM {table}").fetchone() or ()
        for c, n in zip(integers, distinct, strict=True):
            columns[c].unique = filled_of[c] > 1 and n == filled_of[c]
    newest = row[-1]
    return rows, columns, newest.isoformat() if isinstance(newest, date) else None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _numeric_bins(
    con: duckdb.DuckDBPyConnection, table: str, column: str, edges: list[float] | None, bins: int
) -> tuple[list[float], list[int]]:
    col = f"CAST({ident(column)} AS DOUBLE)"
    if edges is None:
        qs = [i / bins for i in range(1, bins)]
        found = con.execute(
            f"SELECT quantile_cont({col}, {qs!r}) FROM {table} WHERE {col} IS NOT NULL"
        ).fetchone()
        values = found[0] if found and found[0] is not None else []
        edges = sorted({float(e) for e in values if math.isfinite(e)})
    # bin i holds edges[i-1] < v <= edges[i]: the number of edges below v
    position = " + ".join(f"CAST({col} > {e!r} AS INTEGER)" for e in edges) or "0"
    counts = [0] * (len(edges) + 1)
    for pos, n in con.execute(
        f"SELECT {position} AS pos, count(*) FROM {table} WHERE {col} IS NOT NULL GROUP BY pos"
    ).fetchall():
        counts[int(pos)] = int(n)
    return edges, counts


def _category_bins(
    con: duckdb.DuckDBPyConnection,
    table: str,
    column: str,
    categories: list[str] | None,
    top_k: int,
) -> tuple[list[str], list[int]]:
    value = f"left(CAST({ident(column)} AS VARCHAR), {CATEGORY_CHARS})"
    if categories is None:
        categories = [
            str(v)
            for v, _ in con.execute(
                f"SELECT {value} AS v, count(*) AS n FROM {table} WHERE v IS NOT NULL "
                f"GROUP BY v ORDER BY n DESC, v LIMIT {int(top_k)}"
            ).fetchall()
        ]
    counts = [0] * (len(categories) + 1)  # the last bin is "other"
    if not categories:
        found = con.execute(f"SELECT count({ident(column)}) FROM {table}").fetchone()
        return categories, [int(found[0]) if found else 0]
    for pos, n in con.execute(
        f"SELECT coalesce(list_position(?, {value}), 0) AS pos, count(*) FROM {table} "
        f"WHERE {ident(column)} IS NOT NULL GROUP BY pos",
        [categories],
    ).fetchall():
        counts[int(pos) - 1 if pos else len(categories)] = int(n)
    return categories, counts
