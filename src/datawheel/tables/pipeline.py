"""Run a table's cleaning steps in DuckDB and write the versioned outputs.

``run_clean`` loads the source, applies the steps of its :class:`CleanSpec` as SQL and writes
``<out_dir>/<source>/run-<n>/``:

- ``clean.parquet``: rows that passed every check, in source order;
- ``quarantine.parquet``: every other row with ``_row`` (position in the source), ``_line``
  (file line, for lines the CSV reader could not parse), ``_reasons`` (every check it failed)
  and ``_original`` (the row as it came in, all values as strings, as JSON);
- ``report.json``, ``spec.json`` and ``source.json``: what ran and what it changed.

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
from pathlib import Path

import duckdb
from pydantic import BaseModel, Field

from datawheel.errors import ConfigError
from datawheel.tables.read import ROW, Loaded, ident, load
from datawheel.tables.spec import CleanSpec, TableSource
from datawheel.tables.steps import (
    DUPLICATES,
    FAIL,
    OutliersStep,
    RulesStep,
    Step,
    build_steps,
    lit,
)

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = ("_row", "_line", "_reasons", "_original")


class StepReport(BaseModel):
    name: str = Field(..., description="Step name, e.g. dedupe or outliers:amount.")
    message: str = Field(..., description="What the step changed.")
    seconds: float = Field(0.0, description="How long the step took.")


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
        lines.append(
            f"  kept {self.rows_clean}, quarantined {self.rows_quarantined} "
            f"({self.seconds:.2f}s) -> {self.run_dir}"
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
    with session(memory_limit, threads) as (con, work):
        loaded = load(con, source, "t0", workdir=work)
        log.info("read %s in %.2fs", source.name, time.perf_counter() - started)
        steps = build_steps(spec, source, loaded.columns)
        steps_report, rules_report, final = execute(con, steps, "t0", loaded.columns)
        _quarantine_rejects(con, loaded)
        run_dir, run = _new_run_dir(Path(out_dir) / source.name)
        tmp = run_dir.with_name(run_dir.name + ".partial")
        tmp.mkdir(parents=True)
        out_columns = steps[-1].out_columns() if steps else loaded.columns
        _write_outputs(con, final, out_columns, tmp, "t0", loaded.columns)
        log.info("wrote outputs of %s at %.2fs", source.name, time.perf_counter() - started)
        counts = _counts(con, final)
    report = CleanReport(
        source=source.name,
        run=run,
        run_dir=str(run_dir),
        columns=loaded.columns,
        outlier_bounds=outlier_bounds(steps),
        rows_in=loaded.rows + len(loaded.rejected),
        rows_clean=counts[0],
        rows_quarantined=counts[1],
        rejected_lines=len(loaded.rejected),
        steps=steps_report,
        rules=rules_report,
        seconds=round(time.perf_counter() - started, 3),
    )
    save_run(tmp, report, source, spec)
    tmp.rename(run_dir)
    log.info("%s", report.render())
    return report


@contextmanager
def session(
    memory_limit: str = "2GB", threads: int | None = None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    """A DuckDB database in a temporary folder, memory capped, spilling to that folder."""
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", memory_limit, re.I):
        raise ConfigError(
            f"memory_limit {memory_limit!r} is not a size; write it like 2GB or 512MB"
        )
    work = Path(tempfile.mkdtemp(prefix="datawheel-clean-"))
    # in memory, but tables and operators spill to temp_directory past memory_limit
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET memory_limit = {lit(memory_limit)}")
        con.execute(f"SET temp_directory = {lit(str(work / 'spill'))}")
        con.execute("SET preserve_insertion_order = true")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        yield con, work
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)


def execute(
    con: duckdb.DuckDBPyConnection, steps: list[Step], table: str, columns: list[str]
) -> tuple[list[StepReport], list[RuleReport], str]:
    """Run ``steps`` on ``table``; returns the step and rule reports and the final table."""
    # s0 is a view: the loaded table stays untouched, the source of the quarantine's originals
    con.execute(f"CREATE VIEW s0 AS SELECT *, CAST([] AS VARCHAR[]) AS {FAIL} FROM {table}")
    con.execute(f"CREATE TABLE {DUPLICATES} AS SELECT * FROM s0 LIMIT 0")
    current = "s0"
    timings: list[float] = []
    for i, step in enumerate(steps, start=1):
        # most steps make views; the chain is materialised once, at the end
        dst = f"s{i}"
        t = time.perf_counter()
        step.prepare(con, current)
        for statement in step.sql(current, dst):
            con.execute(statement)
        timings.append(time.perf_counter() - t)
        current = dst
    final = "dw_final"
    con.execute(f"CREATE TABLE {final} AS SELECT * FROM {current}")
    kinds = dict(
        con.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE regexp_full_match(table_name, 's[0-9]+')"
        ).fetchall()
    )
    for i in range(len(steps), -1, -1):  # free the intermediate tables early
        if f"s{i}" in kinds:
            kind = "VIEW" if kinds[f"s{i}"] == "VIEW" else "TABLE"
            con.execute(f"DROP {kind} s{i}")
    con.execute("DROP TABLE IF EXISTS __dw_dedup")
    reports: list[StepReport] = []
    rules: list[RuleReport] = []
    for step, seconds in zip(steps, timings, strict=True):
        message = step.summary(con, final)
        reports.append(StepReport(name=step.name, message=message, seconds=round(seconds, 3)))
        if isinstance(step, RulesStep):
            rules = [
                RuleReport(name=r.label, expr=r.expr, kept=kept, total=total)
                for r, kept, total in step.kept(con, final)
            ]
    return reports, rules, final


def outlier_bounds(steps: list[Step]) -> dict[str, tuple[float | None, float | None]]:
    return {
        s.check.column: (s.low, s.high)
        for s in steps
        if isinstance(s, OutliersStep) and s.check is not None
    }


def _original_json(columns: list[str]) -> str:
    pairs = ", ".join(f"{ident(c)} := CAST({ident(c)} AS VARCHAR)" for c in columns)
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
    con: duckdb.DuckDBPyConnection,
    final: str,
    columns: list[str],
    run_dir: Path,
    raw: str = "t0",
    raw_columns: list[str] | None = None,
) -> None:
    """Write clean and quarantine Parquet; the originals come from the untouched copy."""
    cols = ", ".join(ident(c) for c in columns)
    con.execute(
        f"COPY (SELECT {cols} FROM {final} WHERE len({FAIL}) = 0 ORDER BY {ROW}) "
        f"TO {lit(str(run_dir / 'clean.parquet'))} (FORMAT parquet)"
    )
    con.execute(
        f"COPY (SELECT * FROM ("
        f"SELECT o.{ROW} AS _row, CAST(NULL AS BIGINT) AS _line, f.reasons AS _reasons, "
        f"o.original AS _original FROM ("
        f"  SELECT {ROW}, {FAIL} AS reasons FROM {final} WHERE len({FAIL}) > 0 "
        f"  UNION ALL SELECT {ROW}, {FAIL} FROM {DUPLICATES}) f "
        f"JOIN (SELECT {ROW}, {_original_json(raw_columns or columns)} AS original FROM {raw}) o "
        f"USING ({ROW}) "
        f"UNION ALL SELECT NULL, _line, _reasons, _original FROM dw_rejected) "
        f"ORDER BY coalesce(_row, 0), coalesce(_line, 0)) "
        f"TO {lit(str(run_dir / 'quarantine.parquet'))} (FORMAT parquet)"
    )


def _counts(con: duckdb.DuckDBPyConnection, final: str) -> tuple[int, int]:
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE len({FAIL}) = 0), count(*) FILTER (WHERE len({FAIL}) > 0) "
        f"FROM {final}"
    ).fetchone() or (0, 0)
    dups = con.execute(f"SELECT count(*) FROM {DUPLICATES}").fetchone() or (0,)
    rej = con.execute("SELECT count(*) FROM dw_rejected").fetchone() or (0,)
    return int(row[0]), int(row[1]) + int(dups[0]) + int(rej[0])


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
