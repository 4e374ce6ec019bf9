"""Profile a table source on Spark with the same figures as DuckDB's inventory profile.

The source is read as the Spark clean reads it (:func:`datawheel.tables.spark_read.read_source`:
CSV/TSV cells as text, Parquet typed, rows numbered in file order), and profiled by the same
code as on DuckDB (:func:`datawheel.tables.inventory._profile_columns`), its SQL spelled by
:class:`SparkDialect`: rows, and per column the type (inferred from every value), null rate,
distinct count, min and max. Column types are reported with DuckDB's names (``BIGINT``, not
``bigint``), so both engines' profiles compare field by field.

The text values sampled for the classification's content hints (never reported) are those
of the rows DuckDB's reservoir sample picks (:func:`datawheel.tables.inventory.sampled_rows`),
taken by position, so the classification is the same too.

Example::

    with spark_profiler("local[2]") as profile:
        print(profile(source, 200).to_dict())
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from datawheel.tables.inventory import (
    Profiler,
    SourceProfile,
    _profile_columns,
    sampled_rows,
    source_profile,
)
from datawheel.tables.read import ROW, _format_of, detect_encoding
from datawheel.tables.spark_dialect import SPARK
from datawheel.tables.spark_read import read_source
from datawheel.tables.spark_session import _Connection, spark_session
from datawheel.tables.spec import TableSource

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType

__all__ = ["duckdb_type", "profile_source_spark", "spark_profiler"]

_NAMES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp_ntz": "TIMESTAMP",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "binary": "BLOB",
}


def duckdb_type(spark_type: DataType) -> str:
    """DuckDB's name for a Spark column type (``decimal(10,2)`` → ``DECIMAL(10,2)``)."""
    name = spark_type.simpleString()
    return _NAMES.get(name, name.upper())


def profile_source_spark(
    source: TableSource, spark: SparkSession, *, sample_rows: int = 200
) -> SourceProfile:
    """Read ``source`` (CSV, TSV or Parquet file) with ``spark`` and profile it.

    Raises:
        ConfigError: the source is not a CSV, TSV or Parquet file.
        SourceError: the file does not exist.
    """
    read = read_source(spark, source)
    view = f"dw_profile_{uuid.uuid4().hex[:8]}"
    read.frame.createOrReplaceTempView(view)
    types = {f.name: duckdb_type(f.dataType) for f in read.frame.schema.fields}

    def sample_sql(cols: str) -> str:
        if read.rows <= sample_rows:
            return f"SELECT {cols} FROM {view}"
        picked = ", ".join(map(str, sampled_rows(read.rows, sample_rows)))
        return f"SELECT {cols} FROM {view} WHERE {ROW} IN ({picked})"

    try:
        columns = _profile_columns(
            _Connection(spark),
            view,
            read.columns,
            read.rows,
            sample_rows,
            stored={c: types[c] for c in read.columns},
            dialect=SPARK,
            sample_sql=sample_sql,
        )
    finally:
        spark.catalog.dropTempView(view)
        for frame in read.persisted:
            frame.unpersist()
    return source_profile(source, read.rows, columns, len(read.rejected), _encoding(source))


def _encoding(source: TableSource) -> str | None:
    """The encoding DuckDB's profile reports: a CSV/TSV file's, as read.load names it."""
    path = Path(source.path or "")
    fmt = source.format if source.format != "auto" else _format_of(path)
    if fmt not in ("csv", "tsv"):
        return None
    local = "://" not in str(source.path)  # as spark_read reads it: UTF-8 unless told
    encoding = source.encoding or (detect_encoding(path) if local else "utf-8")
    return encoding.lower().replace("-", "_")


@contextmanager
def spark_profiler(master: str | None = None) -> Iterator[Profiler]:
    """A function profiling one source on Spark, for the block: one session for them all."""
    with spark_session(master) as spark:
        yield lambda source, sample_rows: profile_source_spark(
            source, spark, sample_rows=sample_rows
        )
