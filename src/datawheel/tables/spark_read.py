"""Read a table source with Spark: CSV/TSV cells as text, Parquet typed, rows numbered.

The rows get ``__dw_row``, their 1-based position in the file as DuckDB's reader counts it,
and lines Spark cannot parse are returned with their line number and DuckDB's wording of why,
so a Spark run's quarantine matches a DuckDB run's.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datawheel.errors import ConfigError, SourceError
from datawheel.tables.read import ROW, _format_of, _header, _sniff_delimiter, detect_encoding
from datawheel.tables.spec import TableSource

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CORRUPT = "__dw_corrupt"
_PID, _MID = "__dw_pid", "__dw_mid"


@dataclass
class SparkRead:
    """A source loaded into Spark: its columns and ``__dw_row`` (position), persisted."""

    frame: DataFrame
    columns: list[str]
    rows: int
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, text
    persisted: list[DataFrame] = field(default_factory=list)


def read_source(spark: SparkSession, source: TableSource) -> SparkRead:
    """Read ``source`` with Spark's reader: CSV/TSV cells as text, Parquet as typed."""
    if source.url or not source.path:
        raise ConfigError(
            f"{source.name}: engine spark reads files (csv, tsv, parquet); a database source "
            "runs on engine duckdb"
        )
    path = source.path
    local = "://" not in path or path.startswith("file://")
    if local:  # file:// so that a cluster whose default is HDFS reads the local (shared) file
        file = Path(path.removeprefix("file://")).expanduser().resolve()
        if not file.exists():
            raise SourceError(f"{source.name}: file {path} does not exist; check the path")
        path = file.as_uri()
    fmt = source.format if source.format != "auto" else _format_of(Path(source.path))
    if fmt in ("csv", "tsv"):
        return _read_csv(spark, source, path, fmt, local)
    if fmt == "parquet":
        frame = spark.read.parquet(path)
        numbered, rows, _, kept = _number(frame, None)
        columns = list(frame.columns)
        return SparkRead(numbered.select(*columns, ROW), columns, rows, persisted=[kept])
    raise ConfigError(
        f"{source.name}: engine spark reads csv, tsv and parquet files, not {fmt}; "
        "run this source on engine duckdb, or convert it to Parquet"
    )


def _first_line(spark: SparkSession, path: str, local: bool, encoding: str) -> str:
    if local:
        with _local(path).open("rb") as fh:
            return fh.readline().decode(encoding, errors="replace")
    row = spark.read.option("encoding", encoding).text(path).first()
    return str(row[0]) if row else ""


def _local(uri: str) -> Path:
    """The file of a ``file://`` URI."""
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path))


def _java_charset(encoding: str) -> str:
    name = encoding.lower().replace("_", "-")
    return {"utf-8": "UTF-8", "ascii": "US-ASCII", "latin-1": "ISO-8859-1"}.get(
        name, name.replace("cp125", "windows-125") if name.startswith("cp125") else name
    )


def _read_csv(
    spark: SparkSession, source: TableSource, path: str, fmt: str, local: bool
) -> SparkRead:
    from pyspark.sql import types as T

    if source.skip_rows:  # Spark's CSV reader takes the first line as the header
        raise ConfigError(
            f"{source.name}: skip_rows is not supported with engine: spark; remove the "
            f"{source.skip_rows} line(s) above the header from the file, or clean it with DuckDB"
        )
    encoding = source.encoding or (detect_encoding(_local(path)) if local else "utf-8")
    head = tempfile.mkdtemp(prefix="datawheel-head-")
    try:  # the header's names as the DuckDB reader makes them (blank, repeated)
        hpath = Path(head) / "head.csv"
        hpath.write_text(_first_line(spark, path, local, encoding), encoding="utf-8")
        delimiter = source.delimiter or ("\t" if fmt == "tsv" else _sniff_delimiter(hpath))
        columns = _header(hpath, delimiter)
    finally:
        shutil.rmtree(head, ignore_errors=True)
    inner = [f"__dw_c{i}" for i in range(len(columns))]
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in inner] + [T.StructField(CORRUPT, T.StringType())]
    )
    frame = (
        spark.read.schema(schema)
        .option("header", "true")
        .option("sep", delimiter)
        .option("quote", '"')
        .option("escape", '"')
        .option("encoding", _java_charset(encoding))
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .csv(path)
    )
    numbered, rows, rejected, kept = _number(frame, CORRUPT)
    named = numbered.select(
        *[numbered[i].alias(c) for i, c in zip(inner, columns, strict=True)], numbered[ROW]
    )
    bad = [(line, _reject_reason(text, delimiter, len(columns)), text) for line, text in rejected]
    return SparkRead(named, columns, rows, bad, persisted=[kept])


def _number(
    frame: DataFrame, corrupt: str | None
) -> tuple[DataFrame, int, list[tuple[int, str]], DataFrame]:
    """``frame``'s good rows with ``__dw_row``, their 1-based position among the good rows.

    Returns the numbered good rows, their count, the bad lines and the persisted frame
    they come from (to unpersist when done).

    A row's position is its partition's offset (from a count per partition) plus its place
    in the partition: Spark reads a file's splits in order, so this is the file order,
    without a window that would move every row through one task. Rows Spark could not parse
    (``corrupt`` set) are returned as (line, text), their line counted from the header.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    def place(offsets: dict[int, int], mid: str) -> Any:
        """The row's index in the frame: its partition's offset plus its place in it."""
        offset = F.create_map(*[F.lit(v) for p, o in offsets.items() for v in (p, o)])
        return offset[F.col(_PID)] + (F.col(mid) - F.shiftleft(F.col(_PID).cast("long"), 33))

    tagged = frame.withColumn(_PID, F.spark_partition_id()).withColumn(
        _MID, F.monotonically_increasing_id()
    )
    tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK)
    ok = F.col(corrupt).isNull() if corrupt else F.lit(True)
    counts = tagged.groupBy(_PID).agg(F.count("*"), F.count(F.when(ok, 1))).collect()
    every: dict[int, int] = {}
    good: dict[int, int] = {}
    total = kept = 0
    for pid, n, n_good in sorted(counts):
        every[pid], good[pid] = total, kept
        total, kept = total + n, kept + n_good
    bad: list[tuple[int, str]] = []
    if corrupt and kept < total:
        lines = tagged.where(~ok).select(place(every, _MID).alias("i"), corrupt)
        bad = sorted((int(i) + 2, str(text)) for i, text in lines.collect())
    # numbered again after the filter: a good row's place among the good rows of its partition
    rows = tagged.where(ok).withColumn("__dw_gid", F.monotonically_increasing_id())
    return rows.withColumn(ROW, place(good, "__dw_gid") + 1), kept, bad, tagged


def _reject_reason(text: str, delimiter: str, expected: int) -> str:
    """Why a line could not be parsed, worded as DuckDB's reader words it."""
    if text.count('"') % 2:
        return "UNQUOTED VALUE: Value with unterminated quote found."
    found = len(next(csv.reader(io.StringIO(text), delimiter=delimiter), []))
    kind = "MISSING COLUMNS" if found < expected else "TOO MANY COLUMNS"
    return f"{kind}: Expected Number of Columns: {expected} Found: {found}"
