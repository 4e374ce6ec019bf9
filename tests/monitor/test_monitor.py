"""``run_monitor`` end to end on real CSV files and a real SQLite store."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from datawheel import Workspace
from datawheel.monitor import History, MonitorConfig, psi, run_monitor
from datawheel.store.schema import documents

from ._rows import HEADER, NOW, add, by, make_rows, write_csv

# -- (a) unchanged --------------------------------------------------------------------------


def test_unchanged_source_is_ok_and_history_is_stored(ws: Workspace, tmp_path: Path) -> None:
    add(ws, "sales", write_csv(tmp_path / "sales.csv", make_rows(300)))
    first = run_monitor(ws, MonitorConfig(), now=NOW)
    second = run_monitor(ws, MonitorConfig(), now=NOW + timedelta(days=1))
    assert first.exit_code == 0 and second.exit_code == 0, second.render()
    assert {f.level for f in second.findings} == {"ok"}
    assert second.sources["sales"]["columns"] == {
        "id": "integer",
        "day": "date",
        "amount": "double",
        "category": "varchar",
    }
    assert second.sources["sales"]["rows"] == 300
    assert "largest PSI 0.000" in by(second, "drift")[0].message
    history = History(ws.store.engine)
    assert [s["rows"] for s in history.list_snapshots("sales")] == [300, 300]
    stored = history.findings(run_id=second.run_id)
    assert {(f["check"], f["level"]) for f in stored} >= {("volume", "ok"), ("drift", "ok")}
    run = ws.store.list_runs(kind="monitor", limit=1)[0]
    assert run["status"] == "finished" and run["counts"]["level"] == "ok"
    assert second.to_dict()["exit_code"] == 0
    json.dumps(second.to_dict())  # serialisable as is


# -- (b) volume -----------------------------------------------------------------------------


def test_few_rows_added_is_a_volume_alert(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    add(ws, "sales", write_csv(path, make_rows(1000)))
    cfg = MonitorConfig()
    assert by(run_monitor(ws, cfg, now=NOW), "volume")[0].message == "first run: 1000 rows"
    write_csv(path, make_rows(2000))  # 1000 added
    grown = run_monitor(ws, cfg, now=NOW)
    assert grown.exit_code == 0, grown.render()  # the growing id column is not "drift"
    write_csv(path, make_rows(2050))  # only 50 added
    report = run_monitor(ws, cfg, now=NOW)
    (volume,) = by(report, "volume")
    assert volume.level == "alert" and report.exit_code == 2
    assert (volume.value, volume.threshold) == (50.0, 800.0)
    assert "50 rows added, below 80% of the trailing average 1000.0 (1 run)" in volume.message
    write_csv(path, make_rows(1500))  # rows disappeared
    (lost,) = by(run_monitor(ws, cfg, now=NOW), "volume")
    assert lost.level == "alert" and "550 rows disappeared" in lost.message


def test_volume_total_for_replaced_exports(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "daily.csv"
    add(ws, "daily", write_csv(path, make_rows(100)))
    cfg = MonitorConfig(sources={"daily": {"volume": "total"}})
    run_monitor(ws, cfg, now=NOW)
    write_csv(path, make_rows(90))
    assert by(run_monitor(ws, cfg, now=NOW), "volume")[0].level == "ok"
    write_csv(path, make_rows(20))
    (volume,) = by(run_monitor(ws, cfg, now=NOW), "volume")
    assert volume.level == "alert" and volume.threshold == pytest.approx(0.8 * 95)


# -- (c) drift ------------------------------------------------------------------------------


def _numpy_psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))  # linear, as quantile_cont
    # right-closed bins: a value's bin is the number of edges below it
    e = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)
    e_share = np.maximum(e / e.sum(), 1e-4)
    a_share = np.maximum(a / a.sum(), 1e-4)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def test_shifted_column_is_a_drift_alert_with_numpy_psi(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    ref_rows = make_rows(1000, seed=1)
    add(ws, "sales", write_csv(path, ref_rows))
    run_monitor(ws, MonitorConfig(), now=NOW)
    cur_rows = make_rows(1000, seed=2, mean=58.0)
    cur_rows = [[r[0] + 1000, *r[1:]] for r in cur_rows]  # new ids, as in a fresh export
    write_csv(path, cur_rows)
    report = run_monitor(ws, MonitorConfig(sources={"sales": {"volume": "total"}}), now=NOW)
    drift = {f.column: f for f in by(report, "drift")}
    assert set(drift) == {"amount"}  # category kept its mix; ids are never checked
    amount = drift["amount"]
    assert amount.level == "alert" and "amount" in amount.message and amount.threshold == 0.25
    expected = _numpy_psi(
        np.array([float(r[2]) for r in ref_rows]), np.array([float(r[2]) for r in cur_rows])
    )
    assert expected > 0.25
    assert amount.value == pytest.approx(expected, rel=1e-5)
    assert report.exit_code == 2
    # the reference is the first snapshot: a later run compares with it, not the last run
    again = run_monitor(ws, MonitorConfig(), now=NOW)
    assert {f.column for f in by(again, "drift")} >= {"amount"}
    # against the previous run nothing moved
    previous = run_monitor(ws, MonitorConfig(reference="previous"), now=NOW)
    assert by(previous, "drift")[0].level == "ok"


def test_key_and_ignored_columns_are_not_checked_for_drift(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    add(ws, "sales", write_csv(path, make_rows(500, seed=1)))
    cfg = MonitorConfig(sources={"sales": {"ignore_columns": ["id", "amount"]}})
    run_monitor(ws, cfg, now=NOW)
    write_csv(path, [[r[0] + 500, *r[1:]] for r in make_rows(500, seed=2, mean=90.0)])
    drift = by(run_monitor(ws, cfg, now=NOW), "drift")
    assert [f.level for f in drift] == ["ok"] and "(category)" in drift[0].message


def test_psi_of_categories_and_edge_cases() -> None:
    assert psi([50, 30, 20, 0], [50, 30, 20, 0]) == 0.0
    assert psi([10, 0], [0, 0]) is None
    shifted = psi([50, 30, 20, 0], [20, 30, 50, 0])
    assert shifted == pytest.approx(0.6 * np.log(2.5))  # (.2-.5)ln(.2/.5) + (.5-.2)ln(.5/.2)


# -- (d) schema -----------------------------------------------------------------------------


def test_added_and_removed_columns(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    rows = make_rows(50)
    add(ws, "sales", write_csv(path, rows))
    run_monitor(ws, MonitorConfig(), now=NOW)
    write_csv(path, [[*r, "north"] for r in rows], [*HEADER, "region"])
    (added,) = by(run_monitor(ws, MonitorConfig(), now=NOW), "schema")
    assert (added.level, added.message) == ("warning", "added region")
    write_csv(path, [[r[0], r[1], r[2], "north"] for r in rows], ["id", "day", "amount", "region"])
    (removed,) = by(run_monitor(ws, MonitorConfig(), now=NOW), "schema")
    assert (removed.level, removed.message) == ("alert", "removed category")
    write_csv(path, [[r[0], r[1], "n/a", "north"] for r in rows], ["id", "day", "amount", "region"])
    (retyped,) = by(run_monitor(ws, MonitorConfig(), now=NOW), "schema")
    assert retyped.level == "alert" and "amount (double → varchar)" in retyped.message


# -- (e) null rates -------------------------------------------------------------------------


def test_null_rate_jump_warns_then_alerts(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    rows = make_rows(100)
    add(ws, "sales", write_csv(path, rows))
    run_monitor(ws, MonitorConfig(), now=NOW)
    write_csv(path, [[*r[:3], None if i < 15 else r[3]] for i, r in enumerate(rows)])
    (warn,) = by(run_monitor(ws, MonitorConfig(), now=NOW), "nulls")
    assert (warn.level, warn.column, warn.value) == ("warning", "category", 0.15)
    assert "category: null rate rose from 0.0% to 15.0%" in warn.message
    write_csv(path, [[*r[:3], "  " if i < 40 else r[3]] for i, r in enumerate(rows)])
    (alert,) = by(run_monitor(ws, MonitorConfig(), now=NOW), "nulls")
    assert (alert.level, alert.value, alert.threshold) == ("alert", 0.4, 0.2)


# -- (f) freshness --------------------------------------------------------------------------


def test_freshness(ws: Workspace, tmp_path: Path) -> None:
    add(ws, "old", write_csv(tmp_path / "old.csv", make_rows(30, age_days=10)))
    add(ws, "new", write_csv(tmp_path / "new.csv", make_rows(30, age_days=1)))
    report = run_monitor(ws, MonitorConfig(), now=NOW)
    (old,) = by(report, "freshness", "old")
    assert old.level == "alert" and (old.value, old.threshold) == (10.0, 2.0)
    assert old.message == "stale: newest day is 2026-02-20, 10 days old (stale after 2)"
    assert by(report, "freshness", "new")[0].level == "ok"
    relaxed = MonitorConfig(sources={"old": {"stale_after_days": 14}})
    assert by(run_monitor(ws, relaxed, now=NOW), "freshness", "old")[0].level == "ok"
    wrong = MonitorConfig(sources={"old": {"date_column": "shipped"}})
    (missing,) = by(run_monitor(ws, wrong, now=NOW), "freshness", "old")
    assert missing.level == "warning" and "'shipped' is not in the table" in missing.message
    assert "columns: id (integer), day (date)" in missing.message
    text = MonitorConfig(sources={"old": {"date_column": "category"}})
    (not_date,) = by(run_monitor(ws, text, now=NOW), "freshness", "old")
    assert "'category' is varchar, not a date" in not_date.message
    add(ws, "ahead", write_csv(tmp_path / "ahead.csv", make_rows(30, age_days=-1488)))
    (ahead,) = by(run_monitor(ws, MonitorConfig(), now=NOW), "freshness", "ahead")
    assert ahead.level == "warning" and "1488 days in the future" in ahead.message


# -- (g) documents --------------------------------------------------------------------------


def test_documents_added_per_week_and_stale(ws: Workspace, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    two_years = (NOW - timedelta(days=730)).timestamp()
    for i in range(5):
        f = docs / f"note{i}.txt"
        f.write_text(f"Note {i}: the warehouse in zone {i} ships on weekdays.", encoding="utf-8")
        if i < 3:
            os.utime(f, (two_years, two_years))
    assert ws.ingest([docs]).added == 5
    # history: a first load 40 days ago, one document in each of the 4 weeks before this one
    ages = {"note0": 40, "note1": 10, "note2": 17, "note3": 24, "note4": 31}
    with ws.store.engine.begin() as conn:
        for stem, days in ages.items():
            conn.execute(
                update(documents)
                .where(documents.c.title == stem)
                .values(ingested_at=NOW - timedelta(days=days))
            )
    report = run_monitor(ws, MonitorConfig(), now=NOW)
    (added,) = by(report, "documents_added")
    assert added.level == "warning" and (added.value, added.threshold) == (0.0, 0.8)
    assert "the weekly average 1.0 over 4 weeks" in added.message
    (stale,) = by(report, "documents_stale")
    assert stale.level == "warning" and stale.value == 0.6
    assert stale.message.startswith("3 of 5 dated documents (60%) are older than 365 days")
    lenient = MonitorConfig(documents_stale_share=0.75, documents_stale_days=1000)
    later = run_monitor(ws, lenient, now=NOW + timedelta(days=2))
    assert by(later, "documents_stale")[0].level == "ok"


# -- (j) unreadable source ------------------------------------------------------------------


def test_missing_source_is_an_alert_and_others_continue(ws: Workspace, tmp_path: Path) -> None:
    gone = write_csv(tmp_path / "gone.csv", make_rows(10))
    add(ws, "gone", gone)
    add(ws, "sales", write_csv(tmp_path / "sales.csv", make_rows(40)))
    gone.unlink()
    report = run_monitor(ws, MonitorConfig(), now=NOW)
    (read,) = by(report, "read")
    assert (read.source, read.level) == ("gone", "alert")
    assert f"file {gone} does not exist" in read.message
    assert report.sources["sales"]["rows"] == 40 and report.sources["gone"]["error"]
    assert by(report, "volume", "sales")[0].level == "ok"
    assert [s["source"] for s in History(ws.store.engine).list_snapshots()] == ["sales"]


def test_malformed_lines_warn_then_alert(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    rows = make_rows(200)
    add(ws, "sales", write_csv(path, rows))
    assert by(run_monitor(ws, MonitorConfig(), now=NOW), "rejected") == []  # all parsed
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(5, "4,2026-03-01,12.5,A,surplus")  # one field too many
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    one = run_monitor(ws, MonitorConfig(), now=NOW)
    (found,) = by(one, "rejected")
    assert found.level == "warning" and found.value == 1.0, found
    assert "line 6" in found.message and "quarantines" in found.message
    # past rejected_alert of all lines it is an alert
    (strict,) = by(run_monitor(ws, MonitorConfig(rejected_alert=0.001), now=NOW), "rejected")
    assert strict.level == "alert" and strict.threshold == 0.001
    # an unclosed quote runs on to the end of the file: one record, most of the lines
    lines[5] = '4,2026-03-01,"12.5,A'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (quote,) = by(run_monitor(ws, MonitorConfig(), now=NOW), "rejected")
    assert quote.level == "alert" and quote.value == 197.0, quote  # lines 6 to 202
    assert "1 malformed record(s) spanning 197 lines" in quote.message


# -- (k) CLI --------------------------------------------------------------------------------


def test_cli_exit_codes(tmp_path: Path) -> None:
    from datawheel.cli.main import app

    runner = CliRunner()
    kb = tmp_path / "kb"
    path = write_csv(tmp_path / "t.csv", [[i, i * 2] for i in range(20)], ["id", "value"])
    with Workspace.init(kb) as ws:
        ws.add_source("t", str(path))

    ok = runner.invoke(app, ["monitor", "-w", str(kb)])
    assert ok.exit_code == 0, ok.output
    assert "ok: 0 alert, 0 warning, 5 ok" in ok.output and "stored as run" in ok.output

    write_csv(path, [[i, i * 2, "x"] for i in range(40)], ["id", "value", "extra"])
    warned = runner.invoke(app, ["monitor", "-w", str(kb), "--json"])
    assert warned.exit_code == 1, warned.output
    data = json.loads(warned.stdout)
    assert data["level"] == "warning" and data["exit_code"] == 1
    assert any(f["message"] == "added extra" for f in data["findings"])

    path.unlink()
    alert = runner.invoke(app, ["monitor", "--source", "t", "-w", str(kb)])
    assert alert.exit_code == 2 and "does not exist" in alert.output

    unknown = runner.invoke(app, ["monitor", "--source", "nope", "-w", str(kb)])
    assert unknown.exit_code == 2 and "known: t" in unknown.output
    bad = runner.invoke(app, ["monitor", "--sourc", "t", "-w", str(kb)])
    assert bad.exit_code == 2 and "--source" in bad.output


# -- settings and schema --------------------------------------------------------------------


def test_config_validation_and_migration_body(tmp_path: Path) -> None:
    from pydantic import ValidationError
    from sqlalchemy import create_engine, inspect

    from datawheel.monitor.history import create_tables

    with pytest.raises(ValidationError, match="psi_alert"):
        MonitorConfig(psi_warn=0.3, psi_alert=0.2)
    with pytest.raises(ValidationError, match="extra"):
        MonitorConfig.model_validate({"psi_alarm": 0.3})
    email = MonitorConfig.model_validate(
        {"email": {"smtp_host": "mx", "from": "a@example.com", "to": ["b@example.com"]}}
    ).email
    assert email is not None and (email.from_, email.smtp_port) == ("a@example.com", 25)
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    History(engine)  # first use creates the tables ...
    with engine.begin() as conn:
        create_tables(conn)  # ... and the migration then finds them
    assert {"monitor_snapshots", "monitor_findings"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_unknown_source_in_monitor_config(ws: Workspace, tmp_path: Path) -> None:
    from datawheel.errors import ConfigError

    add(ws, "sales", write_csv(tmp_path / "sales.csv", make_rows(10)))
    with pytest.raises(ConfigError, match="unknown source.* salse; the table sources are: sales"):
        run_monitor(ws, MonitorConfig(sources={"salse": {}}), now=NOW)


# -- the real store-item demand data --------------------------------------------------------

DEMAND = Path(__file__).resolve().parents[3] / "shared/datasets/store_item_demand/train.csv"


@pytest.mark.slow
def test_store_item_demand_daily(ws: Workspace, tmp_path: Path) -> None:
    """A growing sales table (volume), and daily extracts of it (drift across seasons)."""
    import duckdb

    assert DEMAND.exists(), "CI keeps ../shared beside the repo"
    con = duckdb.connect()

    def cut(where: str, path: Path) -> Path:
        con.execute(
            f"COPY (SELECT * FROM read_csv('{DEMAND}') WHERE {where} ORDER BY date, store, item) "
            f"TO '{path}' (HEADER)"
        )
        return path

    table, daily = tmp_path / "sales.csv", tmp_path / "daily.csv"
    add(ws, "sales", cut("date <= DATE '2017-12-20'", table))
    add(ws, "daily", cut("date = DATE '2017-01-02'", daily))
    cfg = MonitorConfig(sources={"daily": {"volume": "total", "stale_after_days": 100_000}})
    day = datetime(2017, 12, 21, 6, tzinfo=UTC)
    first = run_monitor(ws, cfg, now=day)
    assert first.sources["sales"]["rows"] == 907_500 and first.exit_code == 0
    cut("date <= DATE '2017-12-21'", table)  # one day: 500 store x item rows
    cut("date = DATE '2017-01-09'", daily)  # the same weekday a week later
    second = run_monitor(ws, cfg, now=day + timedelta(days=1))
    assert second.exit_code == 0, second.render()
    # a late feed: 20 of the day's 500 rows; and a Monday in July
    cut(
        "date <= DATE '2017-12-21' OR (date = DATE '2017-12-22' AND store = 1 AND item <= 20)",
        table,
    )
    cut("date = DATE '2017-07-03'", daily)
    third = run_monitor(ws, cfg, now=day + timedelta(days=2))
    (volume,) = by(third, "volume", "sales")
    assert volume.level == "alert" and volume.value == 20 and volume.threshold == 400
    drift = {f.column: f for f in by(third, "drift", "daily")}
    assert set(drift) == {"sales"} and drift["sales"].level == "alert"
    assert by(third, "drift", "sales")[0].level == "ok"  # five years of history barely move
    assert by(third, "freshness", "sales")[0].level == "ok"


def test_rebaseline_accepts_a_known_change(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    add(ws, "sales", write_csv(path, make_rows(1000, seed=1)))
    cfg = MonitorConfig(sources={"sales": {"volume": "total"}})
    run_monitor(ws, cfg, now=NOW)
    shifted = [[r[0] + 1000, *r[1:]] for r in make_rows(1000, seed=2, mean=58.0)]
    write_csv(path, shifted)
    assert by(run_monitor(ws, cfg, now=NOW), "drift")[0].level == "alert"
    # the shift is a known change: accept it, then the same data is stable against it
    accepted = run_monitor(ws, cfg, now=NOW, rebaseline=True)
    (note,) = by(accepted, "drift")
    assert note.level == "ok" and "rebaselined" in note.message and "1,000 rows" in note.message
    assert by(accepted, "nulls") == []
    after = run_monitor(ws, cfg, now=NOW)
    assert [f.level for f in by(after, "drift")] == ["ok"]
    assert "largest PSI 0.000" in by(after, "drift")[0].message
    # and a shift back to the old distribution is now the drift
    write_csv(path, make_rows(1000, seed=3))
    assert by(run_monitor(ws, cfg, now=NOW), "drift")[0].level == "alert"


def test_cli_rebaseline(tmp_path: Path) -> None:
    from datawheel.cli.main import app

    runner = CliRunner()
    kb = tmp_path / "kb"
    with Workspace.init(kb) as ws:
        ws.add_source("sales", str(write_csv(tmp_path / "sales.csv", make_rows(300))))
    result = runner.invoke(app, ["monitor", "--rebaseline", "--json", "-w", str(kb)])
    body = json.loads(result.stdout)
    drift = [f for f in body["findings"] if f["check"] == "drift"]
    assert [f["message"][:11] for f in drift] == ["rebaselined"], body
    assert "--rebaseline" in runner.invoke(app, ["monitor", "--help"]).stdout
