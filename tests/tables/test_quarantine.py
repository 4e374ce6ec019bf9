"""Listing quarantined rows and re-admitting fixed ones."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from datawheel.errors import ConfigError
from datawheel.tables import CleanSpec, Dedupe, Rule, list_quarantined, readmit, run_clean

DEALS = "id,stage,amount\n1,won,100\n2,lost,-5\n3,maybe,50\n4,won,-1\n4,won,-1\n"
SPEC = CleanSpec(
    dedupe=Dedupe(),
    types={"amount": "double"},
    rules=[
        Rule(name="positive", expr="amount > 0"),
        Rule(name="stage", expr="stage in ('won','lost')"),
    ],
)


def _rows(path: Path) -> list[tuple]:
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def _write_fixed(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["_row", "id", "stage", "amount"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def test_readmit_round_trip(write, out, tmp_path):
    first = run_clean(write("d.csv", DEALS), SPEC, out)
    assert (first.rows_clean, first.rows_quarantined) == (1, 4)
    bad = {b["_row"]: b for b in list_quarantined(out, "t")}
    assert sorted(bad) == [2, 3, 4, 5]
    assert bad[5]["_reasons"] == ["dedupe: duplicate of row 4"]
    # fix row 2 fully, row 3 only half (stage still wrong)
    fixed = [dict(bad[2], amount="5"), dict(bad[3], amount="-50")]
    report = readmit("t", _write_fixed(tmp_path / "fixed.csv", fixed), out)
    assert report.run == 2 and report.rows_in == 2
    assert [r.render() for r in report.rules] == [
        "positive: kept 1 of 2 (50.0%)",
        "stage: kept 1 of 2 (50.0%)",
    ]
    assert _rows(report.clean_path) == [("1", "won", 100.0), ("2", "lost", 5.0)]
    still = {b["_row"]: b for b in list_quarantined(out, "t")}
    assert sorted(still) == [3, 4, 5]
    assert still[3]["amount"] == "-50"
    assert still[3]["_reasons"] == [
        "rule positive: failed (amount > 0)",
        "rule stage: failed (stage in ('won','lost'))",
    ]
    assert report.rows_clean + report.rows_quarantined == first.rows_in
    # the first run is untouched
    assert _rows(first.clean_path) == [("1", "won", 100.0)]


def test_readmit_needs_the_table_columns(write, out, tmp_path):
    run_clean(write("d.csv", DEALS), SPEC, out)
    bad = tmp_path / "bad.csv"
    bad.write_text("_row,id\n2,2\n")
    with pytest.raises(ConfigError, match="lacks column.*stage, amount"):
        readmit("t", bad, out)


def test_readmit_before_any_run(out, tmp_path):
    with pytest.raises(ConfigError, match="no cleaning runs"):
        readmit("nope", tmp_path / "x.csv", out)


def test_readmit_a_line_the_reader_could_not_parse(write, out, tmp_path):
    run_clean(write("d.csv", "id,stage,amount\n1,won,100\n2,lost\n"), SPEC, out)
    (bad,) = list_quarantined(out, "t", rule="read")
    assert bad["_line"] == 3 and bad["_raw_line"] == "2,lost"
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("_line,id,stage,amount\n3,2,lost,7\n", encoding="utf-8")
    report = readmit("t", fixed, out)
    assert _rows(report.clean_path) == [("1", "won", 100.0), ("2", "lost", 7.0)]
    assert list_quarantined(out, "t") == []


def test_a_second_clean_keeps_the_rows_fixed_after_the_first(tmp_path):
    """Re-running clean (new rows arrived, a rule changed) applies the fixes readmitted
    after earlier runs again, as long as the raw row is still the one that was fixed."""
    from datawheel import Workspace

    source = tmp_path / "deals.csv"
    source.write_text(DEALS)
    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    with (kb / "datawheel.yaml").open("a") as fh:
        fh.write(
            f"\nsources:\n  deals:\n    path: {source}\n    clean:\n"
            "      dedupe: {on: all}\n      types: {amount: double}\n"
            "      rules: [amount > 0, \"stage in ('won','lost')\"]\n"
        )
    with Workspace.open(kb) as ws:
        first = ws.clean("deals")
        assert (first.rows_clean, first.rows_quarantined, first.reapplied) == (1, 4, 0)
        bad = {b["_row"]: b for b in ws.quarantined("deals")}
        ws.readmit("deals", _write_fixed(tmp_path / "fixed.csv", [dict(bad[2], amount="5")]))

        again = ws.clean("deals")
        assert again.reapplied == 1 and (again.rows_clean, again.rows_quarantined) == (2, 3)
        assert "1 rows fixed after earlier runs were applied again" in again.render()
        assert _rows(again.clean_path) == [("1", "won", 100.0), ("2", "lost", 5.0)]
        assert ws.table_versions("deals")[-1]["kind"] == "readmit"

        source.write_text(DEALS.replace("2,lost,-5", "2,lost,-7"))  # the raw row changed
        third = ws.clean("deals")
        assert third.reapplied == 0 and third.rows_clean == 1
        assert {b["_row"] for b in ws.quarantined("deals")} == {2, 3, 4, 5}


def test_a_clean_that_quarantines_every_row_says_so(write, out):
    report = run_clean(write("d.csv", DEALS), SPEC.model_copy(update={"rules": [
        Rule(name="never", expr="amount > 1000")]}), out)  # fmt: skip
    assert report.rows_clean == 0
    assert "warning: every row was quarantined" in report.render()
