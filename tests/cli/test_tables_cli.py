"""``datawheel clean`` / ``quarantine`` over the real CRM export, configured in datawheel.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from datawheel.cli.main import app

runner = CliRunner()
CRM = Path(__file__).resolve().parents[3] / "shared/datasets/crm_sales_opportunities"


def test_clean_and_quarantine_from_config(tmp_path: Path) -> None:
    assert (CRM / "sales_pipeline.csv").exists(), "CI keeps ../shared beside the repo"
    kb = tmp_path / "kb"
    assert runner.invoke(app, ["init", str(kb)]).exit_code == 0
    with (kb / "datawheel.yaml").open("a") as fh:
        fh.write(
            f"""
sources:
  crm:
    path: {CRM / "sales_pipeline.csv"}
    key: [opportunity_id]
    clean:
      types: {{engage_date: date, close_date: date}}
      rules:
        - close_date >= engage_date
        - close_date is not null
        - deal_stage in ('Won', 'Lost', 'Engaging', 'Prospecting')
        - deal_stage <> '[test]'
"""
        )
    # the appended block replaces the template's "sources: {}" (YAML keeps the last key)
    result = runner.invoke(app, ["clean", "crm", "-w", str(kb), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows_in"] == 8800
    assert report["rows_clean"] + report["rows_quarantined"] == 8800
    rules = {r["expr"]: r for r in report["rules"]}
    assert rules["close_date >= engage_date"]["kept"] == 8800  # open deals: not applicable
    assert rules["close_date is not null"]["kept"] == 8800 - 2089  # required: they fail
    listed = runner.invoke(
        app, ["quarantine", "list", "crm", "-w", str(kb), "--json", "--limit", "5"]
    )
    rows = json.loads(listed.stdout)["rows"]
    assert len(rows) == 5
    reason = "rule close_date is not null: failed (close_date is not null)"
    assert all(r["_reasons"] == [reason] for r in rows), [r["_reasons"] for r in rows]
    table = runner.invoke(app, ["quarantine", "list", "crm", "-w", str(kb), "--limit", "1"])
    first = rows[0]
    assert f"opportunity_id={first['opportunity_id']}" in table.output  # the row as it came in
    unknown = runner.invoke(app, ["clean", "nope", "-w", str(kb)])
    assert unknown.exit_code == 2 and "known: crm" in unknown.output

    # every run's outputs are registered in the store, versioned by run
    shown = runner.invoke(app, ["clean", "crm", "-w", str(kb)])
    assert shown.exit_code == 0
    # the report is printed as text: "[...]" in a rule or reason is not read as markup
    assert "deal_stage <> '[test]'" in shown.output
    from datawheel import Workspace

    with Workspace.open(kb) as ws:
        versions = ws.table_versions("crm")
    assert [(v["run"], v["kind"]) for v in versions] == [(1, "clean"), (2, "clean")]
    for v in versions:
        assert (kb / v["clean_path"]).is_file() and (kb / v["quarantine_path"]).is_file()
        assert v["rows_clean"] == report["rows_clean"] and v["rows_in"] == 8800


def test_sources_add_keeps_comments_and_validates(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    runner.invoke(app, ["init", str(kb)])
    data = tmp_path / "deals.csv"
    data.write_text("id,amount\n1,10\n2,-5\n")
    added = runner.invoke(app, ["sources", "add", "deals", str(data), "-w", str(kb)])
    assert added.exit_code == 0, added.output
    text = (kb / "datawheel.yaml").read_text()
    assert "# Embedding model" in text and f"path: {data}" in text  # comments kept
    listed = runner.invoke(app, ["sources", "list", "-w", str(kb), "--json"])
    assert json.loads(listed.stdout)["deals"]["path"] == str(data)
    again = runner.invoke(app, ["sources", "add", "deals", str(data), "-w", str(kb)])
    assert again.exit_code == 2 and "already exists" in again.output
    secret = runner.invoke(
        app,
        ["sources", "add", "erp", "postgresql://u:pw@db/erp", "--table", "orders", "-w", str(kb)],
    )
    assert secret.exit_code == 2 and "env:" in secret.output
    assert "pw@" not in (kb / "datawheel.yaml").read_text()
    db = runner.invoke(
        app, ["sources", "add", "erp", "env:ERP_DB", "--table", "orders", "-w", str(kb)]
    )
    assert db.exit_code == 0, db.output
    result = runner.invoke(app, ["clean", "deals", "-w", str(kb), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_in"] == 2


def test_sources_add_shows_the_first_rows_and_spots_a_title_line(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    runner.invoke(app, ["init", str(kb)])
    titled = tmp_path / "report.csv"
    titled.write_text("Q1 sales report,,\nid,amount,region\n1,10,north\n2,-5,south\n")
    added = runner.invoke(app, ["sources", "add", "q1", str(titled), "-w", str(kb), "--json"])
    assert added.exit_code == 0, added.output
    preview = json.loads(added.stdout)["preview"]
    assert preview["columns"] == ["Q1 sales report", "column2", "column3"]
    assert preview["rows"][0] == ["id", "amount", "region"]
    assert "set skip_rows:" in preview["hint"]
    plain = tmp_path / "deals.csv"
    plain.write_text("id,amount\n1,10\n2,-5\n")
    shown = runner.invoke(app, ["sources", "add", "deals", str(plain), "-w", str(kb)])
    assert shown.exit_code == 0 and "first 2 rows" in shown.output
    assert "skip_rows" not in shown.output
    # a database that is down: registered all the same, with the reason it cannot be read
    down = runner.invoke(
        app,
        ["sources", "add", "erp", "postgresql://127.0.0.1:9/erp", "--table", "t", "-w", str(kb)],
    )
    assert down.exit_code == 0 and "cannot read it yet" in down.output
    assert "cannot connect to the database" in down.output
    assert "erp:" in (kb / "datawheel.yaml").read_text()


def test_quarantine_summary_and_csv_round_trip_through_readmit(tmp_path: Path) -> None:
    """Export the quarantine, fix a value in the CSV, readmit it; the summary counts by check,
    and a clean that keeps nothing exits 1."""
    import csv as csv_module

    from datawheel import Workspace

    deals = tmp_path / "deals.csv"
    deals.write_text("id,stage,amount\n1,won,100\n2,lost,-5\n3,maybe,50\n4,won,-1\n")
    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    with (kb / "datawheel.yaml").open("a") as fh:
        fh.write(
            f"\nsources:\n  deals:\n    path: {deals}\n    clean:\n"
            "      types: {amount: double}\n"
            "      rules: [amount > 0, \"stage in ('won','lost')\"]\n"
        )
    assert runner.invoke(app, ["clean", "deals", "-w", str(kb)]).exit_code == 0
    summary = runner.invoke(
        app, ["quarantine", "list", "deals", "--summary", "--json", "-w", str(kb)]
    )
    checks = {c["check"]: c["rows"] for c in json.loads(summary.stdout)["checks"]}
    assert checks == {"rule amount > 0": 2, "rule stage in ('won','lost')": 1}

    fix = tmp_path / "fix.csv"
    exported = runner.invoke(app, ["quarantine", "list", "deals", "--csv", str(fix), "-w", str(kb)])
    assert exported.exit_code == 0 and "wrote 3 quarantined rows" in exported.stdout
    rows = list(csv_module.DictReader(fix.open()))
    assert [r["_row"] for r in rows] == ["2", "3", "4"]
    assert rows[0]["_reasons"] == "rule amount > 0: failed (amount > 0)"
    rows[0]["amount"] = "5"
    with fix.open("w", newline="") as fh:
        writer = csv_module.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])
    readmitted = runner.invoke(
        app, ["quarantine", "readmit", "deals", "--fixed", str(fix), "--json", "-w", str(kb)]
    )
    assert readmitted.exit_code == 0, readmitted.output
    assert json.loads(readmitted.stdout)["rows_clean"] == 2

    deals.write_text("id,stage,amount\n1,won,-100\n")  # a clean that keeps nothing
    nothing = runner.invoke(app, ["clean", "deals", "-w", str(kb)])
    assert nothing.exit_code == 1 and "every row was quarantined" in nothing.stdout
