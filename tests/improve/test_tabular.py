"""improve --app leads|forecast: triggers, champion vs challenger on the latest data, rollback.

Deals carry a planted signal that can change: in market A visits close (90%) and emails do
not (5%); in market B it is the other way round. Sales are a weekly pattern with Poisson noise.
"""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from datawheel.apps.forecast import ForecastConfig
from datawheel.apps.leads import LeadsConfig
from datawheel.errors import ConfigError
from datawheel.improve.registry import Registry
from datawheel.improve.tabular import improve_app
from datawheel.workspace import Workspace

MARKET = {
    "A": {"visit": 0.9, "phone": 0.5, "email": 0.05},
    "B": {"visit": 0.05, "phone": 0.5, "email": 0.9},
}
START = date(2024, 1, 1)


def _deals(markets: list[tuple[str, int]], seed: int = 0) -> list[dict[str, Any]]:
    """Closed deals, five a day, ``n`` from each market in turn."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for market, n in markets:
        for _ in range(n):
            i = len(rows)
            channel = str(rng.choice(list(MARKET[market])))
            rows.append(
                {
                    "id": f"d{i}",
                    "channel": channel,
                    "region": str(rng.choice(["north", "south", "east"])),  # noise
                    "size": round(float(rng.normal(100, 20)), 1),  # noise
                    "created": (START + timedelta(days=i // 5)).isoformat(),
                    "stage": "Won" if rng.random() < MARKET[market][channel] else "Lost",
                }
            )
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _leads_cfg() -> LeadsConfig:
    return LeadsConfig(
        source="deals",
        id_column="id",
        target="stage",
        positive=["Won"],
        negative=["Lost"],
        time_column="created",
        action_columns=["channel"],
    )


@pytest.fixture
def deals(tmp_path: Path) -> Path:
    return _write(tmp_path / "deals.csv", _deals([("A", 1000)]))


@pytest.fixture
def ws(tmp_path: Path, deals: Path) -> Any:
    with Workspace.init(tmp_path / "kb") as workspace:
        workspace.add_source("deals", str(deals))
        workspace.config.leads = _leads_cfg()
        yield workspace


def _outcomes(tmp_path: Path, ids: list[str], market: str, seed: int = 1) -> Path:
    """Won/lost outcomes of leads (channels drawn at random) as market ``market`` decides."""
    rng = np.random.default_rng(seed)
    rows = []
    for lead in ids:
        channel = str(rng.choice(list(MARKET[market])))
        won = rng.random() < MARKET[market][channel]
        rows.append({"id": lead, "channel": channel, "stage": "Won" if won else "Lost"})
    return _write(tmp_path / f"outcomes-{ids[0]}.csv", rows)


def test_no_new_outcomes_nothing_is_retrained_and_it_says_why(ws: Any) -> None:
    first = ws.improve_app("leads")
    assert first.decision.triggers == ["no_version"]
    assert (first.version, first.promoted, first.current) == ("leads-v1", True, "leads-v1")
    assert first.judged["reason"] == "no model in use: the first is promoted"

    again = ws.improve_app("leads")
    assert not again.decision.retrain and again.decision.triggers == []
    assert (again.version, again.current, again.decision.new_outcomes) == (None, "leads-v1", 0)
    assert again.decision.reasons == [
        "0 outcomes imported since leads-v1 was trained; 200 needed",
        "no outcomes settled a prediction of leads-v1 yet: no live accuracy",
    ]
    assert "leads: nothing retrained" in again.render()
    assert "leads-v1 stays in use" in again.render()
    assert [v["id"] for v in Registry(ws.store, kind="leads").versions()] == ["leads-v1"]


def test_enough_new_outcomes_retrain_judged_on_the_latest_deals_then_rollback(
    ws: Any, deals: Path, tmp_path: Path
) -> None:
    ws.improve_app("leads")  # leads-v1 learns market A
    # the market turns: 4,000 more deals close the B way, 250 of them imported as outcomes
    rows = _deals([("A", 1000), ("B", 4000)])
    _write(deals, rows)
    ws.leads_outcomes(_write(tmp_path / "closed.csv", rows[1000:1250]))

    report = ws.improve_app("leads")
    d = report.decision
    assert d.triggers == ["new_outcomes"] and d.new_outcomes == 250
    assert d.reasons[0] == "250 outcomes imported since leads-v1 was trained (threshold 200)"
    assert (report.version, report.promoted, report.current) == ("leads-v2", True, "leads-v2")
    j = report.judged
    assert j["rows"] == 1000  # the latest 20% of 5,000 deals, all market B
    assert j["challenger"] > 0.8 and j["champion"] < 0.3  # leads-v1 ranks B backwards
    assert j["reason"].startswith(f"AUC {j['challenger']:.3f} vs leads-v1 {j['champion']:.3f}")

    registry = Registry(ws.store, kind="leads")
    v2 = registry.get("leads-v2")
    assert v2["settings"]["split"] == "time-ordered (latest 20% held out)"
    first_held_out = pd.Timestamp(rows[4000]["created"]).value
    assert v2["settings"]["trained_until"] < first_held_out  # never trained on the holdout
    assert v2["settings"]["trigger"].startswith("250 outcomes imported")
    assert v2["parent"] == "leads-v1" and v2["metrics"]["champion_auc"] == j["champion"]

    # rollback puts leads-v1 back in use; both versions stay
    assert ws.rollback(app="leads") == "leads-v1"
    assert registry.current() == "leads-v1"
    assert {v["id"]: v["status"] for v in ws.versions("leads")} == {
        "leads-v1": "promoted",
        "leads-v2": "retired",
    }
    new = _write(tmp_path / "new.csv", [{k: v for k, v in rows[0].items() if k != "stage"}])
    assert ws.leads_score(new).version == "leads-v1"
    with pytest.raises(ConfigError, match="leads-v1 is the first leads version"):
        ws.rollback(app="leads")
    assert ws.rollback("leads-v2", app="leads") == "leads-v2"


def test_a_worse_challenger_is_rejected_and_the_champion_stays(
    ws: Any, deals: Path, tmp_path: Path
) -> None:
    ws.improve_app("leads")
    # a burst of B deals lands in the challenger's training, the latest deals are A again
    rows = _deals([("A", 1000), ("B", 1000), ("A", 500)])
    _write(deals, rows)
    ws.leads_outcomes(_write(tmp_path / "closed.csv", rows[1000:1300]))

    report = ws.improve_app("leads")
    assert report.decision.triggers == ["new_outcomes"]
    assert (report.version, report.promoted, report.current) == ("leads-v2", False, "leads-v1")
    j = report.judged
    assert j["rows"] == 500
    assert j["champion"] > 0.8 and j["challenger"] < j["champion"] - 0.1
    assert j["reason"].endswith("needs +0.005)")
    assert f"rejected leads-v2: {j['reason']}" in report.render()

    v2 = Registry(ws.store, kind="leads").get("leads-v2")
    assert v2["status"] == "rejected" and j["reason"] in v2["note"]
    assert Registry(ws.store, kind="leads").current() == "leads-v1"
    with pytest.raises(ConfigError, match="rejected by its evaluation"):
        ws.rollback("leads-v2", app="leads")


def test_accuracy_decay_triggers_a_retrain_once(ws: Any, tmp_path: Path) -> None:
    ws.improve_app("leads")
    # leads-v1 scores 150 new leads, which then close the market-B way
    leads = [
        {"id": f"n{i}", "channel": c, "region": "north", "size": 100.0, "created": "2025-01-01"}
        for i, c in enumerate(np.random.default_rng(2).choice(["visit", "phone", "email"], 150))
    ]
    ws.leads_score(_write(tmp_path / "open.csv", leads))
    settle = [{"id": r["id"], "stage": "Lost" if r["channel"] == "visit" else "Won"} for r in leads]
    for r in settle[::7]:
        r["stage"] = "Won" if r["stage"] == "Lost" else "Lost"  # not perfectly reversed
    ws.leads_outcomes(_write(tmp_path / "closed.csv", settle))

    report = ws.improve_app("leads")
    d = report.decision
    assert d.triggers == ["accuracy_decay"] and d.new_outcomes == 150  # under 200: no count
    live = d.live
    assert live is not None and live["n"] == 150
    assert live["value"] < 0.3 and live["trained"] > 0.8
    assert d.reasons[1] == (
        f"live AUC of leads-v1 {live['value']:.3f} on 150 settled scores vs "
        f"{live['trained']:.3f} at training ({live['value'] - live['trained']:+.3f}; "
        "allowed drop 0.03)"
    )
    assert report.version == "leads-v2"  # trained and judged (the deals file is unchanged)

    # no outcomes since leads-v2 was trained: the decay alone does not retrain again
    again = ws.improve_app("leads")
    assert not again.decision.retrain and again.version is None
    reason = again.decision.reasons[1]
    assert "no outcomes were imported since leads-v2 (rejected) was trained" in reason
    forced = ws.improve_app("leads", force=True)
    assert forced.decision.triggers == ["forced"] and forced.version == "leads-v3"


# --- forecast ----------------------------------------------------------------------------

WEEK = [0.8, 0.9, 1.0, 1.0, 1.1, 1.5, 1.3]


def _sales(days: int, level: float = 1.0, start: str = "2016-01-01", seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    week = np.array([WEEK[d.dayofweek] for d in dates])
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "date": dates.date,
                    "store": 1,
                    "item": i,
                    "sales": rng.poisson((20 + 5 * i) * level * week),
                }
            )
            for i in range(1, 4)
        ],
        ignore_index=True,
    )


def test_forecast_improve_waits_then_retrains_on_decayed_accuracy(tmp_path: Path) -> None:
    history = _sales(500)
    history.to_csv(tmp_path / "sales.csv", index=False)
    cfg = ForecastConfig(source=str(tmp_path / "sales.csv"), n_estimators=80, learning_rate=0.1)
    cfg.improve.min_settled = 20
    with Workspace.init(tmp_path / "kb") as ws:
        ws.config.forecast = cfg
        first = improve_app(ws, "forecast")
        assert (first.version, first.promoted) == ("forecast-v1", True)
        trained = first.judged["challenger"]
        assert trained < first.judged["naive"]  # the model beats seasonal-naive

        waiting = improve_app(ws, "forecast")
        assert not waiting.decision.retrain and waiting.version is None
        assert waiting.decision.reasons[0] == (
            "0 actuals imported since forecast-v1 was trained; 500 needed"
        )

        # forecast a week; demand then doubles, and the actuals settle the forecasts
        assert len(ws.forecast_run(7).rows) == 21
        doubled = _sales(507, level=2.0, seed=3)
        later = doubled[doubled["date"] > history["date"].max()]
        later.to_csv(tmp_path / "week.csv", index=False)
        assert ws.forecast_actuals(tmp_path / "week.csv").matched == 21

        report = improve_app(ws, "forecast")
        d = report.decision
        assert d.triggers == ["accuracy_decay"] and d.new_outcomes == 21
        assert d.live is not None and d.live["n"] == 21 and d.live["trained"] == trained
        assert d.live["value"] > 2 * trained
        assert "allowed +20%" in d.reasons[1]
        assert report.version == "forecast-v2"
        v2 = Registry(ws.store, kind="forecast").get("forecast-v2")
        assert v2["status"] == ("promoted" if report.promoted else "rejected")
        assert report.judged["reason"] in v2["note"]


def test_cli(tmp_path: Path, deals: Path) -> None:
    from datawheel.cli.main import app

    runner = CliRunner()
    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    with (kb / "datawheel.yaml").open("a") as fh:
        fh.write(
            f"""
sources:
  deals: {{path: {deals}}}
leads:
  source: deals
  target: stage
  positive: [Won]
  negative: [Lost]
  time_column: created
  improve: {{min_new_outcomes: 50, margin: 0.01}}
"""
        )
    w = ["-w", str(kb)]
    first = runner.invoke(app, ["improve", "--app", "leads", "--json", *w])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["version"], report["promoted"]) == ("leads-v1", True)

    again = runner.invoke(app, ["improve", "--app", "leads", *w])
    assert again.exit_code == 0, again.output
    assert "leads: nothing retrained" in again.stdout
    assert "0 outcomes imported since leads-v1 was trained; 50 needed" in again.stdout

    forced = runner.invoke(app, ["improve", "--app", "leads", "--force", *w])
    assert forced.exit_code == 0, forced.output
    assert "rejected leads-v2: AUC" in forced.stdout and "needs +0.010)" in forced.stdout

    listed = runner.invoke(app, ["versions", "--app", "leads", *w])
    assert "leads-v1" in listed.stdout and "rejected" in listed.stdout and "AUC" in listed.stdout

    back = runner.invoke(app, ["rollback", "--app", "leads", "--json", *w])
    assert back.exit_code == 2 and "leads-v1 is the first leads version" in back.output

    bad = runner.invoke(app, ["improve", "--app", "sales", *w])
    assert bad.exit_code == 2 and "choose one of: leads, forecast" in bad.output
    alone = runner.invoke(app, ["improve", "--force", *w])
    assert alone.exit_code == 2 and "--force applies to --app leads|forecast" in alone.output
    helped = runner.invoke(app, ["improve", "--help"])
    assert "datawheel improve --app leads" in helped.stdout
