"""The inventory profile on PySpark (local mode) against DuckDB: the same figures, field by field.

Rows, columns, stored and inferred types, nulls, null rates, distinct counts, min/max, size,
last update, the sampled text values and the classification that derives from them, for the
real CRM (CRLF) and store-item files and a typed Parquet file. One Spark session serves the
whole module.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datawheel.tables import TableSource
from datawheel.tables.classify import classify
from datawheel.tables.inventory import SourceProfile, profile_source
from datawheel.tables.inventory_rules import InventoryRules

pytest.importorskip("pyspark", reason="pip install 'datawheel[spark]'")

from datawheel.tables.spark import spark_session  # noqa: E402
from datawheel.tables.spark_profile import profile_source_spark  # noqa: E402

pytestmark = pytest.mark.spark

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets"
CRM = DATA / "crm_sales_opportunities" / "sales_pipeline.csv"
STORE = DATA / "store_item_demand" / "train.csv"


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    with spark_session("local[2]") as session:
        yield session


def assert_same(duck: SourceProfile, spark: SourceProfile) -> None:
    """Every reported field alike, the sampled values too, and so the classification."""
    assert spark.to_dict() == duck.to_dict()
    for d, s in zip(duck.columns, spark.columns, strict=True):
        assert sorted(s.sample) == sorted(d.sample), d.name  # the same rows, in any order
    rules = InventoryRules()
    assert classify(spark, rules) == classify(duck, rules)


@pytest.mark.parametrize("path", [CRM, STORE], ids=["crm", "store-item"])
def test_real_csv_profiles_alike(spark, path: Path) -> None:
    assert path.exists(), "CI keeps ../shared beside the repo"
    source = TableSource(name=path.parent.name, path=str(path))
    duck = profile_source(source)
    assert_same(duck, profile_source_spark(source, spark))
    if path == CRM:  # CRLF: no stray \r in the last column, which stays numeric
        assert duck.columns[-1].type == "integer" and duck.columns[-1].max == 30288
        assert max(len(c.sample) for c in duck.columns) == 200  # sampled, not every row


def test_typed_parquet_profiles_alike(spark, tmp_path: Path) -> None:
    n = 300
    day = dt.date(2020, 1, 1)
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "small": pa.array([i % 7 if i % 5 else None for i in range(n)], pa.int16()),
            "qty": pa.array([i * 3 for i in range(n)], pa.int32()),
            "ratio": pa.array([i / 7 if i % 9 else None for i in range(n)], pa.float64()),
            "weight": pa.array([i / 4 for i in range(n)], pa.float32()),
            "price": pa.array([decimal.Decimal(i) / 100 for i in range(n)], pa.decimal128(10, 2)),
            "flag": pa.array([i % 3 == 0 for i in range(n)], pa.bool_()),
            "day": pa.array([day + dt.timedelta(days=i) for i in range(n)], pa.date32()),
            "at": pa.array(
                [dt.datetime(2021, 5, 1, 8) + dt.timedelta(hours=i) for i in range(n)],
                pa.timestamp("us"),
            ),
            "status": pa.array([["won", "lost", " ", None][i % 4] for i in range(n)], pa.string()),
            "amount_text": pa.array([f" {i}.5" if i % 2 else "" for i in range(n)]),
            "when_text": pa.array([f"2022-03-{i % 28 + 1:02d}" for i in range(n)]),
        }
    )
    pq.write_table(table, tmp_path / "typed.parquet")
    source = TableSource(name="typed", path=str(tmp_path / "typed.parquet"))
    duck = profile_source(source)
    assert_same(duck, profile_source_spark(source, spark))
    types = {c.name: (c.type, c.stored_type) for c in duck.columns}
    assert types["price"] == ("double", "DECIMAL(10,2)")
    assert types["at"] == ("timestamp", "TIMESTAMP")
    assert types["amount_text"] == ("double", "VARCHAR")
    assert types["when_text"] == ("date", "VARCHAR")


def _workspace(tmp_path: Path) -> Path:
    from datawheel import Workspace

    (tmp_path / "deals.csv").write_text(
        "id,stage,amount,closed\n1,won,10.5,2017-01-02\n2,lost,,2017-02-03\n3,won,7,\n"
    )
    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    with (kb / "datawheel.yaml").open("a") as fh:
        fh.write(f"\nsources:\n  deals:\n    path: {tmp_path / 'deals.csv'}\n")
    return kb


def test_cli_inventory_on_spark(spark, tmp_path: Path) -> None:
    from datawheel.cli.main import app

    kb = _workspace(tmp_path)
    runner = CliRunner()
    args = ["inventory", "-w", str(kb), "--json"]
    duck = runner.invoke(app, args)
    on_spark = runner.invoke(app, [*args, "--engine", "spark", "--spark-master", "local[2]"])
    assert on_spark.exit_code == 0, on_spark.output
    got, want = json.loads(on_spark.stdout), json.loads(duck.stdout)
    assert got["entries"] == want["entries"]
    deals = got["entries"][0]["profile"]
    assert (deals["rows"], [c["type"] for c in deals["columns"]]) == (
        3,
        ["integer", "varchar", "double", "date"],
    )
    unknown = runner.invoke(app, [*args, "--engine", "flink"])
    assert unknown.exit_code == 2
    assert "unknown engine 'flink'; valid engines: duckdb, spark" in unknown.output


def test_missing_pyspark_names_the_extra(tmp_path: Path) -> None:
    kb = _workspace(tmp_path)
    code = (
        "import sys; sys.modules['pyspark'] = None\n"  # as if it were not installed
        "from datawheel.cli.main import app\n"
        f"app(['inventory', '-w', {str(kb)!r}, '--engine', 'spark'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'datawheel[spark]'" in done.stdout + done.stderr
