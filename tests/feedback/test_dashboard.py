"""Tests for datawheel.feedback.dashboard on a real SQLite workspace with logged interactions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datawheel.errors import ConfigError
from datawheel.feedback.dashboard import build_dashboard
from datawheel.feedback.log import Interaction, new_interaction_id
from datawheel.improve.registry import Registry
from datawheel.monitor.checks import Finding
from datawheel.monitor.history import History
from datawheel.workspace import Workspace

# Thursday of ISO week 2026-W01 (Monday 2025-12-29); the week before is 2025-W52.
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(day: str, time: str = "12:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}+00:00")


@pytest.fixture()
def ws(tmp_path: Path) -> Iterator[Workspace]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees get 16 weeks of parental leave.")
    (docs / "travel.md").write_text("# Travel\n\nExpenses are reimbursed within 14 days.")
    with Workspace.init(tmp_path / "kb") as workspace:
        assert workspace.ingest([docs]).added == 2
        yield workspace


def log(
    ws: Workspace, when: datetime, user: str, latency_ms: float, *, declined: bool = False
) -> str:
    item = Interaction(
        new_interaction_id(),
        f"question of {user} at {when.isoformat()}",
        "I could not find this." if declined else "An answer [1].",
        user,
        when,
        latency_ms,
        0.9,
        declined,
        "declined" if declined else "generator",
        [],
        {},
    )
    ws.interactions.record(item)
    return item.id


@pytest.fixture()
def board(ws: Workspace) -> dict:
    # 2025-W52, before the 3-day window but inside the 2-week one.
    a = log(ws, at("2025-12-22", "09:00:00"), "ann", 100)
    b = log(ws, at("2025-12-28", "23:59:59"), "bob", 200, declined=True)
    # 2026-W01: Monday, before the 3-day window (2025-12-30 to 2026-01-01) ...
    c = log(ws, at("2025-12-29", "10:00:00"), "ann", 300)
    # ... and the window itself.
    d = log(ws, at("2025-12-30", "08:00:00"), "ann", 100)
    log(ws, at("2025-12-30", "09:00:00"), "bob", 300, declined=True)
    f = log(ws, at("2025-12-31", "10:00:00"), "ann", 500)
    g = log(ws, at("2026-01-01", "11:00:00"), "cid", 50)
    # Outside both windows: before 2025-W52, and after NOW.
    log(ws, at("2025-12-21", "23:59:59"), "old", 9999)
    log(ws, at("2026-01-01", "12:30:00"), "late", 9999)
    ws.feedback(a, "up", user="ann")
    ws.feedback(a, "up", user="bob")
    ws.feedback(b, "down", user="bob")
    ws.feedback(c, "down", user="cid")
    ws.feedback(d, "up", user="ann")
    ws.feedback(d, "down", user="ann")  # replaces ann's 👍
    ws.feedback(f, "up", user="bob")
    ws.feedback(g, "up", user="cid")

    ws.add_user("ann", role="viewer")
    ws.add_user("bob", role="editor")
    ws.add_user("gone", role="viewer")
    ws.users.disable("gone")

    registry = Registry(ws.store)
    registry.record(
        "v1",
        status="promoted",
        parent=None,
        settings={},
        metrics={"holdout_ndcg@10": 0.61, "before": 0.55, "questions": 20},
        artifacts="models/v1",
        note="",
    )
    registry.record(
        "v2", status="rejected", parent="v1", settings={}, metrics={}, artifacts="", note=""
    )
    evaluation = {"split": "test", "mode": "hybrid", "metrics": {"ndcg@10": 0.7}}
    ws.store.record_evaluation(
        None, {**evaluation, "dataset": "/data/scifact", "versions": {"version": None}}
    )
    ws.store.record_evaluation(
        None, {**evaluation, "dataset": "/data/scifact", "versions": {"version": "v1"}}
    )
    ws.store.record_evaluation(
        None,
        {**evaluation, "dataset": "q.jsonl", "metrics": {"answered": 3}, "versions": {}},
    )

    for source, run, clean, held in (
        ("orders", 1, 10, 2),
        ("orders", 2, 12, 1),
        ("stock", 1, 5, 0),
    ):
        ws.store.record_table_version(
            {
                "source": source,
                "run": run,
                "kind": "clean",
                "clean_path": f"tables/{source}/run-{run}/clean.parquet",
                "quarantine_path": f"tables/{source}/run-{run}/quarantine.parquet",
                "rows_in": clean + held,
                "rows_clean": clean,
                "rows_quarantined": held,
                "columns": [],
            }
        )

    history = History(ws.store.engine)
    first, second = at("2025-12-31", "06:00:00"), at("2026-01-01", "06:00:00")
    history.save_findings(1, first, [Finding("orders", "nulls", "alert", "amount 40% null")])
    history.save_findings(1, first, [Finding("stock", "freshness", "ok", "fresh")])
    history.save_findings(
        2,
        second,
        [
            Finding("orders", "volume", "warning", "rows fell 30%", 0.3, 0.2),
            Finding("orders", "schema", "ok", "no change"),
            Finding("documents", "documents_added", "warning", "no documents added", 0, 1),
        ],
    )
    return build_dashboard(ws, days=3, weeks=2, now=NOW)


def test_totals_cover_the_day_window(board: dict) -> None:
    assert (board["since"], board["until"]) == ("2025-12-30", "2026-01-01")
    assert board["totals"] == {
        "questions": 4,
        "answered": 3,
        "answer_rate": 0.75,
        "p95_latency_ms": pytest.approx(470.0),  # 300 + 0.85 × (500 − 300)
        "up": 2,
        "down": 1,
        "satisfaction": pytest.approx(2 / 3),
    }


def test_satisfaction_per_iso_week_counts_each_users_latest_vote(board: dict) -> None:
    assert board["satisfaction"] == [
        {
            "week": "2025-W52",
            "start": "2025-12-22",
            "questions": 2,
            "up": 2,
            "down": 1,
            "satisfaction": pytest.approx(2 / 3),
        },
        {
            "week": "2026-W01",
            "start": "2025-12-29",
            "questions": 5,
            "up": 2,
            "down": 2,
            "satisfaction": 0.5,
        },
    ]


def test_daily_questions_answer_rate_latency_and_users(board: dict) -> None:
    assert board["daily"] == [
        {
            "day": "2025-12-30",
            "questions": 2,
            "answered": 1,
            "answer_rate": 0.5,
            "p95_latency_ms": pytest.approx(290.0),  # 100 + 0.95 × (300 − 100)
            "users": 2,
        },
        {
            "day": "2025-12-31",
            "questions": 1,
            "answered": 1,
            "answer_rate": 1.0,
            "p95_latency_ms": 500.0,
            "users": 1,
        },
        {
            "day": "2026-01-01",
            "questions": 1,
            "answered": 1,
            "answer_rate": 1.0,
            "p95_latency_ms": 50.0,
            "users": 1,
        },
    ]


def test_adoption_counts_distinct_users_and_enabled_accounts(board: dict) -> None:
    assert board["adoption"] == {
        "active_users": 3,
        "days_with_traffic": 3,
        "dau": pytest.approx(4 / 3),
        "registered": 2,
        "adoption": pytest.approx(2 / 3),
    }


def test_evaluations_per_model_version(board: dict) -> None:
    rows = [{k: v for k, v in r.items() if k != "at"} for r in board["evaluations"]]

    assert rows == [
        {"version": "v1", "source": "held-out feedback", "metric": "ndcg@10", "value": 0.61},
        {
            "version": "baseline",
            "source": "scifact (test, hybrid)",
            "metric": "ndcg@10",
            "value": 0.7,
        },
        {"version": "v1", "source": "scifact (test, hybrid)", "metric": "ndcg@10", "value": 0.7},
    ]


def test_data_volume_uses_each_sources_latest_run(board: dict) -> None:
    assert board["data"] == {
        "documents": 2,
        "chunks": 2,
        "table_sources": 2,
        "table_rows": 17,
        "quarantined_rows": 1,
        "tables": [
            {"source": "orders", "run": 2, "rows": 12, "quarantined": 1},
            {"source": "stock", "run": 1, "rows": 5, "quarantined": 0},
        ],
    }


def test_open_alerts_are_the_latest_checks_warnings_and_alerts(board: dict) -> None:
    assert [(a["source"], a["check"], a["level"], a["message"]) for a in board["alerts"]] == [
        ("documents", "documents_added", "warning", "no documents added"),
        ("orders", "volume", "warning", "rows fell 30%"),
    ]
    assert board["alerts"][0]["at"] == "2026-01-01T06:00:00+00:00"


def test_ab_and_roi_are_their_reports(board: dict) -> None:
    assert board["ab"]["test"] is None
    assert board["ab"]["reason"] == "no A/B test has run"
    assert board["roi"]["days"] == 3
    assert {item["name"] for item in board["roi"]["items"]} == {"answers", "leads", "forecast"}


def test_the_facade_and_an_empty_workspace(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "empty") as ws:
        board = ws.dashboard(days=7)
        with pytest.raises(ConfigError, match="days and weeks must be at least 1"):
            ws.dashboard(days=0)

    assert len(board["daily"]) == 7 and len(board["satisfaction"]) == 8
    assert board["totals"]["satisfaction"] is None
    assert board["totals"]["p95_latency_ms"] is None
    assert board["alerts"] == [] and board["evaluations"] == []
    assert board["adoption"]["dau"] is None
