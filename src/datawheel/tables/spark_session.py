"""The Spark session a table job runs on: the running one, or one datawheel starts.

``spark_session`` hands out the session of a notebook or ``spark-submit`` when there is one,
else starts one on a master URL (``local[2]`` by default) with quiet logs, UTC and DuckDB's
SQL semantics (:data:`SQL_CONF`: ANSI errors, double-quoted identifiers), and stops it after
the block. ``check_engine`` and ``require_pyspark`` give the clear errors for an unknown
engine and a missing ``[spark]`` extra.

Example::

    with spark_session("local[2]") as spark:
        spark.sql("SELECT 1").collect()
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datawheel.errors import ConfigError, DatawheelError, MissingExtraError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"
ENGINES = ("duckdb", "spark")

# SQL settings every run needs, on a session of its own or one it was handed
SQL_CONF = {
    "spark.sql.ansi.enabled": "true",  # errors instead of silent NULLs, as in DuckDB
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",  # "col" quotes a name, as in DuckDB
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
_LOG4J = """\
rootLogger.level = warn
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""


def check_engine(engine: str, valid: tuple[str, ...] = ENGINES) -> None:
    """A ConfigError for an engine not in ``valid``; for ``spark``, PySpark must be there."""
    if engine not in valid:
        raise ConfigError(f"unknown engine {engine!r}; valid engines: {', '.join(valid)}")
    if engine == "spark":
        require_pyspark()


def require_pyspark() -> None:
    """A MissingExtraError naming the extra when PySpark is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise MissingExtraError("PySpark (engine spark)", "spark") from None


@cache
def _log4j_file() -> str:
    """A log4j2 configuration without Spark's start-up chatter; errors only once started.

    The root level stays WARN: a Python-started driver counts as a shell, and Spark prints
    a notice when a shell's level is anything else.
    """
    fd, path = tempfile.mkstemp(prefix="datawheel-log4j2-", suffix=".properties")
    with os.fdopen(fd, "w") as fh:
        fh.write(_LOG4J)
    atexit.register(lambda: Path(path).unlink(missing_ok=True))
    return path


def session_conf(master: str) -> dict[str, str]:
    """Settings for a session datawheel starts: quiet, UTC, few shuffle partitions locally."""
    conf = {"spark.ui.showConsoleProgress": "false", **SQL_CONF}
    local = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", master)
    if local:  # on a cluster, its own log4j and spark-defaults.conf decide
        given = local.group(1)
        cores = (os.cpu_count() or 2) if given in (None, "*") else int(given)
        conf["spark.sql.shuffle.partitions"] = str(max(2, 2 * cores))  # not 200 on one machine
        conf["spark.ui.enabled"] = "false"
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{_log4j_file()}"
    return conf


@contextmanager
def spark_session(
    master: str | None = None,
    conf: dict[str, str] | None = None,
    spark: SparkSession | None = None,
) -> Iterator[SparkSession]:
    """A SparkSession for the block: ``spark`` if given, else the running one (a notebook,
    ``spark-submit``), else a new one on ``master`` (default ``local[2]``), stopped afterwards.

    ``master`` is any Spark master URL: ``local[4]``, ``spark://host:7077``, ``yarn``,
    ``k8s://...``; ``conf`` adds Spark settings (``spark.executor.memory``, ...).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    own = spark or SparkSession.getActiveSession()
    if own is not None:
        if master and own.sparkContext.master != master:
            log.warning(
                "using the running Spark session on %s, not %s", own.sparkContext.master, master
            )
        with _sql_conf(own):
            yield own
        return
    master = master or DEFAULT_MASTER
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need datawheel
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no network look-up, no warning
    builder = SparkSession.builder.master(master).appName("datawheel")
    for key, value in {**session_conf(master), **(conf or {})}.items():
        builder = builder.config(key, value)
    started = time.perf_counter()
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # PySpark raises several kinds when the JVM does not start
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatawheelError(
            f"Spark could not start on {master} ({reason}); it needs Java 17 or newer "
            "(check java -version and JAVA_HOME) and, for a cluster, a reachable master"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    log.info("Spark %s on %s in %.1fs", session.version, master, time.perf_counter() - started)
    try:
        yield session
    finally:
        session.stop()


@contextmanager
def _sql_conf(spark: SparkSession) -> Iterator[None]:
    """Set :data:`SQL_CONF` on a session for the block, then put back what it had."""
    saved = {k: spark.conf.get(k, None) for k in SQL_CONF}
    for key, value in SQL_CONF.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, saved_value in saved.items():
            if saved_value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, saved_value)


class _Connection:
    """What a step's ``prepare`` needs (``execute(sql).fetchone()``), on Spark SQL."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.rows: list[tuple[Any, ...]] = []

    def execute(self, query: str, parameters: Any = None, /) -> _Connection:
        self.rows = [tuple(r) for r in self.spark.sql(query).collect()]
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows
