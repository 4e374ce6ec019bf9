"""``datawheel inventory``: profiles checked against numbers computed here, classification
by rules that are data, broken sources reported, and a self-contained HTML report."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import insert
from typer.testing import CliRunner

from datawheel.tables import TableSource
from datawheel.tables.classify import classify
from datawheel.tables.inventory import build_inventory, profile_source
from datawheel.tables.inventory_html import render_html
from datawheel.tables.inventory_rules import InventoryRules
from datawheel.workspace import Workspace

CRM = (
    Path(__file__).resolve().parents[3]
    / "shared/datasets/crm_sales_opportunities/sales_pipeline.csv"
)


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _workspace(root: Path, sources: dict[str, dict[str, object]]) -> Workspace:
    kb = root / "kb"
    Workspace.init(kb).close()
    with (kb / "datawheel.yaml").open("a", encoding="utf-8") as fh:
        fh.write(
            "\n" + yaml.safe_dump({"sources": sources}, sort_keys=False)
        )  # the last sources: key wins
    return Workspace.open(kb)


def _crm_like(path: Path, n: int = 150) -> Path:
    stages = ["Won", "Lost", "Won", "Engaging"]
    rows = [
        [f"OPP{i:04d}", f"agent {i % 7}", f"GTX {i % 3}", f"acct {i % 11}", stages[i % 4],
         "2017-01-02", "2017-03-04", 100 + i]
        for i in range(n)
    ]  # fmt: skip
    header = ["opportunity_id", "sales_agent", "product", "account", "deal_stage",
              "engage_date", "close_date", "close_value"]  # fmt: skip
    return _csv(path, header, rows)


def _tickets(path: Path, n: int = 150) -> Path:
    rows = [
        [i, f"user{i}@example.com", f"Cannot log in ({i})",
         "Hello, since this morning I cannot log in to the portal. " * 4, "open", "2024-05-01"]
        for i in range(n)
    ]  # fmt: skip
    header = ["ticket_id", "customer_email", "subject", "message", "status", "created_at"]
    return _csv(path, header, rows)


# --- profiles ------------------------------------------------------------------------------


def test_profile_matches_numbers_computed_independently(tmp_path: Path) -> None:
    rows = [
        ["1", "10.5", "Oslo", "2024-01-03", "true", ""],
        ["2", "", "Bergen", "2024-02-10", "false", ""],
        ["3", "7", "Oslo", "", "true", ""],
        ["4", "-2.25", "", "2023-12-31", "yes", ""],
        ["5", "10.5", "Oslo", "2024-02-10", "no", ""],
        ["6", "3", " ", "2024-01-03", "", ""],
    ]
    header = ["id", "amount", "city", "day", "flag", "empty"]
    path = _csv(tmp_path / "t.csv", header, rows)
    profile = profile_source(TableSource(name="t", path=str(path)))

    with path.open(newline="") as fh:
        records = list(csv.DictReader(fh))
    parse = {
        "id": int,
        "amount": float,
        "city": str,
        "day": dt.date.fromisoformat,
        "flag": lambda v: v in ("true", "yes"),
        "empty": str,
    }
    assert profile.rows == len(records) == 6
    assert [c.name for c in profile.columns] == header
    for col in profile.columns:
        values = [parse[col.name](r[col.name]) for r in records if r[col.name].strip()]
        assert col.nulls == len(records) - len(values), col.name
        assert col.null_rate == pytest.approx(col.nulls / len(records), abs=1e-4)
        assert col.distinct == len(set(values)), col.name
        lo, hi = (min(values), max(values)) if values else (None, None)
        if isinstance(lo, dt.date):
            lo, hi = lo.isoformat(), hi.isoformat()  # type: ignore[union-attr]
        assert (col.min, col.max) == (lo, hi), col.name
    types = {c.name: c.type for c in profile.columns}
    assert types == {
        "id": "integer",
        "amount": "double",
        "city": "varchar",
        "day": "date",
        "flag": "boolean",
        "empty": "varchar",
    }
    assert profile.size_bytes == path.stat().st_size
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    assert profile.last_updated == mtime.isoformat(timespec="seconds")
    assert (profile.newest_column, profile.newest) == ("day", "2024-02-10")


def test_real_crm_pipeline_is_profiled_correctly() -> None:
    assert CRM.exists(), "CI keeps ../shared beside the repo"
    lines = CRM.read_bytes().count(b"\n")  # what wc -l counts
    with CRM.open(newline="") as fh:
        records = list(csv.DictReader(fh))
    profile = profile_source(TableSource(name="crm", path=str(CRM)))
    assert profile.rows == lines - 1 == len(records)
    assert [c.name for c in profile.columns] == list(records[0])
    cols = {c.name: c for c in profile.columns}
    assert cols["close_value"].nulls == sum(not r["close_value"] for r in records)
    assert cols["deal_stage"].distinct == len({r["deal_stage"] for r in records})
    assert cols["close_value"].type == "integer"
    values = [int(r["close_value"]) for r in records if r["close_value"]]
    assert (cols["close_value"].min, cols["close_value"].max) == (min(values), max(values))
    assert cols["engage_date"].type == "date"
    assert profile.newest == max(r["close_date"] for r in records if r["close_date"])
    assert classify(profile, InventoryRules()).category == "business-process"


# --- classification ------------------------------------------------------------------------


def test_crm_like_table_is_business_process_with_reasons(tmp_path: Path) -> None:
    path = _crm_like(tmp_path / "deals.csv")
    result = classify(profile_source(TableSource(name="deals", path=str(path))), InventoryRules())
    assert result.category == "business-process"
    assert result.confidence == 1.0
    why = "\n".join(result.reasons)
    for column in ("deal_stage", "close_value", "opportunity_id"):
        assert f"column {column!r} matches" in why
    assert "values of 'deal_stage' look like deal or order outcomes" in why
    assert (result.value_density, result.flywheel, result.priority) == ("high", "high", "high")
    assert "predictive model" in result.application


def test_support_tickets_are_customer_interaction(tmp_path: Path) -> None:
    path = _tickets(tmp_path / "support.csv")
    result = classify(profile_source(TableSource(name="support", path=str(path))), InventoryRules())
    assert result.category == "customer-interaction"
    why = "\n".join(result.reasons)
    assert "column 'ticket_id' matches 'ticket'" in why
    assert "values of 'customer_email' look like email addresses" in why
    assert "long free text" in why and "source name 'support' matches 'support'" in why
    assert result.scores["customer-interaction"] > result.scores["business-process"]


def test_config_rules_override_the_defaults(tmp_path: Path) -> None:
    claims = _csv(tmp_path / "claims.csv", ["claim_no", "adjuster_notes"], [["C1", "ok"]] * 3)
    profile = profile_source(TableSource(name="claims", path=str(claims)))
    default = classify(profile, InventoryRules())
    assert default.category == "business-process" and default.confidence == 0.0
    assert "no column name or value matched" in default.reasons[0]

    # a category given in part keeps its other defaults
    section = yaml.safe_load(
        "expert_knowledge:\n  columns: [adjuster_notes, 're:^claim']\nsmall_table_rows: 0\n"
    )
    custom = classify(profile, InventoryRules.model_validate(section))
    assert custom.category == "expert-knowledge" and custom.confidence == 1.0
    assert "column 'claim_no' matches 're:^claim'" in custom.reasons
    assert custom.value_density == "high" and "fine-tuning" in custom.application

    tickets = _tickets(tmp_path / "tickets.csv")
    pinned = InventoryRules.model_validate(
        {"overrides": {"tickets": {"category": "expert-knowledge", "priority": "low"}}}
    )
    result = classify(profile_source(TableSource(name="tickets", path=str(tickets))), pinned)
    assert (result.category, result.priority) == ("expert-knowledge", "low")
    assert result.reasons[:2] == [
        "priority set in inventory.overrides.tickets",
        "category set in inventory.overrides.tickets",
    ]


def test_rules_validate_like_the_rest_of_the_config() -> None:
    with pytest.raises(ValidationError, match="extra"):
        InventoryRules.model_validate({"business_process": {"colums": ["x"]}})
    with pytest.raises(ValidationError, match="not a valid regex"):
        InventoryRules.model_validate({"public_web": {"columns": ["re:(unclosed"]}})
    with pytest.raises(ValidationError):
        InventoryRules.model_validate({"overrides": {"x": {"category": "gossip"}}})
    # the defaults survive a round trip through YAML (datawheel init writes them out)
    dumped = yaml.safe_load(yaml.safe_dump(InventoryRules().model_dump()))
    assert InventoryRules.model_validate(dumped) == InventoryRules()


# --- the whole workspace -------------------------------------------------------------------


def test_broken_sources_are_entries_with_their_error(tmp_path: Path) -> None:
    good = _crm_like(tmp_path / "deals.csv")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not really parquet")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    sources = {
        "deals": {"path": str(good)},
        "gone": {"path": "missing/nowhere.csv"},
        "corrupt": {"path": str(corrupt)},
        "empty": {"path": str(empty)},
    }
    with _workspace(tmp_path, sources) as ws:
        inventory = build_inventory(ws, InventoryRules())
    entries = {e.name: e for e in inventory.entries}
    assert list(entries) == ["deals", "gone", "corrupt", "empty", "knowledge base"]
    assert entries["deals"].profile and entries["deals"].profile.rows == 150
    assert "does not exist" in (entries["gone"].error or "")
    assert "nowhere.csv" in (entries["gone"].error or "")
    assert entries["corrupt"].profile is None
    assert (entries["corrupt"].error or "").startswith("cannot read it: Invalid Input Error")
    assert "is empty (0 bytes)" in (entries["empty"].error or "")
    assert inventory.summary()["error"] == 3
    assert [e.name for e in inventory.ranked()][-3:] == ["gone", "corrupt", "empty"]
    data = json.loads(json.dumps(inventory.to_dict(), allow_nan=False))
    assert data["entries"][0]["profile"]["columns"][0]["name"] == "opportunity_id"
    assert "sample" not in data["entries"][0]["profile"]["columns"][0]


def test_knowledge_base_entry_is_classified_by_document_kind(tmp_path: Path) -> None:
    from datawheel.store import schema as t

    with _workspace(tmp_path, {}) as ws:
        (empty,) = build_inventory(ws, InventoryRules()).entries
        assert empty.kind == "documents" and empty.documents and empty.documents.documents == 0
        assert empty.classification and empty.classification.category == "expert-knowledge"
        assert "no documents ingested yet" in empty.classification.reasons[-1]

        def docs(kind: str, n: int) -> list[dict[str, object]]:
            return [
                {"id": f"{kind}{i}", "uri": f"/{kind}/{i}", "fingerprint": "f", "kind": kind,
                 "groups": [], "meta": {}, "chunk_count": 2}
                for i in range(n)
            ]  # fmt: skip

        with ws.store.engine.begin() as conn:
            conn.execute(insert(t.documents), docs("md", 2) + docs("slack", 3))
        (kb,) = build_inventory(ws, InventoryRules()).entries
    assert kb.documents and (kb.documents.documents, kb.documents.chunks) == (5, 10)
    assert kb.documents.kinds == {"slack": 3, "md": 2} and kb.documents.newest_ingest
    assert kb.classification and kb.classification.category == "customer-interaction"
    assert "60% of documents are conversations" in kb.classification.reasons[0]
    assert kb.classification.application.startswith("RAG")


def test_html_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    evil = _csv(
        tmp_path / "evil.csv",
        ["<script>alert(1)</script>", "amount"],
        [["<b>bold</b>", "1"], ['"quoted" & <i>', "2"]],
    )
    with _workspace(tmp_path, {"evil": {"path": str(evil)}, "gone": {"path": "x.csv"}}) as ws:
        page = render_html(build_inventory(ws, InventoryRules()))
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script|<link|@import|url\(", page, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "&quot;quoted&quot; &amp; &lt;i&gt;" in page
    assert "does not exist" in page  # the broken source is in the report too


def test_cli_inventory_table_json_and_html(tmp_path: Path) -> None:
    from datawheel.cli.main import app

    runner = CliRunner()
    path = _crm_like(tmp_path / "deals.csv")
    ws = _workspace(tmp_path, {"deals": {"path": str(path)}})
    ws.close()
    report = tmp_path / "inventory.html"

    result = runner.invoke(app, ["inventory", "-w", str(ws.path), "--json", "--html", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [e["name"] for e in data["entries"]] == ["deals", "knowledge base"]
    assert data["entries"][0]["classification"]["category"] == "business-process"
    assert data["html"] == str(report) and "deal_stage" in report.read_text(encoding="utf-8")

    table = runner.invoke(app, ["inventory", "-w", str(ws.path)], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "deals" in table.stdout and "business-process" in table.stdout

    bad = runner.invoke(app, ["inventory", "-w", str(ws.path), "--html", str(tmp_path / "no/x")])
    assert bad.exit_code == 2 and "cannot write the HTML report" in bad.output
    unknown = runner.invoke(app, ["inventory", "-w", str(ws.path), "--htm", "x"])
    assert unknown.exit_code == 2 and "--html" in unknown.output


def test_sql_source_has_no_size_and_is_dated_by_its_newest_value(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (order_id INTEGER, amount REAL, ordered_at TEXT)")
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [(1, 9.5, "2024-03-01 10:00:00"), (2, None, "2024-04-02 11:30:00"), (3, 20.0, None)],
        )
    source = TableSource(name="orders", url=f"sqlite:///{db}", table="orders")
    profile = profile_source(source)
    assert (profile.rows, profile.format, profile.size_bytes) == (3, "sql", None)
    assert profile.origin == f"sqlite:///{db} table orders"
    cols = {c.name: c for c in profile.columns}
    assert (cols["order_id"].type, cols["amount"].type) == ("integer", "double")
    assert (cols["amount"].nulls, cols["amount"].min, cols["amount"].max) == (1, 9.5, 20.0)
    assert cols["ordered_at"].type == "timestamp"
    assert profile.last_updated == profile.newest == "2024-04-02T11:30:00"
