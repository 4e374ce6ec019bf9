"""The cleaning pipeline on PySpark (local mode) against DuckDB: the same reports, the same rows.

Both engines run the same source config over the real CRM and store-item data, with a few
rows appended so that every step has something to do (duplicates, missing values, other date
formats, outliers, values that do not convert, rule violations, lines that do not parse).
One Spark session serves the whole module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datawheel.errors import ConfigError
from datawheel.tables import (
    CleanReport,
    CleanSpec,
    Dedupe,
    DropMissing,
    Outliers,
    Rule,
    Standardise,
    TableSource,
    run_clean,
)

pyspark = pytest.importorskip("pyspark", reason="pip install 'datawheel[spark]'")

from datawheel.tables.spark import (  # noqa: E402
    SPARK,
    java_pattern,
    run_clean_spark,
    spark_session,
)

pytestmark = pytest.mark.spark

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets"
CRM = DATA / "crm_sales_opportunities" / "sales_pipeline.csv"
STORE = DATA / "store_item_demand" / "train.csv"

# appended to a copy of the real file: one or more rows for every step and rule
CRM_EXTRA = """\
1C1I7A6R,Moses Frase,GTX Plus Basic,Cancity,Won,2016-10-20,2017-03-01,1054
ZZ000001,,GTX Basic,Cancity,Won,2016-10-20,2017-03-01,100
ZZ000002, Anna Snelling ,GTX Basic,,Lost,20/10/2016,01/03/2017,0
ZZ000003,Anna Snelling,GTX Basic,Codehow, WON ,2016-10-20,2016-13-45,10
ZZ000004,Anna Snelling,GTX Basic,Codehow,Won,2016-10-20,2017-03-01,abc
ZZ000005,Anna Snelling,GTX Basic,Codehow,Won,2016-10-20,2017-03-01,999999
ZZ000006,Anna Snelling,GTX Basic,Codehow,Won,2017-05-01,2017-03-01,1_000
ZZ000007,Anna Snelling,GTX Basic,Codehow,Maybe,2016-10-20,2017-03-01, 42.5e1
ZZ000008,Anna Snelling,GTX Basic,Codehow,Won,2016-10-20,2017-03-01,0
"""
STORE_EXTRA = """\
2013-01-01,1,1,13
2013-01-01,,1,13
2018-01-01,1,2,
01/15/2018,1,3,20
not-a-date,1,4,20
2018-01-01,1,5,500
2018-01-01,1,6,2.5
2018-01-01,1,7,-2.5
2018-01-01,1,8,x
2018-01-01,95,9,10
2018-01-01,2,51,10
2018-01-01,2,1e1,1_0
2018-01-01,3,10
2018-01-01,3,11,5,extra
"""


def crm_config(path: Path) -> tuple[TableSource, CleanSpec]:
    source = TableSource(
        name="crm",
        path=str(path),
        key=["opportunity_id"],
        critical=["opportunity_id", "sales_agent", "deal_stage"],
    )
    formats = ["%Y-%m-%d", "%d/%m/%Y"]
    spec = CleanSpec(
        dedupe=Dedupe(on="key"),
        drop_missing=DropMissing(),
        fill={"account": "unknown"},
        standardise=[
            Standardise(column="sales_agent", how="trim"),
            Standardise(column="deal_stage", how="trim"),
            Standardise(column="deal_stage", how="lower"),
            Standardise(column="engage_date", how="date", input_formats=formats),
            Standardise(column="close_date", how="date", input_formats=formats),
        ],
        outliers=[
            Outliers(column="close_value", method="iqr", action="flag"),
            Outliers(column="close_value", method="zscore", action="drop"),
        ],
        types={"close_value": "double"},
        rules=[
            "close_date IS NULL OR close_date >= engage_date",
            Rule(name="stage", expr="deal_stage in ('won', 'lost', 'engaging', 'prospecting')"),
            Rule(name="won_has_value", expr="deal_stage <> 'won' OR close_value > 0"),
        ],
    )
    return source, spec


def store_config(path: Path) -> tuple[TableSource, CleanSpec]:
    source = TableSource(name="store", path=str(path), critical=["date", "store", "item"])
    spec = CleanSpec(
        dedupe=Dedupe(keep="last"),
        drop_missing=DropMissing(),
        fill={"sales": 0},
        standardise=[
            Standardise(column="date", how="date", input_formats=["%Y-%m-%d", "%m/%d/%Y"])
        ],
        outliers=[
            Outliers(column="sales", method="iqr", action="clip"),
            Outliers(column="store", method="zscore", action="flag"),
        ],
        types={"store": "integer", "item": "integer", "sales": "integer"},
        rules=[
            "sales >= 0",
            "store between 1 and 10",
            Rule(name="items", expr="item between 1 and 50"),
            "date >= DATE '2013-01-01'",
        ],
    )
    return source, spec


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    with spark_session("local[2]") as session:
        yield session


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Temporary copies of the real files with the extra rows appended."""
    assert CRM.exists() and STORE.exists(), "CI keeps ../shared beside the repo"
    folder = tmp_path_factory.mktemp("spark-data")
    for src, extra in ((CRM, CRM_EXTRA), (STORE, STORE_EXTRA)):
        raw = src.read_bytes()
        if b"\r\n" in raw[:1000]:  # the CRM export ends its lines with CRLF
            extra = extra.replace("\n", "\r\n")
        (folder / src.name).write_bytes(raw + extra.encode())
    return folder


def _table(path: Path) -> pa.Table:
    table = pq.read_table(path)
    # DuckDB marks some columns required where it knows they have no NULLs; Spark never does
    return table.cast(pa.schema([f.with_nullable(True) for f in table.schema]))


def assert_same(duck: CleanReport, spark: CleanReport) -> None:
    """Every count, message, rule and bound alike; both Parquet outputs equal row by row."""
    skip = {"seconds", "run_dir", "steps"}
    assert spark.model_dump(exclude=skip) == duck.model_dump(exclude=skip)
    assert [(s.name, s.message) for s in spark.steps] == [(s.name, s.message) for s in duck.steps]
    for name in ("clean.parquet", "quarantine.parquet"):
        d, s = _table(Path(duck.run_dir) / name), _table(Path(spark.run_dir) / name)
        assert s.schema == d.schema, name
        assert s.num_rows == d.num_rows, name
        assert s.to_pylist() == d.to_pylist(), name  # in the same order, every reason alike


def _messages(report: CleanReport) -> dict[str, str]:
    return {s.name: s.message for s in report.steps}


def test_crm_on_spark_equals_duckdb(spark, data: Path, tmp_path: Path) -> None:
    source, spec = crm_config(data / CRM.name)
    duck = run_clean(source, spec, tmp_path / "duckdb")
    on_spark = run_clean_spark(source, spec, tmp_path / "spark", spark=spark)
    assert_same(duck, on_spark)
    # every step had rows to act on
    assert on_spark.rows_in == 8800 + 9
    msgs = _messages(on_spark)
    assert msgs["dedupe"] == "removed 1 duplicate rows (moved to quarantine)"
    assert (
        msgs["drop_missing"] == "quarantined 1 rows missing opportunity_id, sales_agent, deal_stage"
    )
    assert msgs["fill"] == "filled 1426 missing values in account"
    assert msgs["standardise"].endswith("quarantined 1 rows with invalid values")
    assert "quarantined 1 rows outside" in msgs["outliers:close_value"]  # 999999
    assert msgs["types"].endswith(
        "quarantined 1 rows with values that do not convert or lie past clean.future_days"
    )
    assert {r.name: r.kept for r in on_spark.rules} == {
        "close_date IS NULL OR close_date >= engage_date": 8807,  # ZZ000006
        "stage": 8807,  # ZZ000007
        # ZZ000008 (0); ZZ000004's "abc" is no value, which a rule does not fail (the
        # types step quarantines that row)
        "won_has_value": 8807,
    }
    bad = {
        r["_row"] or -r["_line"]: r["_reasons"]
        for r in _table(on_spark.quarantine_path).to_pylist()
    }
    assert bad[8801] == ["dedupe: duplicate of row 1"]
    assert "standardise: close_date value 2016-13-45 is not a valid date" in bad[8804]


def test_store_item_on_spark_equals_duckdb(spark, data: Path, tmp_path: Path) -> None:
    source, spec = store_config(data / STORE.name)
    duck = run_clean(source, spec, tmp_path / "duckdb")
    on_spark = run_clean_spark(source, spec, tmp_path / "spark", spark=spark)
    assert_same(duck, on_spark)
    assert on_spark.rows_in == 913_000 + 14 and on_spark.rejected_lines == 2
    msgs = _messages(on_spark)
    assert msgs["dedupe"] == "removed 1 duplicate rows (moved to quarantine)"
    assert msgs["fill"] == "filled 1 missing values in sales"
    assert "clipped 11968 rows outside [-30.0, 130.0]" in msgs["outliers:sales"]
    assert "flagged 1 rows" in msgs["outliers:store"]
    assert on_spark.rows_quarantined == 9
    bad = {r["_line"]: r["_reasons"] for r in _table(on_spark.quarantine_path).to_pylist()}
    assert bad[913014] == [
        "read: line 913014: MISSING COLUMNS: Expected Number of Columns: 4 Found: 3"
    ]
    assert bad[913015] == [
        "read: line 913015: TOO MANY COLUMNS: Expected Number of Columns: 4 Found: 5"
    ]
    clean = duckdb.connect().execute(
        f"SELECT item, sales FROM '{on_spark.clean_path}' WHERE date = DATE '2018-01-01' "
        "AND store = 1 AND item IN (5, 6) ORDER BY item"
    )
    assert clean.fetchall() == [(5, 130), (6, 3)]  # clipped text; 2.5 rounds as in DuckDB


def test_typed_parquet_on_spark_equals_duckdb(spark, tmp_path: Path) -> None:
    """Typed columns take the other paths: fill and clip on BIGINT, DATE as text, casts."""
    path = tmp_path / "s.parquet"
    duckdb.sql(
        f"COPY (SELECT * FROM read_csv('{STORE}') WHERE item <= 4 AND store <= 5) TO '{path}'"
    )
    source = TableSource(name="s", path=str(path), critical=["date", "store"])
    spec = CleanSpec(
        dedupe=Dedupe(),
        drop_missing=DropMissing(),
        fill={"sales": 0},
        standardise=[Standardise(column="date", how="date", input_formats=["%Y-%m-%d"])],
        outliers=[
            Outliers(column="sales", method="iqr", action="clip", k=1.0),
            Outliers(column="item", method="zscore", action="drop", k=1.0),
        ],
        types={"sales": "double", "store": "varchar"},
        rules=["sales >= 10"],
    )
    duck = run_clean(source, spec, tmp_path / "duckdb")
    on_spark = run_clean_spark(source, spec, tmp_path / "spark", spark=spark)
    assert_same(duck, on_spark)
    assert duck.rows_quarantined > 0 and "clipped 0 " not in _messages(duck)["outliers:sales"]


NUMBERS = [
    "1", "1.5", "2.5", "-2.5", " 12 ", "1e3", "+7", "-0", "1_000", ".5", "1.", "1d", "１２",
    "NaN", "inf", "-Infinity", "", "abc", "9223372036854775807", "9223372036854775808",
    "t", "f", "true", "yes", "n", "0",
]  # fmt: skip
MOMENTS = [
    "2016-10-20", "2016-1-5", "2016/10/20", "2016 10 20", "2016", "2016-10", "20161020",
    "2016-10-20 12:30", "2016-10-20T12:30:00", "2016-10-20 12:30:00.5", "2016-10-20 12",
    "2016-10-20 25:00:00", " 2016-10-20", "2016-10-20 ", "2016-10-20  12:30:00",
    "2016-10-20 12:30:00Z", "2016-02-30", "today", "+2016-10-20", "2016-10-20x", "",
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("integer", NUMBERS),
        ("double", NUMBERS),
        ("boolean", NUMBERS),
        ("date", MOMENTS),
        ("timestamp", MOMENTS),
        ("varchar", NUMBERS),
    ],
)
def test_text_converts_as_in_duckdb(spark, kind: str, values: list[str]) -> None:
    from datawheel.tables.dialect import DUCKDB

    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT unnest($1::VARCHAR[]) AS x", [values])
    duck = con.execute(f"SELECT x, {DUCKDB.convert('x', kind, 'VARCHAR')} FROM v").fetchall()
    spark.createDataFrame([(x,) for x in values], "x string").createOrReplaceTempView("v")
    got = spark.sql(f"SELECT x, {SPARK.convert('x', kind, 'STRING')} FROM v").collect()
    assert [(x, str(v)) for x, v in got] == [(x, str(v)) for x, v in duck]  # nan == nan


@pytest.mark.parametrize(
    ("fmt", "values"),
    [
        ("%Y-%m-%d", ["2016-10-20", "2016-1-5", "2016-10-20x", "2016-02-30", "0016-10-20"]),
        ("%d/%m/%Y", ["20/10/2016", "5/1/2016", "20/10/16"]),
        ("%Y%m%d", ["20161020", "201610201"]),
        ("%d %b %Y %H:%M", ["20 Oct 2016 12:30", "20 Oct 2016 25:30"]),
    ],
)
def test_date_formats_parse_as_in_duckdb(spark, fmt: str, values: list[str]) -> None:
    from datawheel.tables.dialect import DUCKDB

    duck = [
        duckdb.connect().execute(f"SELECT CAST({DUCKDB.parse_time('?', fmt)} AS DATE)", [v])
        for v in values
    ]
    expected = [d.fetchone()[0] for d in duck]  # type: ignore[index]
    lits = ", ".join(f"CAST({SPARK.parse_time(SPARK.lit(v), fmt)} AS DATE)" for v in values)
    assert list(spark.sql(f"SELECT {lits}").first()) == expected


def test_java_pattern() -> None:
    assert java_pattern("%Y-%m-%d") == "y'-'M'-'d"
    assert java_pattern("%Y%m%d") == "yyyyMMdd"
    assert java_pattern("%d %b %Y, %H:%M %p") == "d' 'MMM' 'y', 'H':'m' 'a"
    with pytest.raises(ConfigError, match="%Q has no Spark equivalent"):
        java_pattern("%Q")


DEALS = "id,stage,amount\n1,won,100\n2,lost,-5\n3,maybe,50\n"


def test_rule_errors_name_the_columns(spark, tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(DEALS)
    source = TableSource(name="d", path=str(tmp_path / "d.csv"))
    with pytest.raises(ConfigError, match=r"rule 'amt > 0'.*columns are: id, stage, amount"):
        run_clean_spark(source, CleanSpec(rules=["amt > 0"]), tmp_path, spark=spark)
    with pytest.raises(ConfigError, match="not a valid SQL boolean expression: 'amount >> > 0'"):
        run_clean_spark(source, CleanSpec(rules=["amount >> > 0"]), tmp_path, spark=spark)
    excel = TableSource(name="x", path=str(tmp_path / "d.csv"), format="excel")
    with pytest.raises(ConfigError, match="engine spark reads csv, tsv and parquet"):
        run_clean_spark(excel, CleanSpec(), tmp_path, spark=spark)


def _workspace(tmp_path: Path) -> Path:
    from datawheel import Workspace

    (tmp_path / "deals.csv").write_text(DEALS)
    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    with (kb / "datawheel.yaml").open("a") as fh:
        fh.write(
            f"""
sources:
  deals:
    path: {tmp_path / "deals.csv"}
    clean:
      types: {{amount: double}}
      rules: [amount > 0, "stage in ('won', 'lost')"]
"""
        )
    return kb


def test_cli_clean_on_spark_feeds_quarantine_and_versions(spark, tmp_path: Path) -> None:
    from datawheel import Workspace
    from datawheel.cli.main import app

    kb = _workspace(tmp_path)
    runner = CliRunner()
    args = ["clean", "deals", "-w", str(kb), "--engine", "spark", "--spark-master", "local[2]"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows_clean"], report["rows_quarantined"]) == (1, 2)
    listed = runner.invoke(app, ["quarantine", "list", "deals", "-w", str(kb), "--json"])
    rows = json.loads(listed.stdout)["rows"]
    assert [(r["_row"], r["_reasons"]) for r in rows] == [
        (2, ["rule amount > 0: failed (amount > 0)"]),
        (3, ["rule stage in ('won', 'lost'): failed (stage in ('won', 'lost'))"]),
    ]
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("id,stage,amount,_row\n2,lost,5,2\n")
    readmitted = runner.invoke(
        app, ["quarantine", "readmit", "deals", "--fixed", str(fixed), "-w", str(kb), "--json"]
    )
    assert readmitted.exit_code == 0, readmitted.output
    assert json.loads(readmitted.stdout)["rows_clean"] == 2
    with Workspace.open(kb) as ws:
        runs = [(v["run"], v["kind"]) for v in ws.table_versions("deals")]
    assert runs == [(1, "clean"), (2, "readmit")]
    unknown = runner.invoke(app, ["clean", "deals", "-w", str(kb), "--engine", "flink"])
    assert unknown.exit_code == 2
    assert "unknown engine 'flink'; valid engines: duckdb, spark" in unknown.output


def test_missing_pyspark_names_the_extra(tmp_path: Path) -> None:
    kb = _workspace(tmp_path)
    code = (
        "import sys; sys.modules['pyspark'] = None\n"  # as if it were not installed
        "from datawheel.cli.main import app\n"
        f"app(['clean', 'deals', '-w', {str(kb)!r}, '--engine', 'spark'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'datawheel[spark]'" in done.stdout + done.stderr
    assert not (kb / "tables").exists()
