"""Run a table's cleaning steps in DuckDB and write the versioned outputs.

``run_clean`` loads the source, applies the steps of its :class:`CleanSpec` as SQL and writes
``<out_dir>/<source>/run-<n>/``:

- ``clean.parquet``: rows that passed every check, in source order;
- ``quarantine.parquet``: every other row with ``_row`` (position in the source), ``_line``
  (file line, for lines the CSV reader could not parse), ``_reasons`` (every check it failed)
  and ``_original`` (the row as it came in, all values as strings, as JSON);
- ``report.json``, ``spec.json`` and ``source.json``: what ran and what it changed.

How it runs: the source is read once, in parallel, into a table of a temporary DuckDB
database file, which stores it compressed (10M rows of four text columns take ~45 MB, and
scans cast or hash each distinct stored value once). A row's position is its ``rowid``: a
``row_number()`` window would make DuckDB read the file on one thread. The steps are views
over that table; dedupe sorts 64-bit row hashes and compares only rows whose hash repeats.
One pass keeps the few failing rows, with their reasons and original text, and one more
writes the clean rows straight to Parquet, in source order. No copy of all rows, no sort.

Example::

    report = run_clean(source, spec, Path("cleaned"), memory_limit="2GB")
    print(report.render())   # dedupe: removed 12 duplicate rows ... kept 8790 of 8800 (99.9%)
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, Field

from datawheel.errors import ConfigError
from datawheel.tables.dialect import lit, unordered
from datawheel.tables.outliers import OutliersStep
from datawheel.tables.read import ROW, Loaded, ident, load
from datawheel.tables.spec import CleanSpec, TableSource
from datawheel.tables.steps import (
    DUPLICATES,
    GONE,
    KEEP,
    REASON,
    ROWID,
    DedupeStep,
    RulesStep,
    Step,
    build_steps,
    flag,
)

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = ("_row", "_line", "_reasons", "_original")
ORIGINAL = "__dw_o"  # the source's columns as they came in: __dw_o0, __dw_o1, ...
FAILED = "dw_failed"


class StepReport(BaseModel):
    name: str = Field(..., description="Step name, e.g. dedupe or outliers:amount.")
    message: str = Field(..., description="What the step changed.")
    seconds: float = Field(
        0.0,
        description="Time of the step's own queries (dedupe, counts, bounds); the passes "
        "over all rows that check and write them are shared by every step.",
    )


class RuleReport(BaseModel):
    name: str = Field(..., description="Rule name (its expression when unnamed).")
    expr: str = Field(..., description="The SQL expression.")
    kept: int = Field(..., description="Rows that satisfy the rule.")
    total: int = Field(..., description="Rows the rule was checked on.")

    @property
    def percent(self) -> float:
        return 100.0 * self.kept / self.total if self.total else 100.0

    def render(self) -> str:
        return f"{self.name}: kept {self.kept} of {self.total} ({self.percent:.1f}%)"


class CleanReport(BaseModel):
    """What one run did; also saved as ``report.json`` in the run folder."""

    source: str
    run: int
    run_dir: str
    columns: list[str] = Field(default_factory=list, description="The source's columns.")
    rows_in: int = Field(..., description="Rows read, including lines that could not be parsed.")
    rows_clean: int
    rows_quarantined: int
    rejected_lines: int = Field(0, description="Lines the reader could not parse.")
    steps: list[StepReport] = Field(default_factory=list)
    rules: list[RuleReport] = Field(default_factory=list)
    outlier_bounds: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="Column → (low, high) the outlier checks used."
    )
    seconds: float = 0.0
    reapplied: int = Field(
        0, description="Fixes readmitted after earlier runs, applied again to this one."
    )

    @property
    def clean_path(self) -> Path:
        return Path(self.run_dir) / "clean.parquet"

    @property
    def quarantine_path(self) -> Path:
        return Path(self.run_dir) / "quarantine.parquet"

    def render(self) -> str:
        lines = [f"{self.source} run {self.run}: {self.rows_in} rows in"]
        if self.rejected_lines:
            lines.append(
                f"  read: quarantined {self.rejected_lines} lines that could not be parsed"
            )
        lines += [f"  {s.name}: {s.message}" for s in self.steps]
        lines += [f"  rule {r.render()}" for r in self.rules]
        if self.reapplied:
            lines.append(
                f"  readmit: {self.reapplied} rows fixed after earlier runs were applied again"
            )
        lines.append(
            f"  kept {self.rows_clean}, quarantined {self.rows_quarantined} "
            f"({self.seconds:.2f}s) -> {self.run_dir}"
        )
        if self.rows_in and self.rows_clean == 0:
            lines.append(
                "  warning: every row was quarantined; check the rules and types against "
                "a few rows (datawheel quarantine list NAME --summary)"
            )
        return "\n".join(lines)


def run_clean(
    source: TableSource,
    spec: CleanSpec,
    out_dir: Path,
    memory_limit: str = "2GB",
    threads: int | None = None,
) -> CleanReport:
    """Clean one table source and write a new run folder; returns what changed.

    Raises:
        ConfigError: a step or rule names an unknown column, or a rule is not valid SQL.
        SourceError: the source cannot be read.
    """
    started = time.perf_counter()
    clock = _Clock()
    with session(memory_limit, threads, on_disk=True) as (con, work):
        # no row-number column: a window over the scan would read the file on one thread;
        # the table's rowid is the row's position, as the load keeps the source order
        loaded = load(con, source, "t0", workdir=work, row_column=False)
        clock.lap("read")
        steps = build_steps(spec, source, loaded.columns)
        checked = execute(con, steps, "t0", loaded.columns, row="rowid + 1")
        clock.lap("steps")
        _quarantine_rejects(con, loaded)
        run_dir, run = _new_run_dir(Path(out_dir) / source.name)
        tmp = run_dir.with_name(run_dir.name + ".partial")
        tmp.mkdir(parents=True)
        _write_outputs(con, checked, tmp, clock)
    log.info("%s: %s", source.name, clock)
    return finish_run(
        source,
        spec,
        steps,
        checked,
        run_dir=run_dir,
        run=run,
        columns=loaded.columns,
        rows_read=loaded.rows,
        rejected=len(loaded.rejected),
        started=started,
    )


def finish_run(
    source: TableSource,
    spec: CleanSpec,
    steps: list[Step],
    checked: Any,
    *,
    run_dir: Path,
    run: int,
    columns: list[str],
    rows_read: int,
    rejected: int,
    started: float,
) -> CleanReport:
    """Report a run whose outputs are in ``<run_dir>.partial``, then make it the run folder.

    ``checked`` is any engine's result with ``rows``, ``failed``, ``duplicates``, ``steps``
    and ``rules``. The rename comes last, so a run folder always holds a whole run.
    """
    report = CleanReport(
        source=source.name,
        run=run,
        run_dir=str(run_dir),
        columns=columns,
        outlier_bounds=outlier_bounds(steps),
        rows_in=rows_read + rejected,
        rows_clean=checked.rows - checked.failed,
        rows_quarantined=checked.failed + checked.duplicates + rejected,
        rejected_lines=rejected,
        steps=checked.steps,
        rules=checked.rules,
        seconds=round(time.perf_counter() - started, 3),
    )
    tmp = run_dir.with_name(run_dir.name + ".partial")
    save_run(tmp, report, source, spec)
    tmp.rename(run_dir)
    log.info("%s", report.render())
    return report


class _Clock:
    """Wall and CPU seconds per phase of a run, for the log (CPU > wall: DuckDB ran parallel)."""

    def __init__(self) -> None:
        self.last = (time.perf_counter(), time.process_time())
        self.laps: dict[str, tuple[float, float]] = {}

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.laps[name] = (now[0] - self.last[0], now[1] - self.last[1])
        self.last = now

    def __str__(self) -> str:
        return ", ".join(f"{k} {w:.2f}s (cpu {c:.2f}s)" for k, (w, c) in self.laps.items())


@contextmanager
def session(
    memory_limit: str = "2GB", threads: int | None = None, on_disk: bool = False
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    """A DuckDB database in a temporary folder, memory capped, spilling to that folder.

    ``on_disk`` keeps the tables in a database file there instead of in memory: DuckDB then
    stores them compressed (a 10M-row CSV of four text columns takes ~45 MB instead of
    ~390 MB), and scans of the compressed columns hash and cast each distinct value once.
    """
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", memory_limit, re.I):
        raise ConfigError(
            f"memory_limit {memory_limit!r} is not a size; write it like 2GB or 512MB"
        )
    work = Path(tempfile.mkdtemp(prefix="datawheel-clean-"))
    # tables and operators spill to temp_directory past memory_limit
    con = duckdb.connect(str(work / "clean.duckdb") if on_disk else ":memory:")
    try:
        con.execute(f"SET memory_limit = {lit(memory_limit)}")
        con.execute(f"SET temp_directory = {lit(str(work / 'spill'))}")
        con.execute("SET preserve_insertion_order = true")
        if on_disk:  # the file is deleted on close: saving it first is wasted work
            con.execute("PRAGMA disable_checkpoint_on_shutdown")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        yield con, work
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Checked:
    """A table's rows after the steps, as views and two small tables, ready to be written.

    ``view`` holds every row that survived dedupe: the data columns after every step, the
    row's position (``__dw_row``), its original values (``__dw_o<i>``) and, per check, a flag
    (``__dw_f<n>``) and a reason (``__dw_r<n>``). ``dw_failed`` holds the rows that failed a
    check, with their reasons and original row; ``dw_duplicates`` the rows dedupe removed.
    """

    view: str
    columns: list[str]
    out_columns: list[str]
    reasons: list[str]
    rows: int
    duplicates: int
    failed: int
    steps: list[StepReport]
    rules: list[RuleReport]

    @property
    def passed(self) -> str:
        """SQL: the row passed every check."""
        return " AND ".join(f"NOT {flag(r)}" for r in self.reasons) or "true"

    def clean_sql(self, ordered: bool = False) -> str:
        """The clean rows; in source order (the scans keep it), or sorted by ``__dw_row``."""
        cols = ", ".join(ident(c) for c in self.out_columns)
        order = f" ORDER BY {ROW}" if ordered else ""
        return f"SELECT {cols} FROM {self.view} WHERE {self.passed}{order}"

    def quarantine_sql(self) -> str:
        """The quarantined rows (``_row``, ``_line``, ``_reasons``, ``_original``), unordered."""
        return (
            f"SELECT {ROW} AS _row, CAST(NULL AS BIGINT) AS _line, _reasons, _original "
            f"FROM {FAILED} UNION ALL "
            f"SELECT {ROW}, NULL, ['dedupe: duplicate of row ' || {KEEP}], "
            f"{_original_json(self.columns)} FROM {DUPLICATES}"
        )


def execute(
    con: duckdb.DuckDBPyConnection,
    steps: list[Step],
    table: str,
    columns: list[str],
    row: str = ROW,
) -> Checked:
    """Make the views of ``steps`` over ``table`` and find the rows that fail a check.

    ``row`` is the SQL for a row's position (a column, or ``rowid + 1``). The data is read
    only by the steps that need it (dedupe, counts, outlier bounds) and by one pass that
    keeps the failing rows; every count the reports need then comes from the small tables.
    The clean rows are read once more, by whoever writes them (:meth:`Checked.clean_sql`).
    """
    data = ", ".join(ident(c) for c in columns)
    originals = ", ".join(f"{ident(c)} AS {ORIGINAL}{i}" for i, c in enumerate(columns))
    gone = ""
    dedupe = next((s for s in steps if isinstance(s, DedupeStep)), None)
    if dedupe:  # it marks the rows it removes in the table itself (see DedupeStep)
        dedupe.table = table
        con.execute(f"ALTER TABLE {table} ADD COLUMN {GONE} BOOLEAN DEFAULT false")
        gone = f", {GONE}, rowid AS {ROWID}"
    con.execute(f"CREATE VIEW s0 AS SELECT {data}, {row} AS {ROW}, {originals}{gone} FROM {table}")
    current = "s0"
    reports: list[StepReport] = []
    reasons: list[str] = []
    for i, step in enumerate(steps, start=1):
        dst = f"s{i}"
        t = time.perf_counter()
        step.prepare(con, current)
        step.reasons = [f"{REASON}{len(reasons) + k}" for k in range(len(step.checks()))]
        reasons += step.reasons
        for statement in step.sql(current, dst):
            con.execute(statement)
        reports.append(StepReport(name=step.name, message="", seconds=time.perf_counter() - t))
        current = dst
    if dedupe is None:
        con.execute(
            f"CREATE TABLE {DUPLICATES} AS SELECT *, CAST(NULL AS BIGINT) AS {KEEP} FROM s0 LIMIT 0"
        )
    # only the failing rows get reason lists and original values
    listed = f"list_filter([{', '.join(reasons)}], lambda x: x IS NOT NULL)" if reasons else "[]"
    with unordered(con):  # the quarantine is sorted when written
        con.execute(
            f"CREATE TABLE {FAILED} AS SELECT {ROW}, CAST({listed} AS VARCHAR[]) AS _reasons, "
            f"{_original_json(columns)} AS _original{''.join(', ' + flag(r) for r in reasons)} "
            f"FROM {current} WHERE {' OR '.join(flag(r) for r in reasons) or 'false'}"
        )
    # every count the reports need, from the two small tables
    per_step = [" OR ".join(flag(r) for r in s.reasons) or "false" for s in steps]
    parts = [f"count(*) FILTER (WHERE {p})" for p in per_step]
    parts += [f"count(*) FILTER (WHERE {flag(r)})" for r in reasons]
    counts = con.execute(
        f"SELECT (SELECT count(*) FROM {table}), (SELECT count(*) FROM {DUPLICATES}), "
        f"count(*){''.join(', ' + p for p in parts)} FROM {FAILED}"
    ).fetchone()
    assert counts is not None
    total, duplicates, failed = (int(n) for n in counts[:3])
    step_failed = [int(n) for n in counts[3 : 3 + len(steps)]]
    reason_failed = dict(zip(reasons, (int(n) for n in counts[3 + len(steps) :]), strict=True))
    rules = finish_reports(steps, reports, step_failed, reason_failed, total - duplicates)
    out_columns = steps[-1].out_columns() if steps else list(columns)
    return Checked(
        view=current,
        columns=list(columns),
        out_columns=out_columns,
        reasons=reasons,
        rows=total - duplicates,
        duplicates=duplicates,
        failed=failed,
        steps=reports,
        rules=rules,
    )


def finish_reports(
    steps: list[Step],
    reports: list[StepReport],
    step_failed: list[int],
    reason_failed: dict[str, int],
    checked: int,
) -> list[RuleReport]:
    """Fill each step's message from its failed count; the rules as ``kept N of M``.

    ``reason_failed``: reason column -> rows failing that check; ``checked``: rows that
    reached the checks (after dedupe). Every engine words its report through this.
    """
    rules: list[RuleReport] = []
    for step, rep, n in zip(steps, reports, step_failed, strict=True):
        rep.message = step.summary(n)
        rep.seconds = round(rep.seconds, 3)
        if isinstance(step, RulesStep):
            rules = [
                RuleReport(
                    name=r.label,
                    expr=r.expr,
                    kept=checked - reason_failed[col],
                    total=checked,
                )
                for r, col in zip(step.rules, step.reasons, strict=True)
            ]
    return rules


def outlier_bounds(steps: list[Step]) -> dict[str, tuple[float | None, float | None]]:
    return {
        s.check.column: (s.low, s.high)
        for s in steps
        if isinstance(s, OutliersStep) and s.check is not None
    }


def _original_json(columns: list[str]) -> str:
    """SQL: the row as it came in (``__dw_o<i>`` columns), as a JSON object of strings."""
    pairs = ", ".join(
        f"{ident(c)} := CAST({ORIGINAL}{i} AS VARCHAR)" for i, c in enumerate(columns)
    )
    return f"CAST(to_json(struct_pack({pairs})) AS VARCHAR)"


def _quarantine_rejects(con: duckdb.DuckDBPyConnection, loaded: Loaded) -> None:
    con.execute("CREATE TABLE dw_rejected (_line BIGINT, _reasons VARCHAR[], _original VARCHAR)")
    if loaded.rejected:
        con.executemany(
            "INSERT INTO dw_rejected VALUES (?, ?, ?)",
            [
                (r.line, [f"read: line {r.line}: {r.reason}"], json.dumps({"_raw_line": r.text}))
                for r in loaded.rejected
            ],
        )


def _write_outputs(
    con: duckdb.DuckDBPyConnection, checked: Checked, run_dir: Path, clock: _Clock
) -> None:
    """Write the clean rows straight from the views, in one pass, and the quarantine."""
    con.execute(
        f"COPY ({checked.clean_sql()}) TO {lit(str(run_dir / 'clean.parquet'))} (FORMAT parquet)"
    )
    clock.lap("write clean")
    con.execute(
        f"COPY (SELECT * FROM ({checked.quarantine_sql()} "
        f"UNION ALL SELECT NULL, _line, _reasons, _original FROM dw_rejected) "
        f"ORDER BY coalesce(_row, 0), coalesce(_line, 0)) "
        f"TO {lit(str(run_dir / 'quarantine.parquet'))} (FORMAT parquet)"
    )
    clock.lap("write quarantine")


def _new_run_dir(base: Path) -> tuple[Path, int]:
    base.mkdir(parents=True, exist_ok=True)
    runs = [int(m.group(1)) for p in base.iterdir() if (m := re.fullmatch(r"run-(\d+)", p.name))]
    run = max(runs, default=0) + 1
    return base / f"run-{run}", run


def latest_run(out_dir: Path, source: str) -> Path:
    """The newest run folder of ``source``; a ConfigError when it has never run."""
    base = Path(out_dir) / source
    runs = (
        sorted(
            (int(m.group(1)), p)
            for p in base.iterdir()
            if (m := re.fullmatch(r"run-(\d+)", p.name))
        )
        if base.is_dir()
        else []
    )
    if not runs:
        raise ConfigError(f"source {source!r} has no cleaning runs under {out_dir}; run it first")
    return runs[-1][1]


def save_run(run_dir: Path, report: CleanReport, source: TableSource, spec: CleanSpec) -> None:
    (run_dir / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (run_dir / "spec.json").write_text(spec.model_dump_json(indent=2), encoding="utf-8")
    (run_dir / "source.json").write_text(source.model_dump_json(indent=2), encoding="utf-8")
