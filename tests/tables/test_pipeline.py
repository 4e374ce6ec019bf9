"""run_clean end to end on real DuckDB: step reports, rule counts, quarantine, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from datawheel.errors import ConfigError
from datawheel.tables import (
    CleanSpec,
    Dedupe,
    DropMissing,
    Outliers,
    Rule,
    Standardise,
    TableSource,
    list_quarantined,
    run_clean,
    steps,
)

CRM = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "datasets"
    / ("crm_sales_opportunities/sales_pipeline.csv")
)

DEALS = """id,stage,amount,probability,email
1,won,100,90,A@X.COM
2,lost,-5,10,b@x.com
3,maybe,50,150,c@x.com
4,won,0,50,d@x.com
5,lost,20,-1,not-an-email
6,won,30,40,f@x.com
"""


def _rows(path: Path) -> list[tuple]:
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def test_rules_report_exact_counts(write, out):
    spec = CleanSpec(
        types={"amount": "double", "probability": "integer"},
        rules=[
            Rule(name="positive", expr="amount > 0"),
            "stage in ('won', 'lost')",
            Rule(name="probability", expr="probability between 0 and 100"),
        ],
    )
    report = run_clean(write("d.csv", DEALS), spec, out)
    assert [r.render() for r in report.rules] == [
        "positive: kept 4 of 6 (66.7%)",
        "stage in ('won', 'lost'): kept 5 of 6 (83.3%)",
        "probability: kept 4 of 6 (66.7%)",
    ]
    assert report.rows_clean == 2 and report.rows_quarantined == 4
    assert [r[0] for r in _rows(report.clean_path)] == ["1", "6"]


def test_quarantine_keeps_original_row_and_every_failed_rule(write, out):
    spec = CleanSpec(
        types={"amount": "double", "probability": "integer"},
        rules=[
            "amount > 0",
            Rule(name="stage", expr="stage in ('won','lost')"),
            Rule(name="prob", expr="probability between 0 and 100"),
        ],
    )
    run_clean(write("d.csv", DEALS), spec, out)
    bad = {b["_row"]: b for b in list_quarantined(out, "t")}
    assert sorted(bad) == [2, 3, 4, 5]
    three = bad[3]
    assert {k: three[k] for k in ("id", "stage", "amount", "probability", "email")} == {
        "id": "3",
        "stage": "maybe",
        "amount": "50",
        "probability": "150",
        "email": "c@x.com",
    }
    assert three["_reasons"] == [
        "rule stage: failed (stage in ('won','lost'))",
        "rule prob: failed (probability between 0 and 100)",
    ]
    assert [b["_row"] for b in list_quarantined(out, "t", rule="prob")] == [3, 5]
    assert [b["_row"] for b in list_quarantined(out, "t", rule="amount > 0")] == [2, 4]


def test_every_step_reports_what_it_changed(write, out):
    csv = (
        "id,name,email,phone,score\n"
        "1, Ann ,ANN@X.COM,(555) 123-4567,10\n"
        "1, Ann ,ANN@X.COM,(555) 123-4567,10\n"
        "2,bob,,555 000 1111,11\n"
        "3,cy,cy@x.com,+44 20 7946 0958,\n"
        "4,dee,dee@x.com,12,1000\n"
        "5,,eve@x.com,555-222-3333,12\n"
    )
    spec = CleanSpec(
        dedupe=Dedupe(),
        drop_missing=DropMissing(columns=["name"]),
        fill={"email": "unknown@example.com", "score": 0},
        standardise=[
            Standardise(column="name", how="trim"),
            Standardise(column="name", how="upper"),
            Standardise(column="email", how="email"),
            Standardise(column="phone", how="phone"),
        ],
        outliers=[Outliers(column="score", method="rule", max=100, action="clip")],
        types={"score": "integer"},
    )
    report = run_clean(write("p.csv", csv), spec, out)
    msgs = {s.name: s.message for s in report.steps}
    assert msgs["dedupe"] == "removed 1 duplicate rows (moved to quarantine)"
    assert msgs["drop_missing"] == "quarantined 1 rows missing name"
    assert msgs["fill"] == "filled 2 missing values in email, score"
    assert msgs["standardise"].endswith("quarantined 1 rows with invalid values")
    assert msgs["outliers:score"] == "score: clipped 1 rows outside [None, 100.0]"
    rows = _rows(report.clean_path)
    assert rows == [
        ("1", "ANN", "ann@x.com", "+5551234567", 10),
        ("2", "BOB", "unknown@example.com", "+5550001111", 11),
        ("3", "CY", "cy@x.com", "+442079460958", 0),
    ]
    assert report.rows_clean + report.rows_quarantined == report.rows_in == 6
    reasons = {b["_row"]: b["_reasons"] for b in list_quarantined(out, "t")}
    assert reasons[2] == ["dedupe: duplicate of row 1"]
    assert reasons[5] == ["standardise: phone value 12 is not a valid phone"]
    assert reasons[6] == ["drop_missing: name is missing"]


def test_decimal_comma_numbers(write, out):
    csv = "id;amount\n1;10,5\n2;1.234,25\n3; -7 \n4;10.5\n5;1.23,4\n"
    spec = CleanSpec(
        standardise=[Standardise(column="amount", how="decimal_comma")],
        types={"amount": "double"},
        rules=["amount > 0"],
    )
    report = run_clean(write("eu.csv", csv), spec, out)
    assert _rows(report.clean_path) == [("1", 10.5), ("2", 1234.25)]
    reasons = {b["_row"]: b["_reasons"] for b in list_quarantined(out, "t")}
    assert reasons[3] == ["rule amount > 0: failed (amount > 0)"]
    # a dot where a decimal comma is declared is ambiguous: quarantined, never read as 105
    assert reasons[4] == ["standardise: amount value 10.5 is not a valid decimal_comma"]
    assert reasons[5] == ["standardise: amount value 1.23,4 is not a valid decimal_comma"]
    # without the standardise step the reason says what to do
    plain = run_clean(write("eu2.csv", csv), CleanSpec(types={"amount": "double"}), out)
    assert plain.rows_clean == 2  # -7 and 10.5 convert
    hinted = {b["_row"]: b["_reasons"][0] for b in list_quarantined(out, "t")}
    assert hinted[1] == (
        "types: amount value 10,5 is not double "
        "(a decimal comma? standardise amount with how: decimal_comma)"
    )
    assert hinted[5] == "types: amount value 1.23,4 is not double"


@pytest.mark.parametrize(
    ("method", "action", "expected"),
    [("iqr", "flag", 1), ("zscore", "drop", 0), ("iqr", "drop", 1)],
)
def test_outlier_methods(write, out, method, action, expected):
    values = [10, 11, 12, 13, 12, 11, 10, 500]
    csv = "v\n" + "\n".join(map(str, values)) + "\n"
    spec = CleanSpec(outliers=[Outliers(column="v", method=method, action=action)])
    report = run_clean(write("o.csv", csv), spec, out)
    if action == "flag":
        rows = _rows(report.clean_path)
        assert [r for r in rows if r[1]] == [("500", True)]
    else:
        assert report.rows_quarantined == expected


def test_unknown_column_in_rule_lists_columns(write, out):
    with pytest.raises(ConfigError, match=r"rule 'amt > 0'.*columns are: id, stage, amount"):
        run_clean(write("d.csv", DEALS), CleanSpec(rules=["amt > 0"]), out)


def test_bad_sql_rule_is_quoted(write, out):
    with pytest.raises(ConfigError, match=r"not a valid SQL boolean expression: 'amount >> > 0'"):
        run_clean(write("d.csv", DEALS), CleanSpec(rules=["amount >> > 0"]), out)


def test_dedupe_on_key_keeps_last(write, out):
    src = write("k.csv", "id,v\n1,a\n2,b\n1,c\n", key=["id"])
    report = run_clean(src, CleanSpec(dedupe=Dedupe(on="key", keep="last")), out)
    assert _rows(report.clean_path) == [("2", "b"), ("1", "c")]


def test_runs_are_versioned_and_idempotent(write, out):
    src = write("d.csv", DEALS)
    spec = CleanSpec(dedupe=Dedupe(), types={"amount": "double"}, rules=["amount > 0"])
    first, second = run_clean(src, spec, out), run_clean(src, spec, out)
    assert (first.run, second.run) == (1, 2)
    assert Path(second.run_dir).name == "run-2"
    for name in ("clean.parquet", "quarantine.parquet"):
        a, b = Path(first.run_dir) / name, Path(second.run_dir) / name
        assert _rows(a) == _rows(b)
        assert a.read_bytes() == b.read_bytes()
    saved = json.loads((Path(first.run_dir) / "report.json").read_text())
    assert saved["rows_clean"] == first.rows_clean


def test_memory_limit_must_be_a_size(write, out):
    with pytest.raises(ConfigError, match="write it like 2GB"):
        run_clean(write("d.csv", DEALS), CleanSpec(), out, memory_limit="lots")


def test_crm_pipeline_counts_add_up(out):
    if not CRM.exists():
        pytest.fail(f"shared CRM data missing at {CRM}; CI keeps ../shared beside the repo")
    src = TableSource(name="crm", path=str(CRM), key=["opportunity_id"])
    spec = CleanSpec(
        dedupe=Dedupe(on="key"),
        types={"engage_date": "date", "close_date": "date", "close_value": "double"},
        rules=[
            Rule(name="closes_after_engage", expr="close_date >= engage_date"),
            Rule(name="stage", expr="deal_stage in ('Won','Lost','Engaging','Prospecting')"),
        ],
    )
    report = run_clean(src, spec, out)
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{CRM}')").fetchone()[0]
    assert report.rows_in == rows == 8800
    assert report.rows_clean + report.rows_quarantined == rows
    q = duckdb.connect().execute(f"SELECT count(*) FROM '{report.quarantine_path}'").fetchone()[0]
    c = duckdb.connect().execute(f"SELECT count(*) FROM '{report.clean_path}'").fetchone()[0]
    assert (c, q) == (report.rows_clean, report.rows_quarantined)
    by_name = {r.name: r for r in report.rules}
    assert by_name["stage"].kept == by_name["stage"].total == rows
    # open deals have no close date yet: the date rule does not apply to them (a rule fails
    # only when false, as an SQL CHECK), and no closed deal closes before it was engaged
    open_deals = (
        duckdb.connect()
        .execute(f"SELECT count(*) FROM read_csv('{CRM}') WHERE close_date IS NULL")
        .fetchone()[0]
    )
    assert open_deals == 2089
    assert by_name["closes_after_engage"].kept == rows
    strict = run_clean(
        src, spec.model_copy(update={"rules": ["close_date is not null"]}), out
    )  # how to require the value instead
    assert strict.rules[0].kept == rows - open_deals


def test_memory_capped_run_over_a_larger_file(tmp_path, out):
    big = tmp_path / "big.csv"
    duckdb.connect().execute(
        f"COPY (SELECT i AS id, i % 1000 AS store, (i * 7919) % 100 - 3 AS sales, "
        f"'2024-01-' || lpad(CAST(i % 28 + 1 AS VARCHAR), 2, '0') AS day, "
        f"md5(CAST(i % 400000 AS VARCHAR)) AS note "
        f"FROM range(600000) t(i)) TO '{big}' (HEADER)"
    )
    spec = CleanSpec(
        dedupe=Dedupe(),
        types={"sales": "integer", "day": "date"},
        rules=[Rule(name="non_negative", expr="sales >= 0")],
    )
    report = run_clean(TableSource(name="big", path=str(big)), spec, out, memory_limit="100MB")
    assert report.rows_in == 600_000
    assert report.rows_clean + report.rows_quarantined == 600_000
    assert report.rules[0].total - report.rules[0].kept == 600_000 * 3 // 100


def test_outputs_follow_the_file_when_read_in_parallel(tmp_path, out):
    # ~1.2M rows: several row groups, read and written by several threads. Every 101st row
    # repeats the row before it (a duplicate) and ids divisible by 89 break the rule.
    csv = tmp_path / "order.csv"
    duckdb.connect().execute(
        f"COPY (SELECT id, CASE WHEN id % 89 = 0 THEN -1 ELSE id % 1000 END AS v FROM "
        f"(SELECT CASE WHEN i % 101 = 0 THEN i - 1 ELSE i END AS id FROM range(1, 1200001) t(i))"
        f") TO '{csv}' (HEADER)"
    )
    spec = CleanSpec(dedupe=Dedupe(), types={"id": "integer", "v": "integer"}, rules=["v >= 0"])
    report = run_clean(TableSource(name="o", path=str(csv)), spec, out, threads=4)
    con = duckdb.connect()
    ids = [r[0] for r in con.execute(f"SELECT id FROM '{report.clean_path}'").fetchall()]
    assert len(ids) == report.rows_clean > 1_000_000
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False))
    quarantined = con.execute(
        f"SELECT _row, _reasons[1], CAST(json_extract_string(_original, '$.id') AS BIGINT) "
        f"FROM '{report.quarantine_path}'"
    ).fetchall()
    assert len(quarantined) == report.rows_quarantined
    for row, reason, original_id in quarantined:
        if reason.startswith("dedupe"):
            assert (reason, original_id) == (f"dedupe: duplicate of row {row - 1}", row - 1)
        else:
            assert (reason, original_id) == ("rule v >= 0: failed (v >= 0)", row)


def test_dedupe_counts_missing_values_as_equal(write, out):
    report = run_clean(write("m.csv", "a,b\n1,\n1,\n1,x\n,\n,\n"), CleanSpec(dedupe=Dedupe()), out)
    assert _rows(report.clean_path) == [("1", None), ("1", "x"), (None, None)]
    reasons = {b["_row"]: b["_reasons"] for b in list_quarantined(out, "t")}
    assert reasons == {2: ["dedupe: duplicate of row 1"], 5: ["dedupe: duplicate of row 4"]}


@pytest.mark.parametrize(("budget", "list_max"), [(None, 1 << 20), (None, 0), (0, 1 << 20)])
def test_duplicate_hashes_agree_on_every_path(monkeypatch, budget, list_max):
    # numpy sort with the hashes handed over as a list or as Arrow, and DuckDB's aggregate
    monkeypatch.setattr(steps, "LIST_MAX", list_max)
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range % 1000 AS a, range % 7 AS b FROM range(14000)")
    table = steps.duplicate_hashes(con, "SELECT hash(a, b) FROM t", budget)
    found = sorted(r[0] for r in con.execute(f"SELECT h FROM {table}").fetchall())
    expected = con.execute(
        "SELECT hash(a, b) AS h FROM t GROUP BY h HAVING count(*) > 1 ORDER BY h"
    ).fetchall()
    assert found == [r[0] for r in expected] and len(found) == 7000


def test_dates_that_do_not_say_their_year_or_lie_ahead_are_quarantined(write, out):
    """DuckDB alone reads 12/1/10 as the year 12; a typo'd 2031 would zero-fill years of a
    forecast. Both are quarantined with the fix, unless the format is declared."""
    from datetime import date, timedelta

    ahead = (date.today() + timedelta(days=400)).isoformat()
    soon = (date.today() + timedelta(days=30)).isoformat()
    text = f"id,d\n1,2010-12-01\n2,12/1/10\n3,31/12/10\n4,{ahead}\n5,{soon}\n6,2010/12/02\n"
    report = run_clean(write("d.csv", text), CleanSpec(types={"d": "date"}), out)
    assert [r[0] for r in _rows(report.clean_path)] == ["1", "5", "6"]
    reasons = {q["_row"]: q["_reasons"][0] for q in list_quarantined(out, "t")}
    assert reasons[2].startswith("types: d value 12/1/10 is not date (a date written day/month")
    assert "input_formats such as ['%d/%m/%Y'] or ['%m/%d/%y']" in reasons[3]
    assert reasons[4] == (
        f"types: d value {ahead} is more than 366 days in the future "
        "(clean.future_days; a typo'd year?)"
    )
    declared = CleanSpec(
        standardise=[Standardise(column="d", how="date", input_formats=["%Y-%m-%d", "%d/%m/%y"])],
        future_days=None,
    )
    (out / "t").rename(out / "first")
    again = run_clean(write("d.csv", text), declared, out)
    got = {r[0]: r[1] for r in _rows(again.clean_path)}
    assert got["2"] == date(2010, 1, 12) and got["3"] == date(2010, 12, 31)
    assert got["4"] == date.fromisoformat(ahead)  # no limit asked for


def test_placeholders_read_as_missing_and_money_as_numbers(write, out):
    text = (
        'id,product,amount\n1,apples,"$1,234.50"\n2,UNKNOWN,1 234 EUR\n3,pears,"12,5"\n'
        '4,pears,"1,234,567"\n5,ERROR,abc\n6,plums,-7.5\n7,plums, n/a \n'
    )
    spec = CleanSpec(
        na_values=["ERROR", "UNKNOWN", "n/a"],
        drop_missing=DropMissing(columns=["product"]),
        standardise=[Standardise(column="amount", how="number")],
        types={"amount": "double"},
    )
    report = run_clean(write("m.csv", text), spec, out)
    assert _rows(report.clean_path) == [
        ("1", "apples", 1234.5),
        ("4", "pears", 1234567.0),
        ("6", "plums", -7.5),
        ("7", "plums", None),
    ]
    msgs = {s.name: s.message for s in report.steps}
    assert msgs["na_values"] == "read 3 placeholder values (ERROR, UNKNOWN, n/a) as missing"
    reasons = {q["_row"]: q["_reasons"] for q in list_quarantined(out, "t")}
    assert reasons[2] == ["drop_missing: product is missing"]  # UNKNOWN
    assert reasons[3][0] == "standardise: amount value 12,5 is not a valid number"
    assert list(reasons) == [2, 3, 5]
