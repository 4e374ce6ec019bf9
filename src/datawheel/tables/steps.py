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

Every piece of SQL that engines spell differently goes through the step's :class:`Dialect`
(``tables/dialect.py``): the base class is DuckDB's spelling and the reference semantics;
``tables/spark_dialect.py`` has the Spark SQL one, which must give the same values. The
outlier step, with its exact statistics, is in ``tables/outliers.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from datawheel.errors import ConfigError
from datawheel.tables.dialect import (
    DUCKDB,
    Connection,
    Dialect,
    describe,
    size_bytes,
    unordered,
)
from datawheel.tables.read import ROW, ident
from datawheel.tables.spec import (
    CleanSpec,
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


def flag(reason: str) -> str:
    """The boolean column beside reason column ``__dw_r<n>``: true where the row fails."""
    return FLAG + reason.removeprefix(REASON)


def fetch_count(con: Connection, sql: str) -> int:
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
        self.removed = fetch_count(con, f"SELECT count(*) FROM {DUPLICATES}")

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
    rows = fetch_count(con, f"SELECT count(*) FROM ({hash_sql})")
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
class NaValuesStep(Step):
    """Placeholder values (ERROR, UNKNOWN, n/a) read as missing, in every column."""

    values: list[str] = field(default_factory=list)
    found: int = 0

    def _is_placeholder(self, col: str) -> str:
        listed = ", ".join(self.dialect.lit(v) for v in self.values)
        return f"trim({self.dialect.to_text(ident(col))}) IN ({listed})"

    def prepare(self, con: Connection, src: str) -> None:
        sums = " + ".join(
            f"count(*) FILTER (WHERE {self._is_placeholder(c)})" for c in self.columns
        )
        self.found = fetch_count(con, f"SELECT {sums} FROM {src}")

    def transforms(self) -> dict[str, str]:
        return {
            c: f"CASE WHEN {self._is_placeholder(c)} THEN NULL ELSE {ident(c)} END"
            for c in self.columns
        }

    def summary(self, failed: int) -> str:
        listed = ", ".join(self.values)
        return f"read {self.found} placeholder values ({listed}) as missing"


@dataclass
class FillStep(Step):
    defaults: dict[str, object] = field(default_factory=dict)
    filled: int = 0

    def prepare(self, con: Connection, src: str) -> None:
        sums = " + ".join(f"count(*) FILTER (WHERE {ident(c)} IS NULL)" for c in self.defaults)
        self.filled = fetch_count(con, f"SELECT {sums} FROM {src}")

    def transforms(self) -> dict[str, str]:
        return {c: f"coalesce({ident(c)}, {self.dialect.lit(v)})" for c, v in self.defaults.items()}

    def summary(self, failed: int) -> str:
        return f"filled {self.filled} missing values in {', '.join(self.defaults)}"


_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_WHOLE_GROUPED = r"^[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)"  # dots only between groups of 3
#: 1.234.567,89 or 1234567,89 or -12
_DECIMAL_COMMA = _WHOLE_GROUPED + r"(,[0-9]+)?$"
#: a number that only a decimal comma keeps from converting: 10,5 or 1.234,5
#: what how: number drops: currency signs and codes, spaces, and thousands commas
_MONEY = r"[$€£¥₹\s]|USD|EUR|GBP|JPY|INR|CHF|CAD|AUD"
_PLAIN_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
_OTHER_DATE = r"[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}.*"
_COMMA_NUMBER = _WHOLE_GROUPED + r",[0-9]+$"


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
        if fix.how == "decimal_comma":
            return f"replace(replace(trim({col}), '.', ''), ',', '.')"
        if fix.how == "number":
            return d.ungroup(d.remove(f"trim({col})", _MONEY))
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
            elif fix.how == "number":
                bad = f"NOT {self.dialect.full_match(new, _PLAIN_NUMBER)}"
            elif fix.how == "decimal_comma":  # "10.5" would silently become 105
                text = f"trim({self.dialect.to_text(raw)})"
                bad = f"NOT {self.dialect.full_match(text, _DECIMAL_COMMA)}"
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
        self.changed = fetch_count(con, f"SELECT {sums} FROM {src}")

    def transforms(self) -> dict[str, str]:
        exprs: dict[str, str] = {}
        for fix in self.fixes:  # several fixes on one column apply in order
            inner = exprs.get(fix.column, ident(fix.column))
            exprs[fix.column] = self._expr(fix).replace(ident(fix.column), inner)
        return exprs

    def summary(self, failed: int) -> str:
        return f"changed {self.changed} values; quarantined {failed} rows with invalid values"


@dataclass
class TypesStep(Step):
    types: dict[str, str] = field(default_factory=dict)
    native: dict[str, str] = field(default_factory=dict)  # the input's engine types
    future_days: int | None = None  # dates further ahead than this are quarantined

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
        checks = []
        for c, t in self.types.items():
            text = d.to_text(ident(c))
            detail = f"'types: ' || {d.lit(c)} || ' value ' || {text} || {d.lit(' is not ' + t)}"
            if t in ("integer", "double"):  # "10,5": say how to read a European number
                comma = d.full_match(f"trim({text})", _COMMA_NUMBER)
                hint = d.lit(f" (a decimal comma? standardise {c} with how: decimal_comma)")
                detail += f" || CASE WHEN {comma} THEN {hint} ELSE '' END"
            if t in ("date", "timestamp"):  # 12/1/10: which is the day, which the year?
                other = d.full_match(f"trim({text})", _OTHER_DATE)
                hint = d.lit(
                    f" (a date written day/month/year or month/day/year? standardise {c} with "
                    f"how: date and input_formats such as ['%d/%m/%Y'] or ['%m/%d/%y'])"
                )
                detail += f" || CASE WHEN {other} THEN {hint} ELSE '' END"
            checks.append((f"{ident(c)} IS NOT NULL AND {exprs[c]} IS NULL", detail))
            if t in ("date", "timestamp") and self.future_days is not None:
                ahead = d.lit(
                    f" is more than {self.future_days} days in the future "
                    "(clean.future_days; a typo'd year?)"
                )
                checks.append(
                    (
                        f"{exprs[c]} > {d.days_from_today(self.future_days)}",
                        f"'types: ' || {d.lit(c)} || ' value ' || {text} || {ahead}",
                    )
                )
        return checks

    def summary(self, failed: int) -> str:
        names = ", ".join(self.types)
        ahead = " or lie past clean.future_days" if self.future_days is not None else ""
        return (
            f"converted {names}; quarantined {failed} rows with values that do not convert{ahead}"
        )


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
        hint = ""
        used = [c for c in self.columns if re.search(rf"(?<!\w){re.escape(c)}(?!\w)", rule.expr)]
        if used and re.search(r"VARCHAR|STRING", error, re.IGNORECASE):
            hint = (
                f" Columns are read as text unless typed: declare {', '.join(used)} under the "
                f"source's clean.types (e.g. types: {{{used[0]}: double}}) and the rule "
                "compares numbers or dates."
            )
        return ConfigError(
            f"rule {rule.label!r} ({rule.expr}) cannot be checked: {error.splitlines()[0]}."
            f"{hint} The table's columns are: {', '.join(self.columns)}"
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
            (f"NOT coalesce(({r.expr}), true)", lit(f"rule {r.label}: failed ({r.expr})"))
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
    from datawheel.tables.outliers import OutliersStep  # a Step subclass: it imports this

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
    if spec.na_values:
        steps.append(NaValuesStep("na_values", cols, dialect=dialect, values=list(spec.na_values)))
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
        steps.append(
            TypesStep(
                "types",
                cols,
                dialect=dialect,
                types=dict(spec.types),
                future_days=spec.future_days,
            )
        )
    rules = spec.rule_list()
    if rules:
        steps.append(RulesStep("rules", cols, dialect=dialect, rules=rules))
    return steps
