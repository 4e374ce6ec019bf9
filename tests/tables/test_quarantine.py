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
