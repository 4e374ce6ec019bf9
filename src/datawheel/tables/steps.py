"""Cleaning steps as SQL, one small class per step.

Each step turns the table ``src`` into ``dst`` with ``sql(src, dst)`` (plain SQL statements,
so another engine such as Spark SQL can run the same plan) and then says what it changed with
``summary(con, dst)``. Steps never delete a row that fails a check: they append a reason
(``"<check>: <detail>"``) to the row's ``__dw_fail`` list, so a row that breaks three rules is
quarantined once with all three reasons. Only dedupe removes rows, and it moves them to the
``dw_duplicates`` table, which is quarantined too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

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

FAIL = "__dw_fail"
DUPLICATES = "dw_duplicates"


def lit(value: object) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _fail_if(checks: list[tuple[str, str]]) -> str:
    """SQL that appends ``reason`` to the fail list for each ``(condition, reason)`` that holds."""
    cases = ", ".join(f"CASE WHEN {cond} THEN {reason} END" for cond, reason in checks)
    return f"list_concat({FAIL}, list_filter([{cases}], lambda x: x IS NOT NULL)) AS {FAIL}"


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _failed_with(con: duckdb.DuckDBPyConnection, table: str, prefix: str) -> int:
    return _count(
        con,
        f"SELECT count(*) FROM {table} WHERE len(list_filter({FAIL}, "
        f"lambda x: starts_with(x, {lit(prefix)}))) > 0",
    )


@dataclass
class Step:
    """Base: a named transformation from one table to the next."""

    name: str
    columns: list[str] = field(default_factory=list)

    def sql(self, src: str, dst: str) -> list[str]:
        raise NotImplementedError

    def out_columns(self) -> list[str]:
        """The data columns of the table this step makes."""
        return self.columns

    def prepare(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
        """Compute what the SQL needs from the data (bounds, counts); default: nothing."""

    def summary(self, con: duckdb.DuckDBPyConnection, dst: str) -> str:
        raise NotImplementedError

    def _select(self, src: str, dst: str, exprs: dict[str, str], extra: str = "") -> str:
        cols = ", ".join(
            f"{exprs[c]} AS {ident(c)}" if c in exprs else ident(c) for c in self.columns
        )
        tail = f", {extra}" if extra else f", {FAIL}"
        return f"CREATE VIEW {dst} AS SELECT {cols}, {ROW}{tail} FROM {src}"


@dataclass
class DedupeStep(Step):
    on: list[str] = field(default_factory=list)
    keep: str = "first"

    def sql(self, src: str, dst: str) -> list[str]:
        # Duplicates are few: one hash aggregate finds the groups with more than one row
        # and the row each keeps; the duplicates are joined against that small table, and
        # every other row passes through untouched, in its order.
        pick = "max" if self.keep == "last" else "min"
        keys = ", ".join(ident(c) for c in self.on)
        order = ", ".join(ident(c) for c in self.columns)
        same = " AND ".join(f"d.{ident(c)} IS NOT DISTINCT FROM g.{ident(c)}" for c in self.on)
        return [
            f"CREATE TABLE __dw_dedup AS SELECT {keys}, {pick}({ROW}) AS __dw_keep "
            f"FROM {src} GROUP BY {keys} HAVING count(*) > 1",
            f"INSERT INTO {DUPLICATES} SELECT d.* EXCLUDE ({FAIL}), "
            f"['dedupe: duplicate of row ' || g.__dw_keep] "
            f"FROM {src} d JOIN __dw_dedup g ON {same} WHERE d.{ROW} <> g.__dw_keep",
            # a table, not a view: later steps read it several times (bounds, counts)
            f"CREATE TABLE {dst} AS SELECT {order}, {ROW}, {FAIL} FROM {src} "
            f"ANTI JOIN (SELECT {ROW} FROM {DUPLICATES}) USING ({ROW})",
        ]

    def summary(self, con: duckdb.DuckDBPyConnection, dst: str) -> str:
        n = _count(con, f"SELECT count(*) FROM {DUPLICATES}")
        return f"removed {n} duplicate rows (moved to quarantine)"


@dataclass
class DropMissingStep(Step):
    critical: list[str] = field(default_factory=list)

    def sql(self, src: str, dst: str) -> list[str]:
        checks = [
            (
                f"nullif(trim(CAST({ident(c)} AS VARCHAR)), '') IS NULL",
                lit(f"drop_missing: {c} is missing"),
            )
            for c in self.critical
        ]
        return [self._select(src, dst, {}, _fail_if(checks))]

    def summary(self, con: duckdb.DuckDBPyConnection, dst: str) -> str:
        n = _failed_with(con, dst, "drop_missing:")
        return f"quarantined {n} rows missing {', '.join(self.critical)}"


@dataclass
class FillStep(Step):
    defaults: dict[str, object] = field(default_factory=dict)
    filled: int = 0

    def prepare(self, con: duckdb.DuckDBPyConnection, src: str) -> None:
        sums = " + ".join(f"count(*) FILTER (WHERE {ident(c)} IS NULL)" for c in self.defaults)
        self.filled = _count(con, f"SELECT {sums} FROM {src}")

    def sql(self, src: str, dst: str) -> list[str]:
        exprs = {c: f"coalesce({ident(c)}, {lit(v)})" for c, v in self.defaults.items()}
        return [self._select(src, dst, exprs)]

    def summary(self, con: duckdb.DuckDBPyConnection, dst: str) -> str:
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

    def _checks(self) -> list[tuple[str, str]]:
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

    def sql(self, src: str, dst: str) -> list[str]:
        exprs: dict[str, str] = {}
        for fix in self.fixes:  # several fixes on one column apply in order
            inner = exprs.get(fix.column, ident(fix.column))
            exprs[fix.column] = self._expr(fix).replace(ident(fix.column), inner)
        checks = self._checks()
        extra = _fail_if(checks) if checks else ""
        return [self._select(src, dst, exprs, extra)]

    def summary(self, con: duckdb.DuckDBPyConnection, dst: str) -> str:
        n = _failed_with(con, dst, "standardise:")
        return f"changed {self.changed} values; quarantined {n} rows with invalid values"


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

    def out_columns(self) -> list[str]:
        assert self.check is not None
        flag = [self.check.column + "_outlier"] if self.check.action == "flag" else []
        return self.columns + flag

    def _outside(self) -> str:
        assert self.check is not None
        x = f"TRY_CAST({ident(self.check.column)} AS DOUBLE)"
        parts = []
        if self.low is not None:
            parts.append(f"{x} < {self.low!r}")
        if self.high is not None:
            parts.append(f"{x} > {self.high!r}")
        return "(" + " OR ".join(parts) + ")" if parts else "false"

    def sql(self, src: str, dst: str) -> list[str]:
        assert self.check is not None
        c, outside = self.check, self._outside()
        if c.action == "drop":
            reason = lit(f"outliers: {c.column} outside [{self.low}, {self.high}] ({c.method})")
            return [self._select(src, dst, {}, _fail_if([(f"coalesce({outside}, false)", reason)]))]
        if c.action == "flag":
            flag = f"coalesce({outside}, false) AS {ident(c.column + '_outlier')}"
            return [self._select(src, dst, {}, f"{flag}, {FAIL}")]
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
        expr = f"CASE WHEN {outside} THEN {clipped} ELSE {ident(c.column)} END"
        return [self._select(src, dst, {c.column: expr})]

    def summary(self, con: duckdb.DuckDBPyConnection, dst: str) -> str:
        assert self.check is not None
        c = self.check
        verb = {"drop": "quarantined", "flag": "flagged", "clip": "clipped"}[c.action]
        return f"{c.column}: {verb} {self.outside} rows outside [{self.low}, {self.high}]"


@dataclass
class TypesStep(Step):
    types: dict[str, str] = field(default_factory=dict)

    def sql(self, src: str, dst: str) -> list[str]:
        exprs = {c: f"TRY_CAST({ident(c)} AS {SQL_TYPES[t]})" for c, t in self.types.items()}
        checks = [
            (
                f"{ident(c)} IS NOT NULL AND {exprs[c]} IS NULL",
                f"'types: ' || {lit(c)} || ' value ' || CAST({ident(c)} AS VARCHAR) || "
                f"{lit(' is not ' + t)}",
            )
            for c, t in self.types.items()
        ]
        return [self._select(src, dst, exprs, _fail_if(checks))]

    def summary(self, con: duckdb.DuckDBPyConnection, dst: str) -> str:
        n = _failed_with(con, dst, "types:")
        names = ", ".join(self.types)
        return f"converted {names}; quarantined {n} rows with values that do not convert"


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

    def sql(self, src: str, dst: str) -> list[str]:
        checks = [
            (f"NOT coalesce(({r.expr}), false)", lit(f"rule {r.label}: failed ({r.expr})"))
            for r in self.rules
        ]
        return [self._select(src, dst, {}, _fail_if(checks))]

    def kept(self, con: duckdb.DuckDBPyConnection, dst: str) -> list[tuple[Rule, int, int]]:
        """Per rule: (rule, rows that pass, rows checked)."""
        parts = ", ".join(
            f"count(*) FILTER (WHERE NOT list_contains({FAIL}, "
            f"{lit(f'rule {r.label}: failed ({r.expr})')}))"
            for r in self.rules
        )
        row = con.execute(f"SELECT count(*), {parts} FROM {dst}").fetchone() or ()
        total = int(row[0])
        return [(r, int(n), total) for r, n in zip(self.rules, row[1:], strict=True)]

    def summary(self, con: duckdb.DuckDBPyConnection, dst: str) -> str:
        n = _failed_with(con, dst, "rule ")
        return f"{len(self.rules)} rules: {n} rows failed at least one"


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
