"""Column types from values: one inference for every table command (inventory, monitor).

A column DuckDB already typed keeps its type; a text column gets the narrowest type every
non-blank value fits, tried in order: integer (whole numbers only), double, date (no time
of day), timestamp, boolean (true/false, t/f, yes/no, y/n; 1/0 is integer first), else
varchar. Blank text counts as missing.
"""

from __future__ import annotations

from datawheel.tables.dialect import Connection, Dialect
from datawheel.tables.read import ident

_DUCKDB = Dialect()
_WHOLE = "[+-]?[0-9]+"  # an integer is a whole number: TRY_CAST('1.5' AS BIGINT) rounds

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
    con: Connection,
    table: str,
    native: dict[str, str],
    declared: dict[str, str],
    previous: dict[str, str],
    dialect: Dialect = _DUCKDB,
) -> dict[str, str]:
    """Column → type: declared, else DuckDB's own, else the narrowest every value fits.

    ``native`` holds DuckDB type names; ``con`` runs ``dialect``'s SQL (Spark SQL for a
    Spark table), which must give DuckDB's answer.
    """
    types: dict[str, str | None] = {c: declared.get(c) or duck_type(t) for c, t in native.items()}
    text = [c for c, t in types.items() if t is None]
    if text:
        parts = []
        d, txt = dialect, dialect.text
        for c in text:
            v = f"nullif(trim({ident(c)}), '')"
            date, stamp = d.convert(v, "date", txt), d.convert(v, "timestamp", txt)
            parts += [
                f"count({v})",
                f"count(*) FILTER (WHERE {d.full_match(v, _WHOLE)} "
                f"AND {d.convert(v, 'integer', txt)} IS NOT NULL)",
                f"count({d.convert(v, 'double', txt)})",
                # a date has no time of day: its timestamp is its midnight
                f"count(*) FILTER (WHERE {d.convert(date, 'timestamp', 'DATE')} = {stamp})",
                f"count({stamp})",
                f"count({d.convert(v, 'boolean', txt)})",
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


def typed_sql(col: str, native: str, kind: str, dialect: Dialect = _DUCKDB) -> str:
    """SQL for column ``col`` (of DuckDB type ``native``) as our type ``kind``, spelled by
    ``dialect`` where ``col`` is text."""
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
    if kind == "integer":
        whole = f"CASE WHEN {dialect.full_match(v, _WHOLE)} THEN {v} END"
        return dialect.convert(whole, "integer", dialect.text)
    if kind in ("double", "date", "timestamp", "boolean"):
        return dialect.convert(v, kind, dialect.text)
    return f"CASE WHEN trim({col}) = '' THEN NULL ELSE {col} END"
