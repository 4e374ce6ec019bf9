"""Cleaning steps as SQL, one small class per step.

Each step turns the view ``src`` into the view ``dst`` with ``sql(src, dst)`` (plain SQL, so
another engine such as Spark SQL can run the same plan). A step never deletes a row that fails
a check: each check adds a flag (``__dw_f<n>``, true where the row fails) and a reason
(``__dw_r<n>``, ``"<check>: <detail>"`` where it fails, else NULL), so a row that breaks three
rules is quarantined once with all three reasons. The views only describe the work; the
pipeline runs the whole chain in one pass per output. Only dedupe removes rows: it moves them
to the ``dw_duplicates`` table, which is quarantined too.

``prepare(con, src)`` runs before a step's view is made, for what the SQL or the report needs
from the data (duplicate groups, outlier bounds, counts of values a fix changes);
``summary(failed)`` says what the step changed, given how many rows failed its checks.

Every piece of SQL that engines spell differently goes through the step's :class:`Dialect`:
the base class is DuckDB's spelling and the reference semantics; ``tables/spark.py`` has the
Spark SQL one, which must give the same values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa

from datawheel.errors import ConfigError
from datawheel.tables.read import ROW, ident
from datawheel.tables.spec import (
    SQL_TYPES,
    CleanSpec,
    Outliers,
    Rule,
    Standardise,
    TableSource,
    check_columns,
)

REASON = "__dw_r"
FLAG = "__dw_f"
DUPLICATES = "dw_duplicates"
KEEP = "__dw_keep"
GONE = "__dw_gone"
GROUP_SIZE = "__dw_n"
ROWID = "__dw_rowid"
LIST_MAX = 1 << 20  # repeated hashes handed to DuckDB as a list parameter at most
EXACT_DISTINCT = 100_000  # distinct values up to which outlier bounds are computed exactly
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(K|M|G|T)?i?B\s*", re.I)


def flag(reason: str) -> str:
    """The boolean column beside reason column ``__dw_r<n>``: true where the row fails."""
    return FLAG + reason.removeprefix(REASON)


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


class Dialect:
    """How DuckDB spells the SQL the steps need; the reference for every other engine.

    A subclass for another engine (Spark SQL in ``tables/spark.py``) overrides only the
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
        does not convert."""
        return f"TRY_CAST({expr} AS {SQL_TYPES[kind]})"

    def cast(self, expr: str, native: str) -> str:
        """A DOUBLE ``expr`` back to the engine type ``native`` (integers round half to even)."""
        return f"CAST({expr} AS {native})"

    def full_match(self, expr: str, pattern: str) -> str:
        return f"regexp_full_match({expr}, {self.lit(pattern)})"

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


def _count(con: Connection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


@dataclass
class Step:
    """Base: a named transformation from one view to the next."""

    name: str
    columns: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # reason columns, named by the pipeline
    dialect: Dialect = field(default=DUCKDB, repr=False)

    def transforms(self) -> dict[str, str]:
        """Column → SQL for its new value, over the step's input."""
        return {}

    def added(self) -> dict[str, str]:
        """New columns → SQL, over the step's input."""
        return {}

    def checks(self) -> list[tuple[str, str]]:
        """``(condition, reason)`` pairs over the step's input: the row fails where it holds."""
        return []

    def out_columns(self) -> list[str]:
        """The data columns of the view this step makes."""
        return self.columns + list(self.added())

    def prepare(self, con: Connection, src: str) -> None:
        """Compute what the SQL or the report needs from the data; default: nothing."""

    def projections(self) -> tuple[dict[str, str], dict[str, str]]:
        """What the step's view changes: (replaced column → SQL, new column → SQL).

        The new columns are the added ones, then per check a flag and a reason; every
        engine builds its view from these.
        """
        new = dict(self.added())
        checks = self.checks()
        assert len(checks) == len(self.reasons), "the pipeline names one column per check"
        for (cond, reason), col in zip(checks, self.reasons, strict=True):
            # the flag is for filters, the reason text only for the failing rows' lists
            new[flag(col)] = f"coalesce({cond}, false)"
            new[col] = f"CASE WHEN {cond} THEN {reason} END"
        return self.transforms(), new

    def sql(self, src: str, dst: str) -> list[str]:
        exprs, new = self.projections()
        items = [
            "* REPLACE (" + ", ".join(f"{e} AS {ident(c)}" for c, e in exprs.items()) + ")"
            if exprs
            else "*"
        ]
        items += [f"{e} AS {ident(c)}" for c, e in new.items()]
        return [f"CREATE VIEW {dst} AS SELECT {', '.join(items)} FROM {src}"]

    def summary(self, failed: int) -> str:
        raise NotImplementedError


@dataclass
class DedupeStep(Step):
    """Moves every row equal to an earlier (keep first) or later (keep last) one on ``on``.

    Duplicates are found by hashing each row's ``on`` values: the hashes are sorted (numpy, or
    a DuckDB aggregate when they would not fit in a quarter of the memory limit), the few
    rows whose hash occurs more than once are compared on their real values, and only rows
    equal on every column are duplicates. No sort or hash table over all rows' values.

    The rows it removes are marked in the loaded table's ``__dw_gone`` column, which the
    pipeline adds (and shows the table's ``rowid`` as ``__dw_rowid``): a filter on it keeps
    the source order, where an anti-join with the duplicates would let blocks of rows come
    out in another order.
    """

    on: list[str] = field(default_factory=list)
    keep: str = "first"
    table: str = ""  # the loaded table; set by the pipeline
    removed: int = 0

    def prepare(self, con: Connection, src: str) -> None:
        # DuckDB only: other engines use groups_sql and marked_sql
        assert isinstance(con, duckdb.DuckDBPyConnection), "other engines dedupe by join"
        keys = ", ".join(ident(c) for c in self.on)
        hashes = duplicate_hashes(con, f"SELECT hash({keys}) FROM {src}")
        pick = "max" if self.keep == "last" else "min"
        # NULLs compare equal here, as in GROUP BY: two rows missing the same values are equal
        with unordered(con):  # the quarantine is sorted when written
            con.execute(
                f"CREATE TABLE {DUPLICATES} AS SELECT * FROM ("
                f"SELECT *, {pick}({ROW}) OVER (PARTITION BY {keys}) AS {KEEP} FROM {src} "
                f"WHERE hash({keys}) IN (SELECT h FROM {hashes})) WHERE {ROW} <> {KEEP}"
            )
        con.execute(f"DROP TABLE {hashes}")
        # by rowid, which DuckDB updates without a join
        con.execute(
            f"UPDATE {self.table} SET {GONE} = true "
            f"WHERE rowid IN (SELECT {ROWID} FROM {DUPLICATES})"
        )
        self.removed = _count(con, f"SELECT count(*) FROM {DUPLICATES}")

    def groups_sql(self, src: str) -> str:
        """Plain SQL: each group of equal rows of ``src``, its ``on`` values, the row kept
        and the group's size (``__dw_n``).

        With :meth:`marked_sql`, what ``prepare`` finds, for engines that spread the rows
        over machines anyway (Spark). NULLs compare equal, as in ``prepare``.
        """
        keys = ", ".join(ident(c) for c in self.on)
        pick = "max" if self.keep == "last" else "min"
        return (
            f"SELECT {keys}, {pick}({ROW}) AS {KEEP}, count(*) AS {GROUP_SIZE} FROM {src} "
            f"GROUP BY {keys} HAVING count(*) > 1"
        )

    def marked_sql(self, src: str, groups: str) -> str:
        """Plain SQL: every row of ``src`` with ``__dw_keep``, the row kept of its group
        (NULL for a row equal to no other); rows with another ``__dw_row`` are duplicates."""
        on = " AND ".join(f"s.{ident(c)} IS NOT DISTINCT FROM g.{ident(c)}" for c in self.on)
        return f"SELECT s.*, g.{KEEP} FROM {src} s LEFT JOIN {groups} g ON {on}"

    def sql(self, src: str, dst: str) -> list[str]:
        return [f"CREATE VIEW {dst} AS SELECT * FROM {src} WHERE NOT {GONE}"]

    def summary(self, failed: int) -> str:
        return f"removed {self.removed} duplicate rows (moved to quarantine)"


def duplicate_hashes(
    con: duckdb.DuckDBPyConnection, hash_sql: str, budget: int | None = None
) -> str:
    """A table ``__dw_dup_hashes(h)`` of the hashes that ``hash_sql`` returns more than once.

    Sorting the 64-bit hashes in numpy costs a fraction of a hash aggregate over every row.
    When they need more than ``budget`` bytes (default: a quarter of DuckDB's memory limit),
    DuckDB's aggregate, which spills to disk, finds them instead.
    """
    table = "__dw_dup_hashes"
    if budget is None:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
        budget = size_bytes(str(limit[0])) // 4 if limit else 0
    rows = _count(con, f"SELECT count(*) FROM ({hash_sql})")
    if rows * 8 > budget:
        con.execute(
            f"CREATE TABLE {table} AS SELECT h FROM ({hash_sql}) t(h) GROUP BY h "
            "HAVING count(*) > 1"
        )
        return table
    with unordered(con):  # they are sorted next
        column = con.execute(hash_sql).fetchnumpy()
    h = np.asarray(next(iter(column.values())), dtype=np.uint64)
    h.sort()
    repeated = np.unique(h[1:][h[1:] == h[:-1]])
    del h
    if len(repeated) <= LIST_MAX:
        # a list parameter converts value by value (~0.5 µs each) but, unlike an Arrow
        # scan, does not make DuckDB import pandas (~0.2 s and ~50 MB)
        con.execute(f"CREATE TABLE {table} AS SELECT unnest($1::UBIGINT[]) AS h", [repeated])
    else:
        con.from_arrow(pa.table({"h": pa.array(repeated, pa.uint64())})).create(table)
    return table


@dataclass
class DropMissingStep(Step):
    critical: list[str] = field(default_factory=list)

    def checks(self) -> list[tuple[str, str]]:
        return [
            (
                f"nullif(trim({self.dialect.to_text(ident(c))}), '') IS NULL",
                self.dialect.lit(f"drop_missing: {c} is missing"),
            )
            for c in self.critical
        ]

    def summary(self, failed: int) -> str:
        return f"quarantined {failed} rows missing {', '.join(self.critical)}"


@dataclass
class FillStep(Step):
    defaults: dict[str, object] = field(default_factory=dict)
    filled: int = 0

    def prepare(self, con: Connection, src: str) -> None:
        sums = " + ".join(f"count(*) FILTER (WHERE {ident(c)} IS NULL)" for c in self.defaults)
        self.filled = _count(con, f"SELECT {sums} FROM {src}")

    def transforms(self) -> dict[str, str]:
        return {c: f"coalesce({ident(c)}, {self.dialect.lit(v)})" for c, v in self.defaults.items()}

    def summary(self, failed: int) -> str:
        return f"filled {self.filled} missing values in {', '.join(self.defaults)}"


_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


@dataclass
class StandardiseStep(Step):
    fixes: list[Standardise] = field(default_factory=list)
    changed: int = 0

    def _expr(self, fix: Standardise) -> str:
        d = self.dialect
        col = d.to_text(ident(fix.column))
        if fix.how == "trim":
            return f"trim({col})"
        if fix.how in ("lower", "upper"):
            return f"{fix.how}({col})"
        if fix.how == "email":
            return f"lower(trim({col}))"
        if fix.how == "phone":
            return f"nullif('+' || {d.digits(col)}, '+')"
        tries = ", ".join(d.parse_time(f"trim({col})", f) for f in fix.input_formats)
        return f"CAST(coalesce({tries}) AS DATE)"

    def checks(self) -> list[tuple[str, str]]:
        checks = []
        lit = self.dialect.lit
        for fix in self.fixes:
            raw = ident(fix.column)
            new = self._expr(fix)
            if fix.how == "email":
                bad = f"NOT {self.dialect.full_match(new, _EMAIL)}"
            elif fix.how == "phone":
                bad = f"length({new}) < 8"
            elif fix.how == "date":
                bad = f"{new} IS NULL"
            else:
                continue
            detail = (
                f"'standardise: ' || {lit(fix.column)} || ' value ' || {raw} || "
                f"{lit(' is not a valid ' + fix.how)}"
            )
            checks.append((f"{raw} IS NOT NULL AND {bad}", detail))
        return checks

    def prepare(self, con: Connection, src: str) -> None:
        text = self.dialect.to_text
        sums = " + ".join(
            f"count(*) FILTER (WHERE {text(ident(f.column))} "
            f"IS DISTINCT FROM {text(self._expr(f))})"
            for f in self.fixes
        )
        self.changed = _count(con, f"SELECT {sums} FROM {src}")

    def transforms(self) -> dict[str, str]:
        exprs: dict[str, str] = {}
        for fix in self.fixes:  # several fixes on one column apply in order
            inner = exprs.get(fix.column, ident(fix.column))
            exprs[fix.column] = self._expr(fix).replace(ident(fix.column), inner)
        return exprs

    def summary(self, failed: int) -> str:
        return f"changed {self.changed} values; quarantined {failed} rows with invalid values"


def distribution(con: Connection, src: str, x: str) -> list[tuple[float, int]] | None:
    """The values of ``x`` over ``src`` with how often each occurs; None past
    :data:`EXACT_DISTINCT` distinct values.

    Outlier bounds are computed from it exactly, so they are the same on every engine and
    thread count: a parallel floating-point sum (``avg``, ``stddev_samp``) depends on the
    order the rows arrive in, and changes in its last digits from run to run.
    """
    rows = con.execute(
        f"SELECT v, count(*) FROM (SELECT {x} AS v FROM {src}) d WHERE v IS NOT NULL "
        f"GROUP BY v LIMIT {EXACT_DISTINCT + 1}"
    ).fetchall()
    if len(rows) > EXACT_DISTINCT:
        return None
    # + 0.0 turns -0.0 into 0.0, which engines group together either way
    return [(float(v) + 0.0, int(n)) for v, n in rows]


def _finite(dist: list[tuple[float, int]]) -> list[tuple[float, int]]:
    return sorted((v, c) for v, c in dist if math.isfinite(v))


def quantile(dist: list[tuple[float, int]], q: float) -> float | None:
    """The ``q`` quantile of the finite values, interpolated as DuckDB's ``quantile_cont``."""
    values = _finite(dist)
    n = sum(c for _, c in values)
    if not n:
        return None
    h = (n - 1) * q
    at = [int(math.floor(h)), int(math.ceil(h))]
    found: list[float] = []
    seen = 0
    for value, count in values:
        seen += count
        while at and at[0] < seen:
            found.append(value)
            at.pop(0)
    lo, hi = found
    return lo + (hi - lo) * (h - math.floor(h))


def mean_sd(dist: list[tuple[float, int]]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite values, summed exactly as fractions."""
    values = [(Fraction(v), c) for v, c in _finite(dist)]
    n = sum(c for _, c in values)
    if not n:
        return None, None
    mean = sum((v * c for v, c in values), Fraction(0)) / n
    if n < 2:
        return float(mean), None
    var = sum((c * (v - mean) ** 2 for v, c in values), Fraction(0)) / (n - 1)
    return float(mean), math.sqrt(float(var))


def outside(dist: list[tuple[float, int]], low: float | None, high: float | None) -> int:
    """How many values are below ``low`` or above ``high``; NaN is above every number, as
    DuckDB and Spark order it."""
    return sum(
        c
        for v, c in dist
        if (low is not None and v < low) or (high is not None and (math.isnan(v) or v > high))
    )


@dataclass
class OutliersStep(Step):
    check: Outliers | None = None
    low: float | None = None
    high: float | None = None
    column_type: str = "VARCHAR"
    outside: int = 0

    def prepare(self, con: Connection, src: str) -> None:
        assert self.check is not None
        c = self.check
        d = self.dialect
        self.column_type = describe(con, src).get(c.column, d.text)
        x = d.to_double(ident(c.column))
        if c.method == "rule":
            self.low, self.high = c.min, c.max
        dist = distribution(con, src, x)  # None: too many distinct values, the engine's stats
        if c.method == "iqr":
            k = c.k or 1.5
            q1, q3 = self._quartiles(con, src, x, dist)
            if q1 is not None and q3 is not None:
                self.low, self.high = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
        elif c.method == "zscore":
            k = c.k or 3.0
            mean, sd = self._mean_sd(con, src, x, dist)
            if mean is not None and sd is not None:
                self.low, self.high = mean - k * sd, mean + k * sd
        if dist is None:
            self.outside = _count(con, f"SELECT count(*) FROM {src} WHERE {self._outside()}")
        else:
            self.outside = outside(dist, self.low, self.high)

    def _quartiles(
        self, con: Connection, src: str, x: str, dist: list[tuple[float, int]] | None
    ) -> tuple[float | None, ...]:
        if dist is None:
            d = self.dialect
            got = con.execute(f"SELECT {d.quantile(x, 0.25)}, {d.quantile(x, 0.75)} FROM {src}")
            return tuple(got.fetchone() or (None, None))
        return quantile(dist, 0.25), quantile(dist, 0.75)

    def _mean_sd(
        self, con: Connection, src: str, x: str, dist: list[tuple[float, int]] | None
    ) -> tuple[float | None, ...]:
        if dist is None:
            got = con.execute(f"SELECT avg({x}), stddev_samp({x}) FROM {src}")
            return tuple(got.fetchone() or (None, None))
        return mean_sd(dist)

    def _outside(self) -> str:
        assert self.check is not None
        x = self.dialect.to_double(ident(self.check.column))
        parts = []
        if self.low is not None:
            parts.append(f"{x} < {self.low!r}")
        if self.high is not None:
            parts.append(f"{x} > {self.high!r}")
        return "(" + " OR ".join(parts) + ")" if parts else "false"

    def added(self) -> dict[str, str]:
        assert self.check is not None
        if self.check.action != "flag":
            return {}
        return {self.check.column + "_outlier": f"coalesce({self._outside()}, false)"}

    def checks(self) -> list[tuple[str, str]]:
        assert self.check is not None
        c = self.check
        if c.action != "drop":
            return []
        reason = self.dialect.lit(
            f"outliers: {c.column} outside [{self.low}, {self.high}] ({c.method})"
        )
        return [(f"coalesce({self._outside()}, false)", reason)]

    def transforms(self) -> dict[str, str]:
        assert self.check is not None
        c = self.check
        if c.action != "clip":
            return {}
        d = self.dialect
        if d.is_text(self.column_type):
            return {c.column: self._clipped_text()}
        x = d.to_double(ident(c.column))
        clipped = x
        if self.low is not None:
            clipped = f"greatest({clipped}, {self.low!r})"
        if self.high is not None:
            clipped = f"least({clipped}, {self.high!r})"
        clipped = d.cast(clipped, self.column_type)
        return {c.column: f"CASE WHEN {self._outside()} THEN {clipped} ELSE {ident(c.column)} END"}

    def _clipped_text(self) -> str:
        """Text stays text: a value below the bounds becomes the low bound's text, one above
        them the high bound's, 100.0 written as 100 and other numbers as their shortest
        round-trip form (Python's repr, which is also how DuckDB writes a DOUBLE)."""
        assert self.check is not None
        col = ident(self.check.column)
        x = self.dialect.to_double(col)

        def text(bound: float) -> str:
            return self.dialect.lit(str(int(bound)) if float(bound).is_integer() else repr(bound))

        cases = []
        if self.low is not None:  # as least(greatest(x, low), high) would clip it
            low = self.low if self.high is None else min(self.low, self.high)
            cases.append(f"WHEN {x} < {self.low!r} THEN {text(low)}")
        if self.high is not None:
            cases.append(f"WHEN {x} > {self.high!r} THEN {text(self.high)}")
        return f"CASE {' '.join(cases)} ELSE {col} END" if cases else col

    def summary(self, failed: int) -> str:
        assert self.check is not None
        c = self.check
        verb = {"drop": "quarantined", "flag": "flagged", "clip": "clipped"}[c.action]
        return f"{c.column}: {verb} {self.outside} rows outside [{self.low}, {self.high}]"


@dataclass
class TypesStep(Step):
    types: dict[str, str] = field(default_factory=dict)
    native: dict[str, str] = field(default_factory=dict)  # the input's engine types

    def prepare(self, con: Connection, src: str) -> None:
        self.native = describe(con, src)

    def transforms(self) -> dict[str, str]:
        d = self.dialect
        return {
            c: d.convert(ident(c), t, self.native.get(c, d.text)) for c, t in self.types.items()
        }

    def checks(self) -> list[tuple[str, str]]:
        exprs = self.transforms()
        d = self.dialect
        return [
            (
                f"{ident(c)} IS NOT NULL AND {exprs[c]} IS NULL",
                f"'types: ' || {d.lit(c)} || ' value ' || {d.to_text(ident(c))} || "
                f"{d.lit(' is not ' + t)}",
            )
            for c, t in self.types.items()
        ]

    def summary(self, failed: int) -> str:
        names = ", ".join(self.types)
        return f"converted {names}; quarantined {failed} rows with values that do not convert"


@dataclass
class RulesStep(Step):
    rules: list[Rule] = field(default_factory=list)

    def validate(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
        """A ConfigError for a rule naming an unknown column or that is not valid SQL."""
        for rule in self.rules:
            try:
                con.execute(f"EXPLAIN SELECT ({rule.expr}) FROM {src}")
            except duckdb.BinderException as exc:
                raise self.cannot_check(rule, str(exc)) from None
            except duckdb.Error as exc:
                raise self.not_sql(rule, str(exc)) from None

    def cannot_check(self, rule: Rule, error: str) -> ConfigError:
        """The error for a rule the engine cannot bind (an unknown column, a type clash)."""
        return ConfigError(
            f"rule {rule.label!r} ({rule.expr}) cannot be checked: {error.splitlines()[0]}. "
            f"The table's columns are: {', '.join(self.columns)}"
        )

    def not_sql(self, rule: Rule, error: str) -> ConfigError:
        """The error for a rule the engine cannot parse."""
        return ConfigError(
            f"rule {rule.label!r} is not a valid SQL boolean expression: {rule.expr!r} "
            f"({error.splitlines()[0]}); write it like amount > 0 or stage in ('won', 'lost')"
        )

    def prepare(self, con: Connection, src: str) -> None:
        assert isinstance(con, duckdb.DuckDBPyConnection), "other engines validate themselves"
        self.validate(con, src)

    def checks(self) -> list[tuple[str, str]]:
        lit = self.dialect.lit
        return [
            (f"NOT coalesce(({r.expr}), false)", lit(f"rule {r.label}: failed ({r.expr})"))
            for r in self.rules
        ]

    def summary(self, failed: int) -> str:
        return f"{len(self.rules)} rules: {failed} rows failed at least one"


def build_steps(
    spec: CleanSpec, source: TableSource, columns: list[str], dialect: Dialect = DUCKDB
) -> list[Step]:
    """The steps of ``spec`` in run order, with their columns checked against the table.

    ``dialect`` spells their SQL for the engine that runs them (DuckDB unless told).
    """
    steps: list[Step] = []
    cols = list(columns)
    if spec.dedupe:
        on = cols if spec.dedupe.on == "all" else source.key
        if not on:
            raise ConfigError(
                f"{source.name}: dedupe on: key needs key columns; set key: [..] on the source "
                f"(columns: {', '.join(cols)}) or use dedupe on: all"
            )
        check_columns(on, cols, f"{source.name}: key")
        steps.append(DedupeStep("dedupe", cols, dialect=dialect, on=on, keep=spec.dedupe.keep))
    if spec.drop_missing:
        critical = spec.drop_missing.columns or source.critical
        if not critical:
            raise ConfigError(
                f"{source.name}: drop_missing has no columns; list them under drop_missing: "
                "columns: [..] or critical: [..] on the source"
            )
        check_columns(critical, cols, f"{source.name}: critical columns")
        steps.append(DropMissingStep("drop_missing", cols, dialect=dialect, critical=critical))
    if spec.fill:
        check_columns(list(spec.fill), cols, f"{source.name}: fill")
        steps.append(FillStep("fill", cols, dialect=dialect, defaults=dict(spec.fill)))
    if spec.standardise:
        check_columns([f.column for f in spec.standardise], cols, f"{source.name}: standardise")
        fixes = list(spec.standardise)
        steps.append(StandardiseStep("standardise", cols, dialect=dialect, fixes=fixes))
    for check in spec.outliers:
        check_columns([check.column], cols, f"{source.name}: outliers")
        name = f"outliers:{check.column}"
        steps.append(OutliersStep(name, list(cols), dialect=dialect, check=check))
        if check.action == "flag":
            cols = cols + [check.column + "_outlier"]
    if spec.types:
        check_columns(list(spec.types), cols, f"{source.name}: types")
        steps.append(TypesStep("types", cols, dialect=dialect, types=dict(spec.types)))
    rules = spec.rule_list()
    if rules:
        steps.append(RulesStep("rules", cols, dialect=dialect, rules=rules))
    return steps
