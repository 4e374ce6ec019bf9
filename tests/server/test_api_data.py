"""The data and predictive routes in process: sources, cleaning, quarantine, inventory,
monitor, lead scores, forecasts and outcomes, each through the Workspace it calls."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _kb import bearer
from fastapi.testclient import TestClient

from datawheel.apps.forecast import ForecastConfig
from datawheel.apps.leads import LeadsConfig
from datawheel.server.app import create_app
from datawheel.workspace import Workspace

WIN = {"visit": 0.9, "phone": 0.5, "email": 0.05}


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _deals(n: int = 900) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        channel = str(rng.choice(list(WIN)))
        rows.append(
            {
                "id": f"d{i}",
                "channel": channel,
                "size": round(float(rng.normal(100, 20)), 1),
                "created": (date(2024, 1, 1) + timedelta(days=i // 5)).isoformat(),
                "stage": "Won" if rng.random() < WIN[channel] else "Lost",
            }
        )
    rows[0]["size"] = "lots"  # one malformed value for the quarantine
    return rows


def _sales(days: int = 400) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    start = date(2016, 1, 1)
    return [
        {
            "date": (start + timedelta(days=d)).isoformat(),
            "store": 1,
            "item": item,
            "sales": int(
                rng.poisson(20 + 5 * item + 6 * ((start + timedelta(days=d)).weekday() >= 5))
            ),
        }
        for item in (1, 2)
        for d in range(days)
    ]


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Workspace, str, str]]:
    ws = Workspace.init(tmp_path / "kb")
    (tmp_path / "deals.csv").write_bytes(_csv(_deals()))
    ws.add_source("deals", str(tmp_path / "deals.csv"))
    ws.config.sources["deals"].clean.types = {"size": "double", "created": "date"}
    ws.config.leads = LeadsConfig(
        source="deals",
        id_column="id",
        target="stage",
        positive=["Won"],
        negative=["Lost"],
        open=["Open"],
        time_column="created",
        action_columns=["channel"],
    )
    (tmp_path / "sales.csv").write_bytes(_csv(_sales()))
    ws.config.forecast = ForecastConfig(
        source=str(tmp_path / "sales.csv"), n_estimators=60, learning_rate=0.1
    )
    editor = ws.add_user("ed", role="editor", groups=["*"])
    viewer = ws.add_user("vi", role="viewer")
    with TestClient(create_app(ws, warm=False)) as c:
        yield c, ws, editor, viewer
    ws.close()


def test_sources_clean_quarantine_inventory_monitor(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, editor, viewer = client
    h = bearer(editor)
    cleaned = c.post("/api/sources/deals/clean", headers=h).json()
    assert cleaned["rows_in"] == 900 and cleaned["rows_quarantined"] == 1
    rows = c.get("/api/sources/deals/quarantine", headers=h).json()["rows"]
    assert len(rows) == 1 and rows[0]["id"] == "d0" and "size" in str(rows[0])
    listed = c.get("/api/sources", headers=h).json()["sources"]
    assert [(s["source"], s["rows_clean"]) for s in listed] == [("deals", 899)]
    inventory = c.get("/api/inventory", headers=h).json()
    assert "deals" in str(inventory)
    monitored = c.post("/api/monitor", headers=h).json()
    assert "deals" in str(monitored) and monitored["exit_code"] in (0, 1, 2)
    rebased = c.post("/api/monitor?source=deals&rebaseline=true", headers=h).json()
    drift = [f["message"] for f in rebased["findings"] if f["check"] == "drift"]
    assert len(drift) == 1 and drift[0].startswith("rebaselined"), rebased
    assert c.get("/api/sources/nope/quarantine", headers=h).status_code == 400
    assert c.post("/api/sources/deals/clean", headers=bearer(viewer)).status_code == 403


def test_lead_scores_and_outcomes_through_uploads(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, editor, _ = client
    ws.leads_train()
    h = bearer(editor)
    leads = [
        {"id": f"n{i}", "channel": ch, "size": 100.0, "created": "2025-01-01"}
        for i, ch in enumerate(["email", "visit", "phone"])
    ]
    scored = c.post(
        "/api/leads/score", files={"files": ("new.csv", _csv(leads), "text/csv")}, headers=h
    ).json()
    assert "rows" in scored, scored
    probability = {r["id"]: r["probability"] for r in scored["rows"]}
    assert probability["n1"] > probability["n2"] > probability["n0"]
    outcomes = [
        {"id": "n0", "stage": "Lost"},
        {"id": "n1", "stage": "Won"},
        {"id": "zzz", "stage": "Won"},
    ]
    settled = c.post(
        "/api/outcomes/leads",
        files={"files": ("closed.csv", _csv(outcomes), "text/csv")},
        headers=h,
    ).json()
    assert (settled["imported"], settled["matched"], settled["unmatched"]) == (3, 2, ["zzz"])
    missing = c.post(
        "/api/leads/score",
        files={"files": ("bad.csv", _csv([{"id": "x", "region": "n"}]), "text/csv")},
        headers=h,
    )
    assert missing.status_code == 400 and "channel" in missing.json()["error"]


def test_forecast_and_actuals(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, editor, _ = client
    ws.forecast_train()
    h = bearer(editor)
    result = c.post("/api/forecast", json={"horizon": 7}, headers=h).json()
    assert len(result["rows"]) == 14
    first = result["rows"][0]
    actual = [{"date": first["date"], "store": 1, "item": 1, "sales": 25}]
    settled = c.post(
        "/api/outcomes/forecast",
        files={"files": ("actual.csv", _csv(actual), "text/csv")},
        headers=h,
    ).json()
    assert settled["matched"] == 1
    assert c.post("/api/forecast", json={"horizon": 0}, headers=h).status_code == 422
