"""How the cleaning SQL is spelled: DuckDB's dialect, the reference every engine matches.

The steps (:mod:`datawheel.tables.steps`) write their SQL through a :class:`Dialect`; the
Spark SQL one (:mod:`datawheel.tables.spark_dialect`) overrides only the spelling and must
return the same values. Also the small SQL helpers the steps and the pipeline share.

Example::

    DUCKDB.convert("amount", "double", "VARCHAR")   # TRY_CAST(amount AS DOUBLE)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import duckdb

from datawheel.errors import ConfigError
from datawheel.tables.spec import SQL_TYPES

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(K|M|G|T)?i?B\s*", re.I)


def lit(value: object) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def size_bytes(size: str) -> int:
    """``2GB``, ``1.8 GiB`` or ``512MB`` in bytes (powers of 1024, as DuckDB reports them)."""
    m = _SIZE.fullmatch(size)
    if not m:
        raise ConfigError(f"{size!r} is not a size; write it like 2GB or 512MB")
    power = " KMGT".index((m.group(2) or " ").upper())
    return int(float(m.group(1)) * 1024**power)


class Connection(Protocol):
    """What a step's ``prepare`` needs from an engine: DuckDB's ``execute(sql).fetchone()``."""

    def execute(self, query: str, parameters: Any = ..., /) -> Any: ...


#: What a text date must look like to be converted (both engines): a four-digit year first.
DATE_SHAPE = r"\s*[0-9]{4}(?:-[0-9]{1,2}-|/[0-9]{1,2}/| [0-9]{1,2} )[0-9]{1,2}"
TIME_SHAPE = (
    r"(?:(?:T| +)(?:[01]?[0-9]|2[0-3]):[0-5]?[0-9](?::[0-5]?[0-9](?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)


class Dialect:
    """How DuckDB spells the SQL the steps need; the reference for every other engine.

    A subclass for another engine (Spark SQL in ``tables/spark_dialect.py``) overrides only the
    spelling and must return the same values, so both engines clean a table identically.
    """

    name = "duckdb"
    text = "VARCHAR"

    def lit(self, value: object) -> str:
        """A string literal."""
        return lit(value)

    def to_text(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def is_text(self, native: str) -> bool:
        """Whether a type name from ``DESCRIBE`` is the engine's text type."""
        return native.upper() == self.text

    def to_double(self, expr: str) -> str:
        """The value as a DOUBLE, NULL where it is not a number."""
        return f"TRY_CAST({expr} AS DOUBLE)"

    def convert(self, expr: str, kind: str, native: str) -> str:
        """``expr`` (of engine type ``native``) as our column type ``kind``, NULL where it
        does not convert. Text dates must start with a four-digit year (``2010-12-01``):
        DuckDB alone would read ``12/1/10`` as the year 12, which no one meant."""
        if kind in ("date", "timestamp") and self.is_text(native):
            shape = DATE_SHAPE + TIME_SHAPE + (r"\s*" if kind == "date" else "")
            return (
                f"CASE WHEN {self.full_match(expr, shape)} "
                f"THEN TRY_CAST({expr} AS {SQL_TYPES[kind]}) END"
            )
        return f"TRY_CAST({expr} AS {SQL_TYPES[kind]})"

    def cast(self, expr: str, native: str) -> str:
        """A DOUBLE ``expr`` back to the engine type ``native`` (integers round half to even)."""
        return f"CAST({expr} AS {native})"

    def days_from_today(self, days: int) -> str:
        """The date ``days`` after today (when the query runs)."""
        return f"(current_date + INTERVAL {int(days)} DAY)"

    def full_match(self, expr: str, pattern: str) -> str:
        return f"regexp_full_match({expr}, {self.lit(pattern)})"

    def remove(self, expr: str, pattern: str) -> str:
        """The text with every match of the regular expression ``pattern`` removed."""
        return f"regexp_replace({expr}, {self.lit(pattern)}, '', 'g')"

    def ungroup(self, expr: str) -> str:
        """The text with the commas between groups of three digits removed (1,234 → 1234)."""
        return f"regexp_replace({expr}, ',([0-9]{{3}})', '\\1', 'g')"

    def digits(self, expr: str) -> str:
        """The text with everything but the digits 0-9 removed."""
        return f"regexp_replace({expr}, '[^0-9]', '', 'g')"

    def parse_time(self, expr: str, fmt: str) -> str:
        """The text parsed with a strptime format, NULL where it does not fit."""
        return f"try_strptime({expr}, {self.lit(fmt)})"

    def quantile(self, expr: str, q: float) -> str:
        """The interpolated quantile ``q`` of a numeric column (an aggregate)."""
        return f"quantile_cont({expr}, {q})"


DUCKDB = Dialect()


def describe(con: Connection, src: str) -> dict[str, str]:
    """Column → engine type name (upper case) of the view ``src``."""
    return {str(r[0]): str(r[1]).upper() for r in con.execute(f"DESCRIBE {src}").fetchall()}


@contextmanager
def unordered(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Let DuckDB return rows in any order (cheaper in parallel) for the queries inside."""
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = true")
