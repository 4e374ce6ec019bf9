"""Look at quarantined rows, and re-admit rows once they are fixed.

A fixed-rows file is a CSV, JSONL or Parquet file with the table's columns, plus ``_row``
(and ``_line`` for lines the reader could not parse) copied from :func:`list_quarantined`, so
the fixed rows replace their quarantined versions. Example::

    bad = list_quarantined(Path("cleaned"), "deals", rule="closes_after_engage")
    # ... fix the values, write them with _row to fixed.csv ...
    report = readmit("deals", Path("fixed.csv"), Path("cleaned"))
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import duckdb

from datawheel.errors import ConfigError
from datawheel.tables.dialect import lit
from datawheel.tables.pipeline import (
    CleanReport,
    _new_run_dir,
    execute,
    latest_run,
    outlier_bounds,
    save_run,
    session,
)
from datawheel.tables.read import ROW, ident, load
from datawheel.tables.spec import CleanSpec, Outliers, TableSource
from datawheel.tables.steps import build_steps

FIXES = "fixes.parquet"  # a readmit run's fixed rows, with what each replaced


def list_quarantined(
    out_dir: Path, source: str, rule: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Quarantined rows of the newest run of ``source``, optionally only those failing ``rule``.

    ``rule`` matches a check by name: a rule's name (or expression), or a step such as
    ``dedupe``, ``drop_missing``, ``types``, ``read``. Each row is its original values plus
    ``_row``, ``_line`` and ``_reasons``.
    """
    path = latest_run(out_dir, source) / "quarantine.parquet"
    where = ""
    if rule:
        prefixes = [f"rule {rule}: ", f"{rule}: ", f"{rule}:"]
        match = " OR ".join(f"starts_with(x, {lit(p)})" for p in prefixes)
        where = f"WHERE len(list_filter(_reasons, lambda x: {match})) > 0"
    sql = f"SELECT _row, _line, _reasons, _original FROM read_parquet({lit(str(path))}) {where}"
    sql += " ORDER BY coalesce(_row, 0), coalesce(_line, 0)"
    if limit:
        sql += f" LIMIT {int(limit)}"
    out = []
    for row, line, reasons, original in duckdb.connect().execute(sql).fetchall():
        out.append({**json.loads(original), "_row": row, "_line": line, "_reasons": reasons})
    return out


def summarise_quarantine(out_dir: Path, source: str) -> list[dict[str, Any]]:
    """The newest run's quarantine by check (a rule, or a step such as types or dedupe):
    rows failing it, and one reason as written, most rows first."""
    path = latest_run(out_dir, source) / "quarantine.parquet"
    rows = (
        duckdb.connect()
        .execute(
            "WITH r AS (SELECT unnest(_reasons) AS reason FROM read_parquet(?)) "
            "SELECT CASE WHEN starts_with(reason, 'rule ') "
            "THEN split_part(reason, ': failed', 1) ELSE split_part(reason, ':', 1) END AS failed, "
            "count(*) AS n, min(reason) AS example FROM r GROUP BY failed ORDER BY n DESC, failed",
            [str(path)],
        )
        .fetchall()
    )
    return [{"check": c, "rows": int(n), "example": e} for c, n, e in rows]


def export_quarantine(out_dir: Path, source: str, target: Path, rule: str | None = None) -> int:
    """Write the newest run's quarantined rows to ``target`` (CSV): the table's columns as
    they came in, ``_row``/``_line`` (keep them: readmit matches on them) and ``_reasons``.
    Fix the values and hand the file to readmit. Returns the row count."""
    rows = list_quarantined(out_dir, source, rule=rule)
    report = CleanReport.model_validate_json(
        (latest_run(out_dir, source) / "report.json").read_text(encoding="utf-8")
    )
    fields = [*report.columns, "_row", "_line", "_reasons"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "_reasons": "; ".join(map(str, r.get("_reasons") or []))})
    return len(rows)


def readmit(
    source: str, fixed_rows_file: Path, out_dir: Path, memory_limit: str = "2GB"
) -> CleanReport:
    """Re-check fixed rows with the newest run's steps and rules, and write a new run.

    Rows that now pass are appended to the clean output; rows that still fail stay
    quarantined with their new reasons. Outlier checks reuse the bounds of the newest run,
    and dedupe compares the fixed rows only with each other.
    """
    started = time.perf_counter()
    prev = latest_run(out_dir, source)
    spec = CleanSpec.model_validate_json((prev / "spec.json").read_text(encoding="utf-8"))
    table = TableSource.model_validate_json((prev / "source.json").read_text(encoding="utf-8"))
    prev_report = CleanReport.model_validate_json((prev / "report.json").read_text("utf-8"))
    columns = prev_report.columns
    # the fixed rows are checked against the bounds this table was cleaned with
    bounds = prev_report.outlier_bounds
    spec = spec.model_copy(
        update={
            "outliers": [
                Outliers(
                    column=o.column,
                    method="rule",
                    action=o.action,
                    min=bounds.get(o.column, (o.min, o.max))[0],
                    max=bounds.get(o.column, (o.min, o.max))[1],
                )
                for o in spec.outliers
            ]
        }
    )
    fixed = TableSource(name=source, path=str(fixed_rows_file))
    with session(memory_limit) as (con, work):
        loaded = load(con, fixed, "f0", workdir=work)
        missing = [c for c in columns if c not in loaded.columns]
        if missing:
            raise ConfigError(
                f"{fixed_rows_file} lacks column(s) {', '.join(missing)}; a fixed-rows file "
                f"needs the table's columns ({', '.join(columns)}) plus _row from the quarantine"
            )
        if loaded.rejected:
            raise ConfigError(
                f"{fixed_rows_file} has {len(loaded.rejected)} lines that cannot be parsed "
                f"(first: line {loaded.rejected[0].line}: {loaded.rejected[0].reason}); fix them"
            )
        row_id = "TRY_CAST(_row AS BIGINT)" if "_row" in loaded.columns else "NULL"
        line_id = "TRY_CAST(_line AS BIGINT)" if "_line" in loaded.columns else "NULL"
        cols = ", ".join(ident(c) for c in columns)
        # rows without a quarantine id get negative ids, so they never collide with source rows
        con.execute(
            f"CREATE TABLE t0 AS SELECT {cols}, coalesce({row_id}, -{ROW}) AS {ROW}, "
            f"{line_id} AS __dw_line FROM f0"
        )
        con.execute("CREATE TABLE dw_fixed_ids AS SELECT " + ROW + ", __dw_line FROM t0")
        con.execute("ALTER TABLE t0 DROP COLUMN __dw_line")
        steps = build_steps(spec, table, columns)
        checked = execute(con, steps, "t0", columns)
        run_dir, run = _new_run_dir(Path(out_dir) / source)
        tmp = run_dir.with_name(run_dir.name + ".partial")
        tmp.mkdir(parents=True)
        con.execute(
            f"COPY (SELECT * FROM read_parquet({lit(str(prev / 'clean.parquet'))}) "
            f"UNION ALL BY NAME ({checked.clean_sql(ordered=True)})) "
            f"TO {lit(str(tmp / 'clean.parquet'))} (FORMAT parquet)"
        )
        con.execute(
            f"COPY (SELECT * FROM read_parquet({lit(str(prev / 'quarantine.parquet'))}) q "
            f"WHERE NOT EXISTS (SELECT 1 FROM dw_fixed_ids i WHERE i.{ROW} = q._row "
            f"OR i.__dw_line = q._line) "
            f"UNION ALL {checked.quarantine_sql()} "
            f"ORDER BY coalesce(_row, 0), coalesce(_line, 0)) "
            f"TO {lit(str(tmp / 'quarantine.parquet'))} (FORMAT parquet)"
        )
        # the fixes, with the row as it was quarantined: a later clean of the same raw row
        # re-applies them (reapply_fixes)
        con.execute(
            f"COPY (SELECT f.*, q._original AS _was FROM "
            f"(SELECT {cols}, {row_id} AS _row, {line_id} AS _line FROM f0) f "
            f"JOIN read_parquet({lit(str(prev / 'quarantine.parquet'))}) q "
            f"ON f._row = q._row OR f._line = q._line) "
            f"TO {lit(str(tmp / FIXES))} (FORMAT parquet)"
        )
        clean_n, quarantined_n = duckdb.connect().execute(
            f"SELECT (SELECT count(*) FROM read_parquet({lit(str(tmp / 'clean.parquet'))})), "
            f"(SELECT count(*) FROM read_parquet({lit(str(tmp / 'quarantine.parquet'))}))"
        ).fetchone() or (0, 0)
        bounds_now = outlier_bounds(steps)
    report = CleanReport(
        source=source,
        run=run,
        run_dir=str(run_dir),
        columns=columns,
        rows_in=loaded.rows,
        rows_clean=int(clean_n),
        rows_quarantined=int(quarantined_n),
        steps=checked.steps,
        rules=checked.rules,
        outlier_bounds=bounds_now or bounds,
        seconds=round(time.perf_counter() - started, 3),
    )
    save_run(tmp, report, table, CleanSpec.model_validate_json((prev / "spec.json").read_text()))
    tmp.rename(run_dir)
    return report


def reapply_fixes(out_dir: Path, source: str, target: Path) -> int:
    """Write to ``target`` the fixes readmitted in earlier runs of ``source`` whose row the
    newest run quarantined again exactly as it was when fixed (the same raw values); returns
    how many. A re-run of ``clean`` thus keeps the decisions made on its quarantine."""
    base = Path(out_dir) / source
    runs = sorted(
        (int(p.name.split("-")[1]), p / FIXES)
        for p in base.glob("run-*")
        if p.name.split("-")[1].isdigit() and (p / FIXES).is_file()
    )
    if not runs:
        return 0
    newest = latest_run(out_dir, source)
    files = [str(path) for run, path in runs if path.parent != newest]
    if not files:
        return 0
    con = duckdb.connect()
    try:
        listed = "[" + ", ".join(lit(f) for f in files) + "]"
        con.execute(
            f"CREATE TABLE fixes AS SELECT * EXCLUDE (filename) FROM read_parquet({listed}, "
            "filename = true, union_by_name = true) "
            "QUALIFY row_number() OVER (PARTITION BY _row, _line ORDER BY "
            "CAST(regexp_extract(filename, 'run-(\\d+)', 1) AS INTEGER) DESC) = 1"
        )
        con.execute(
            f"COPY (SELECT f.* EXCLUDE (_was) FROM fixes f "
            f"JOIN read_parquet({lit(str(newest / 'quarantine.parquet'))}) q "
            f"ON (f._row = q._row OR f._line = q._line) AND f._was = q._original) "
            f"TO {lit(str(target))} (FORMAT parquet)"
        )
        (count,) = con.execute(f"SELECT count(*) FROM read_parquet({lit(str(target))})").fetchone()
    finally:
        con.close()
    return int(count)
