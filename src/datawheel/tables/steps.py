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
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

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
ROWID = "__dw_rowid"
LIST_MAX = 1 << 20  # repeated hashes handed to DuckDB as a list parameter at most
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


@contextmanager
def unordered(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Let DuckDB return rows in any order (cheaper in parallel) for the queries inside."""
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = true")


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


@dataclass
class Step:
    """Base: a named transformation from one view to the next."""

    name: str
    columns: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # reason columns, named by the pipeline

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

    def prepare(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
        """Compute what the SQL or the report needs from the data; default: nothing."""

    def sql(self, src: str, dst: str) -> list[str]:
        exprs = self.transforms()
        items = [
            "* REPLACE (" + ", ".join(f"{e} AS {ident(c)}" for c, e in exprs.items()) + ")"
            if exprs
            else "*"
        ]
        items += [f"{e} AS {ident(c)}" for c, e in self.added().items()]
        checks = self.checks()
        assert len(checks) == len(self.reasons), "the pipeline names one column per check"
        for (cond, reason), col in zip(checks, self.reasons, strict=True):
            # the flag is for filters, the reason text only for the failing rows' lists
            items.append(f"coalesce({cond}, false) AS {flag(col)}")
            items.append(f"CASE WHEN {cond} THEN {reason} END AS {col}")
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

    def prepare(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
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
                f"nullif(trim(CAST({ident(c)} AS VARCHAR)), '') IS NULL",
                lit(f"drop_missing: {c} is missing"),
            )
            for c in self.critical
        ]

    def summary(self, failed: int) -> str:
        return f"quarantined {failed} rows missing {', '.join(self.critical)}"


@dataclass
class FillStep(Step):
    defaults: dict[str, object] = field(default_factory=dict)
    filled: int = 0

    def prepare(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
        sums = " + ".join(f"count(*) FILTER (WHERE {ident(c)} IS NULL)" for c in self.defaults)
        self.filled = _count(con, f"SELECT {sums} FROM {src}")

    def transforms(self) -> dict[str, str]:
        return {c: f"coalesce({ident(c)}, {lit(v)})" for c, v in self.defaults.items()}

    def summary(self, failed: int) -> str:
        return f"filled {self.filled} missing values in {', '.join(self.defaults)}"


_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


@dataclass
class StandardiseStep(Step):
    fixes: list[Standardise] = field(default_factory=list)
    changed: int = 0

    def _expr(self, fix: Standardise) -> str:
        col = f"CAST({ident(fix.column)} AS VARCHAR)"
        if fix.how == "trim":
            return f"trim({col})"
        if fix.how in ("lower", "upper"):
            return f"{fix.how}({col})"
        if fix.how == "email":
            return f"lower(trim({col}))"
        if fix.how == "phone":
            return f"nullif('+' || regexp_replace({col}, '[^0-9]', '', 'g'), '+')"
        tries = ", ".join(f"try_strptime(trim({col}), {lit(f)})" for f in fix.input_formats)
        return f"CAST(coalesce({tries}) AS DATE)"

    def checks(self) -> list[tuple[str, str]]:
        checks = []
        for fix in self.fixes:
            raw = ident(fix.column)
            new = self._expr(fix)
            if fix.how == "email":
                bad = f"NOT regexp_full_match({new}, {lit(_EMAIL)})"
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

    def prepare(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
        sums = " + ".join(
            f"count(*) FILTER (WHERE CAST({ident(f.column)} AS VARCHAR) "
            f"IS DISTINCT FROM CAST({self._expr(f)} AS VARCHAR))"
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


@dataclass
class OutliersStep(Step):
    check: Outliers | None = None
    low: float | None = None
    high: float | None = None
    column_type: str = "VARCHAR"
    outside: int = 0

    def prepare(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
        assert self.check is not None
        c = self.check
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {src}").fetchall()}
        self.column_type = types.get(c.column, "VARCHAR")
        x = f"TRY_CAST({ident(c.column)} AS DOUBLE)"
        if c.method == "rule":
            self.low, self.high = c.min, c.max
        elif c.method == "iqr":
            k = c.k or 1.5
            q1, q3 = con.execute(
                f"SELECT quantile_cont({x}, 0.25), quantile_cont({x}, 0.75) FROM {src}"
            ).fetchone() or (None, None)
            if q1 is not None and q3 is not None:
                self.low, self.high = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
        else:
            k = c.k or 3.0
            mean, sd = con.execute(f"SELECT avg({x}), stddev_samp({x}) FROM {src}").fetchone() or (
                None,
                None,
            )
            if mean is not None and sd is not None:
                self.low, self.high = mean - k * sd, mean + k * sd
        self.outside = _count(con, f"SELECT count(*) FROM {src} WHERE {self._outside()}")

    def _outside(self) -> str:
        assert self.check is not None
        x = f"TRY_CAST({ident(self.check.column)} AS DOUBLE)"
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
        reason = lit(f"outliers: {c.column} outside [{self.low}, {self.high}] ({c.method})")
        return [(f"coalesce({self._outside()}, false)", reason)]

    def transforms(self) -> dict[str, str]:
        assert self.check is not None
        c = self.check
        if c.action != "clip":
            return {}
        x = f"TRY_CAST({ident(c.column)} AS DOUBLE)"
        clipped = x
        if self.low is not None:
            clipped = f"greatest({clipped}, {self.low!r})"
        if self.high is not None:
            clipped = f"least({clipped}, {self.high!r})"
        if self.column_type == "VARCHAR":  # keep text text: 100.0 is written as 100
            clipped = (
                f"CASE WHEN {clipped} = round({clipped}) THEN CAST(CAST({clipped} AS BIGINT) "
                f"AS VARCHAR) ELSE CAST({clipped} AS VARCHAR) END"
            )
        else:
            clipped = f"CAST({clipped} AS {self.column_type})"
        return {c.column: f"CASE WHEN {self._outside()} THEN {clipped} ELSE {ident(c.column)} END"}

    def summary(self, failed: int) -> str:
        assert self.check is not None
        c = self.check
        verb = {"drop": "quarantined", "flag": "flagged", "clip": "clipped"}[c.action]
        return f"{c.column}: {verb} {self.outside} rows outside [{self.low}, {self.high}]"


@dataclass
class TypesStep(Step):
    types: dict[str, str] = field(default_factory=dict)

    def transforms(self) -> dict[str, str]:
        return {c: f"TRY_CAST({ident(c)} AS {SQL_TYPES[t]})" for c, t in self.types.items()}

    def checks(self) -> list[tuple[str, str]]:
        exprs = self.transforms()
        return [
            (
                f"{ident(c)} IS NOT NULL AND {exprs[c]} IS NULL",
                f"'types: ' || {lit(c)} || ' value ' || CAST({ident(c)} AS VARCHAR) || "
                f"{lit(' is not ' + t)}",
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
                msg = str(exc).splitlines()[0]
                raise ConfigError(
                    f"rule {rule.label!r} ({rule.expr}) cannot be checked: {msg}. "
                    f"The table's columns are: {', '.join(self.columns)}"
                ) from None
            except duckdb.Error as exc:
                msg = str(exc).splitlines()[0]
                raise ConfigError(
                    f"rule {rule.label!r} is not a valid SQL boolean expression: {rule.expr!r} "
                    f"({msg}); write it like amount > 0 or stage in ('won', 'lost')"
                ) from None

    def prepare(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
        self.validate(con, src)

    def checks(self) -> list[tuple[str, str]]:
        return [
            (f"NOT coalesce(({r.expr}), false)", lit(f"rule {r.label}: failed ({r.expr})"))
            for r in self.rules
        ]

    def summary(self, failed: int) -> str:
        return f"{len(self.rules)} rules: {failed} rows failed at least one"


def build_steps(spec: CleanSpec, source: TableSource, columns: list[str]) -> list[Step]:
    """The steps of ``spec`` in run order, with their columns checked against the table."""
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
        steps.append(DedupeStep("dedupe", cols, on=on, keep=spec.dedupe.keep))
    if spec.drop_missing:
        critical = spec.drop_missing.columns or source.critical
        if not critical:
            raise ConfigError(
                f"{source.name}: drop_missing has no columns; list them under drop_missing: "
                "columns: [..] or critical: [..] on the source"
            )
        check_columns(critical, cols, f"{source.name}: critical columns")
        steps.append(DropMissingStep("drop_missing", cols, critical=critical))
    if spec.fill:
        check_columns(list(spec.fill), cols, f"{source.name}: fill")
        steps.append(FillStep("fill", cols, defaults=dict(spec.fill)))
    if spec.standardise:
        check_columns([f.column for f in spec.standardise], cols, f"{source.name}: standardise")
        steps.append(StandardiseStep("standardise", cols, fixes=list(spec.standardise)))
    for check in spec.outliers:
        check_columns([check.column], cols, f"{source.name}: outliers")
        steps.append(OutliersStep(f"outliers:{check.column}", list(cols), check=check))
        if check.action == "flag":
            cols = cols + [check.column + "_outlier"]
    if spec.types:
        check_columns(list(spec.types), cols, f"{source.name}: types")
        steps.append(TypesStep("types", cols, types=dict(spec.types)))
    rules = spec.rule_list()
    if rules:
        steps.append(RulesStep("rules", cols, rules=rules))
    return steps
