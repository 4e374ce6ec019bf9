"""Run a table's cleaning steps on Apache Spark, with the same results as DuckDB.

``run_clean_spark`` is :func:`datawheel.tables.pipeline.run_clean` for data beyond one
machine: the same steps (:mod:`datawheel.tables.steps`, their SQL spelled by
:class:`SparkDialect`), the same :class:`CleanReport`, and the same run folder
(``clean.parquet``, ``quarantine.parquet``, ``report.json``, ...), so quarantine, readmit and
versions work on it unchanged. DuckDB is the reference: where Spark SQL differs (string to
number and date casts, regular expressions, string literals), the dialect spells the SQL so
that Spark returns DuckDB's values.

How it runs: the file is read by Spark's own reader (CSV/TSV with every cell as text, or
Parquet), numbered in file order from per-partition counts (no single-task window), and kept
with ``persist``. Dedupe groups the rows on its columns and joins the (few) groups of equal
rows back; every other step is a projection of the previous one, the data-dependent parts
(counts, outlier bounds) one aggregate each. One pass keeps the failing rows, one more writes
the clean rows, which stay in source order unless a step moved rows between partitions (then
they are sorted). Spark writes Parquet part files into the run folder, merged into one file
afterwards, so the run folder must be on storage that the driver and the executors share
(the case in local mode).

Example::

    with spark_session("local[2]") as spark:
        report = run_clean_spark(source, spec, Path("tables"), spark=spark)
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from datawheel.tables.pipeline import (
    ORIGINAL,
    CleanReport,
    RuleReport,
    StepReport,
    _new_run_dir,
    finish_reports,
    finish_run,
)
from datawheel.tables.read import ROW, ident
from datawheel.tables.spark_dialect import SPARK, SparkDialect, java_pattern
from datawheel.tables.spark_read import SparkRead, read_source
from datawheel.tables.spark_session import (
    ENGINES,
    _Connection,
    require_pyspark,
    spark_session,
)
from datawheel.tables.spec import CleanSpec, TableSource
from datawheel.tables.steps import (
    GROUP_SIZE,
    KEEP,
    REASON,
    DedupeStep,
    RulesStep,
    Step,
    build_steps,
    flag,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "ENGINES",
    "SPARK",
    "SparkDialect",
    "java_pattern",
    "require_pyspark",
    "run_clean_spark",
    "spark_session",
]

log = logging.getLogger(__name__)

# --- running the steps ---------------------------------------------------------------------


@dataclass
class _Checked:
    """The rows after the steps (views of one run), with the counts for the report."""

    clean: DataFrame
    quarantine: DataFrame
    rows: int
    duplicates: int
    failed: int
    steps: list[StepReport]
    rules: list[RuleReport]


class _Run:
    """The temporary views and persisted frames of one run, dropped at the end."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.prefix = f"dw_{uuid.uuid4().hex[:8]}_"
        self.views: list[str] = []
        self.persisted: list[DataFrame] = []

    def view(self, frame: DataFrame, name: str) -> str:
        full = self.prefix + name
        frame.createOrReplaceTempView(full)
        self.views.append(full)
        return full

    def keep(self, frame: DataFrame) -> DataFrame:
        from pyspark import StorageLevel

        self.persisted.append(frame.persist(StorageLevel.MEMORY_AND_DISK))
        return frame

    def close(self) -> None:
        for name in self.views:
            self.spark.catalog.dropTempView(name)
        for frame in self.persisted:
            frame.unpersist()


def _original_json(columns: list[str]) -> str:
    """Spark SQL: the row as it came in (``__dw_o<i>``), as DuckDB's JSON object of strings."""
    pairs = ", ".join(
        f"{SPARK.lit(c)}, CAST({ORIGINAL}{i} AS STRING)" for i, c in enumerate(columns)
    )
    return f"to_json(named_struct({pairs}), map('ignoreNullFields', 'false'))"


def _execute(run: _Run, steps: list[Step], read: SparkRead) -> _Checked:
    """The steps as views over the read rows; the failing rows kept, every count taken.

    The same plan as :func:`datawheel.tables.pipeline.execute`: a view per step, one pass
    for the failing rows, the report's counts from them.
    """
    from pyspark.sql import functions as F

    spark, columns = run.spark, read.columns
    con = _Connection(spark)
    s0 = read.frame.select(
        *[read.frame[c] for c in columns],
        read.frame[ROW],
        *[read.frame[c].alias(f"{ORIGINAL}{i}") for i, c in enumerate(columns)],
    )
    current = run.view(s0, "s0")
    duplicates, removed = None, 0
    reports: list[StepReport] = []
    reasons: list[str] = []
    for i, step in enumerate(steps, start=1):
        t = time.perf_counter()
        if isinstance(step, DedupeStep):
            # the groups are few: joined back by broadcast, the rows stay where they are
            groups = run.view(run.keep(spark.sql(step.groups_sql(current))), "groups")
            marked = spark.sql(step.marked_sql(current, groups))
            duplicates = marked.where(f"{KEEP} IS NOT NULL AND {ROW} <> {KEEP}")
            frame = marked.where(f"{KEEP} IS NULL OR {ROW} = {KEEP}").drop(KEEP)
            size = spark.sql(f"SELECT sum({GROUP_SIZE} - 1) FROM {groups}").first()
            step.removed = removed = int(size[0] or 0) if size else 0
        else:
            if isinstance(step, RulesStep):
                _validate(spark, step, current)
            else:
                step.prepare(con, current)
            step.reasons = [f"{REASON}{len(reasons) + k}" for k in range(len(step.checks()))]
            reasons += step.reasons
            replaced, new = step.projections()
            exprs = {c: F.expr(e) for c, e in {**replaced, **new}.items()}
            frame = spark.table(current).withColumns(exprs) if exprs else spark.table(current)
        current = run.view(frame, f"s{i}")
        reports.append(StepReport(name=step.name, message="", seconds=time.perf_counter() - t))
    listed = f"filter(array({', '.join(reasons)}), x -> x IS NOT NULL)" if reasons else "array()"
    any_failed = " OR ".join(flag(r) for r in reasons) or "false"
    failed = run.keep(
        spark.sql(
            f"SELECT {ROW}, CAST({listed} AS ARRAY<STRING>) AS _reasons, "
            f"{_original_json(columns)} AS _original{''.join(', ' + flag(r) for r in reasons)} "
            f"FROM {current} WHERE {any_failed}"
        )
    )
    failed_view = run.view(failed, "failed")
    per_step = [" OR ".join(flag(r) for r in s.reasons) or "false" for s in steps]
    parts = [f"count(*) FILTER (WHERE {p})" for p in per_step]
    parts += [f"count(*) FILTER (WHERE {flag(r)})" for r in reasons]
    counts = spark.sql(f"SELECT count(*){''.join(', ' + p for p in parts)} FROM {failed_view}")
    got = [int(n) for n in counts.first() or ()]
    total = read.rows
    failed_by = dict(zip(reasons, got[1 + len(steps) :], strict=True))
    rules = finish_reports(steps, reports, got[1 : 1 + len(steps)], failed_by, total - removed)
    out_columns = steps[-1].out_columns() if steps else list(columns)
    passed = " AND ".join(f"NOT {flag(r)}" for r in reasons) or "true"
    # in source order without a sort where no step moved rows between partitions: see
    # _write_parquet, which checks __dw_row and sorts only if it has to
    clean = spark.sql(
        f"SELECT {', '.join(ident(c) for c in out_columns)}, {ROW} FROM {current} WHERE {passed}"
    )
    return _Checked(
        clean=clean,
        quarantine=_quarantine(run, failed_view, duplicates, read),
        rows=total - removed,
        duplicates=removed,
        failed=got[0],
        steps=reports,
        rules=rules,
    )


def _validate(spark: SparkSession, step: RulesStep, src: str) -> None:
    """A ConfigError for a rule Spark cannot parse or bind, as DuckDB's check words it."""
    from pyspark.errors import AnalysisException, ParseException

    for rule in step.rules:
        try:
            spark.sql(f"SELECT ({rule.expr}) FROM {src}")  # analysed now, run never
        except ParseException as exc:
            raise step.not_sql(rule, str(exc).strip()) from None
        except AnalysisException as exc:
            raise step.cannot_check(rule, str(exc).strip()) from None


def _quarantine(
    run: _Run, failed_view: str, duplicates: DataFrame | None, read: SparkRead
) -> DataFrame:
    """Failing rows, duplicates and unparseable lines, as DuckDB writes ``quarantine.parquet``."""
    from pyspark.sql import types as T

    spark = run.spark
    parts = [
        f"SELECT {ROW} AS _row, CAST(NULL AS BIGINT) AS _line, _reasons, _original "
        f"FROM {failed_view}"
    ]
    if duplicates is not None:
        dups = run.view(duplicates, "duplicates")
        parts.append(
            f"SELECT {ROW}, CAST(NULL AS BIGINT), array('dedupe: duplicate of row ' || {KEEP}), "
            f"{_original_json(read.columns)} FROM {dups}"
        )
    if read.rejected:
        schema = T.StructType(
            [
                T.StructField("_row", T.LongType()),
                T.StructField("_line", T.LongType()),
                T.StructField("_reasons", T.ArrayType(T.StringType())),
                T.StructField("_original", T.StringType()),
            ]
        )
        rows = [
            (None, line, [f"read: line {line}: {reason}"], json.dumps({"_raw_line": text}))
            for line, reason, text in read.rejected
        ]
        parts.append(f"SELECT * FROM {run.view(spark.createDataFrame(rows, schema), 'rejected')}")
    union = " UNION ALL ".join(parts)
    return spark.sql(f"SELECT * FROM ({union}) ORDER BY coalesce(_row, 0), coalesce(_line, 0)")


# --- writing -------------------------------------------------------------------------------


def _write_parquet(frame: DataFrame, target: Path, order: str | None = None) -> int:
    """Write ``frame`` as one Parquet file, in its order; returns the rows written.

    Spark writes part files (one per partition, in order) next to the target; they are
    merged row group by row group, so the driver never holds them all. Columns are written
    nullable and without Spark's metadata, as DuckDB writes them.

    With ``order`` (a column, left out of the file), the rows must come out sorted by it:
    they are written as they are, which keeps the source order when no step moved rows
    between partitions, and checked; only when they are not in order are they sorted and
    written again. A sort costs Spark another pass over the data and a shuffle of it.
    """
    staging = target.with_name(target.name + ".parts")
    # file://: the run folder, never the cluster's default file system (HDFS on YARN)
    frame.write.mode("overwrite").parquet(staging.as_uri())
    try:
        return _merge(frame, staging, target, order)
    except _OutOfOrder:
        assert order is not None
        log.info("%s: rows out of order, sorting them", target.name)
        frame.orderBy(order).write.mode("overwrite").parquet(staging.as_uri())
        return _merge(frame, staging, target, None, drop=order)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _OutOfOrder(Exception):
    """The part files' rows are not sorted by the column they should be."""


def _merge(
    frame: DataFrame, staging: Path, target: Path, order: str | None, drop: str | None = None
) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    drop = drop or order
    parts = sorted(staging.glob("part-*.parquet"))
    read_schema = (
        pq.ParquetFile(parts[0]).schema_arrow if parts else frame.limit(0).toArrow().schema
    )
    schema = pa.schema([f.with_nullable(True) for f in read_schema if f.name != drop])
    rows, last = 0, None
    with pq.ParquetWriter(target, schema) as writer:
        for part in parts:
            pf = pq.ParquetFile(part)
            for g in range(pf.num_row_groups):
                table = pf.read_row_group(g)
                if order is not None and table.num_rows:
                    key = table.column(order)
                    if (last is not None and pc.min(key).as_py() <= last) or (
                        table.num_rows > 1 and not pc.all(pc.greater(key[1:], key[:-1])).as_py()
                    ):
                        raise _OutOfOrder
                    last = key[-1].as_py()
                if drop is not None:
                    table = table.drop_columns([drop])
                writer.write_table(table.cast(schema))
                rows += table.num_rows
    return rows


# --- the run -------------------------------------------------------------------------------


def run_clean_spark(
    source: TableSource,
    spec: CleanSpec,
    out_dir: Path,
    *,
    spark: SparkSession | None = None,
    master: str | None = None,
    conf: dict[str, str] | None = None,
) -> CleanReport:
    """Clean one table source on Spark and write a new run folder; returns what changed.

    The same steps, report and outputs as :func:`datawheel.tables.pipeline.run_clean`.
    ``spark`` is a session to use (kept running); otherwise the running one, or a new one on
    ``master`` (default ``local[2]``) with ``conf``, stopped at the end.

    Raises:
        MissingExtraError: PySpark is not installed.
        ConfigError: a step or rule names an unknown column, a rule is not valid SQL, or the
            source is not a CSV, TSV or Parquet file.
        SourceError: the file does not exist.
    """
    started = time.perf_counter()
    with spark_session(master, conf, spark) as session:
        run = _Run(session)
        read = read_source(session, source)
        run.persisted += read.persisted
        try:
            steps = build_steps(spec, source, read.columns, SPARK)
            checked = _execute(run, steps, read)
            run_dir, number = _new_run_dir(Path(out_dir) / source.name)
            tmp = run_dir.with_name(run_dir.name + ".partial")
            tmp.mkdir(parents=True)
            try:
                clean_rows = _write_parquet(checked.clean, tmp / "clean.parquet", order=ROW)
                _write_parquet(checked.quarantine, tmp / "quarantine.parquet")
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        finally:
            run.close()
    assert clean_rows == checked.rows - checked.failed, "the clean rows are those that passed"
    return finish_run(
        source,
        spec,
        steps,
        checked,
        run_dir=run_dir,
        run=number,
        columns=read.columns,
        rows_read=read.rows,
        rejected=len(read.rejected),
        started=started,
    )
