"""Column types from values: one inference for every table command (inventory, monitor).

A column DuckDB already typed keeps its type; a text column gets the narrowest type every
non-blank value fits, tried in order: integer (whole numbers only), double, date (no time
of day), timestamp, boolean (true/false, t/f, yes/no, y/n; 1/0 is integer first), else
varchar. Blank text counts as missing.
"""

from __future__ import annotations

import duckdb

from datawheel.tables.read import ident

_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
_INTEGERS |= {"U" + t for t in _INTEGERS}
_DOUBLES = {"FLOAT", "REAL", "DOUBLE"}


def duck_type(native: str) -> str | None:
    """Our type name for a DuckDB type; None for text (to be inferred)."""
    if native == "VARCHAR":
        return None
    if native in _INTEGERS:
        return "integer"
    if native in _DOUBLES or native.startswith("DECIMAL"):
        return "double"
    if native == "DATE":
        return "date"
    if native.startswith("TIMESTAMP"):
        return "timestamp"
    if native == "BOOLEAN":
        return "boolean"
    return native.lower()


def infer_types(
    con: duckdb.DuckDBPyConnection,
    table: str,
    native: dict[str, str],
    declared: dict[str, str],
    previous: dict[str, str],
) -> dict[str, str]:
    """Column → type: declared, else DuckDB's own, else the narrowest every value fits."""
    types: dict[str, str | None] = {c: declared.get(c) or duck_type(t) for c, t in native.items()}
    text = [c for c, t in types.items() if t is None]
    if text:
        parts = []
        for c in text:
            v = f"nullif(trim({ident(c)}), '')"
            parts += [
                f"count({v})",
                f"count(*) FILTER (WHERE regexp_full_match({v}, '[+-]?[0-9]+') "
                f"AND TRY_CAST({v} AS BIGINT) IS NOT NULL)",
                f"count(TRY_CAST({v} AS DOUBLE))",
                # a date has no time of day: its timestamp is its midnight
                f"count(*) FILTER (WHERE CAST(TRY_CAST({v} AS DATE) AS TIMESTAMP) "
                f"= TRY_CAST({v} AS TIMESTAMP))",
                f"count(TRY_CAST({v} AS TIMESTAMP))",
                f"count(TRY_CAST({v} AS BOOLEAN))",
            ]
        counts = con.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchone() or ()
        for i, c in enumerate(text):
            n, *fits = counts[i * 6 : i * 6 + 6]
            if n == 0:  # nothing to infer from: keep what it was
                types[c] = previous.get(c, "varchar")
                continue
            candidates = ("integer", "double", "date", "timestamp", "boolean")
            types[c] = next((t for t, k in zip(candidates, fits, strict=True) if k == n), "varchar")
    return {c: t or "varchar" for c, t in types.items()}


def typed_sql(col: str, native: str, kind: str) -> str:
    """SQL for column ``col`` (of DuckDB type ``native``) as our type ``kind``."""
    if native != "VARCHAR":
        declared_sql = {
            "integer": "BIGINT",
            "double": "DOUBLE",
            "date": "DATE",
            "timestamp": "TIMESTAMP",
            "boolean": "BOOLEAN",
            "varchar": "VARCHAR",
        }
        if duck_type(native) == kind or kind not in declared_sql:
            return col
        return f"TRY_CAST({col} AS {declared_sql[kind]})"
    v = f"nullif(trim({col}), '')"
    if kind == "integer":  # TRY_CAST('1.5' AS BIGINT) rounds; only whole numbers are integers
        return f"TRY_CAST(CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+') THEN {v} END AS BIGINT)"
    sql = {"double": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP", "boolean": "BOOLEAN"}
    if kind in sql:
        return f"TRY_CAST({v} AS {sql[kind]})"
    return f"CASE WHEN trim({col}) = '' THEN NULL ELSE {col} END"
