"""Replaying deal history month by month: a planted signal is learned, CRM stays at chance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _shared import CRM, crm_config, write_csv
from typer.testing import CliRunner

from datawheel.apps.leads import LeadsConfig
from datawheel.apps.leads.replay import APP, ReplayReport, replay_leads
from datawheel.errors import ConfigError
from datawheel.improve.registry import Registry
from datawheel.workspace import Workspace

END = date(2024, 12, 31)  # deals closing later are still open in the export


def _deals(n: int = 3000, seed: int = 0, reps: int = 40) -> list[dict[str, Any]]:
    """A year of deals; the rep decides (85% or 15% won), learnable only with enough history."""
    rng = np.random.default_rng(seed)
    start = date(2024, 1, 1)
    rows = []
    for i in range(n):
        rep = int(rng.integers(reps))
        engaged = start + timedelta(days=int(rng.integers(0, 366)))
        closed = engaged + timedelta(days=int(rng.integers(5, 60)))
        won = rng.random() < (0.85 if rep % 2 else 0.15)
        still_open = closed > END
        rows.append(
            {
                "id": f"d{i}",
                "rep": f"rep{rep}",
                "region": str(rng.choice(["north", "south", "east"])),  # noise
                "size": round(float(rng.normal(100, 20)), 1),  # noise
                "engaged": engaged.isoformat(),
                "closed": "" if still_open else closed.isoformat(),
                "stage": "Open" if still_open else ("Won" if won else "Lost"),
            }
        )
    return rows


def _cfg() -> LeadsConfig:
    return LeadsConfig(
        source="deals",
        id_column="id",
        target="stage",
        positive=["Won"],
        negative=["Lost"],
        open=["Open"],
        time_column="engaged",
        exclude=["closed"],
        action_columns=["rep"],
    )


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, ReplayReport]]:
    tmp = tmp_path_factory.mktemp("replay")
    with Workspace.init(tmp / "kb") as ws:
        ws.add_source("deals", str(write_csv(tmp / "deals.csv", _deals())))
        yield ws, replay_leads(ws, _cfg(), close_column="closed")


def test_planted_signal_is_learned_as_outcomes_accumulate(
    replayed: tuple[Workspace, ReplayReport],
) -> None:
    _, report = replayed
    rows = report.rows
    assert [r.at for r in rows] == [f"2024-{m:02d}-01" for m in range(3, 13)]
    assert [r.train_rows for r in rows] == sorted(r.train_rows for r in rows)
    assert rows[0].train_rows >= 200
    aucs = [r.auc for r in rows]
    assert all(a is not None for a in aucs)
    assert min(a for a in aucs[-4:] if a is not None) > 0.7
    assert rows[0].auc is not None and rows[0].auc < rows[-1].auc  # type: ignore[operator]
    assert report.verdict.startswith("better than chance")
    assert "AUC rises as outcomes accumulate" in report.verdict
    lo, _ = report.pooled["auc_ci"]
    assert lo > 0.5


def test_no_future_data_and_every_score_logged_and_settled(
    replayed: tuple[Workspace, ReplayReport],
) -> None:
    ws, report = replayed
    deals = pd.read_csv(ws.table_source("deals").path, dtype=str, keep_default_na=False)
    closes = pd.to_datetime(deals["closed"].replace("", None))
    engaged = pd.to_datetime(deals["engaged"])
    closed = deals["stage"] != "Open"
    versions = {v["id"]: v for v in Registry(ws.store, kind=APP).versions()}
    logged = ws.predictions.predictions(APP)
    settled = ws.predictions.settled(APP)
    for r, nxt in zip(report.rows, [*report.rows[1:], None], strict=True):
        at = pd.Timestamp(r.at)
        until = pd.Timestamp(nxt.at) if nxt else pd.Timestamp("2025-01-01")
        # trained on exactly the deals closed before T, the latest of them before T
        assert r.train_rows == int((closed & (closes < at)).sum())
        assert pd.Timestamp(r.latest_close) < at
        settings = versions[r.version]["settings"]
        assert settings["as_of"] == r.at and pd.Timestamp(settings["latest_close"]) < at
        # scored: the deals open at T, each logged with the version trained for T
        open_at = (engaged < at) & ~(closed & (closes < at))
        mine = {p.entity for p in logged if p.version == r.version}
        assert mine == set(deals.loc[open_at, "id"]) and len(mine) == r.scored
        # settled: the deals scored at T that closed before the next step
        closing = closed & (closes >= at) & (closes < until)
        assert r.closed == int(closing.sum())
        expected = set(deals.loc[open_at & closing, "id"])
        assert {p.entity for p, _ in settled if p.version == r.version} == expected
        assert r.settled == len(expected) > 20


def test_replay_keeps_out_of_the_real_versions_and_scores(
    replayed: tuple[Workspace, ReplayReport],
) -> None:
    ws, report = replayed
    assert Registry(ws.store, kind="leads").versions() == []
    assert ws.predictions.predictions("leads") == []
    replay = Registry(ws.store, kind=APP)
    assert [v["id"] for v in replay.versions()] == [r.version for r in report.rows]
    assert replay.current() is None  # never promoted
    assert {v["status"] for v in replay.versions()} == {"replay"}


def test_bad_step_and_missing_close_column_are_explained(
    replayed: tuple[Workspace, ReplayReport],
) -> None:
    ws, _ = replayed
    with pytest.raises(ConfigError, match="unknown step 'day'; choose one of: month, week"):
        replay_leads(ws, _cfg(), step="day", close_column="closed")
    with pytest.raises(ConfigError, match="no 'close_date' column in the deals") as missing:
        replay_leads(ws, _cfg())
    assert "columns that hold dates: engaged, closed; set leads.close_column" in str(missing.value)
    # named in the config instead of passed: the replay runs
    named = replay_leads(ws, _cfg().model_copy(update={"close_column": "closed"}))
    assert len(named.rows) == len(replayed[1].rows)


def _sales(series: int = 3, days: int = 400, seed: int = 0) -> pd.DataFrame:
    """Daily sales with a weekly pattern and a slow trend, Poisson noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-02", periods=days, freq="D")
    week = np.array([0.7, 0.8, 1.0, 1.0, 1.2, 1.7, 1.4])[dates.dayofweek]
    parts = []
    for s in range(1, series + 1):
        mu = (20 + 10 * s) * week * np.linspace(1.0, 1.3, days)
        parts.append(pd.DataFrame({"date": dates.date, "store": s, "sales": rng.poisson(mu)}))
    return pd.concat(parts, ignore_index=True)


def test_forecast_replay_week_by_week(tmp_path: Path) -> None:
    from datawheel.apps.forecast import ForecastConfig
    from datawheel.apps.forecast.replay import APP as FORECAST_SIM
    from datawheel.apps.forecast.replay import replay_forecast

    sales = _sales()
    path = tmp_path / "sales.csv"
    sales.to_csv(path, index=False)
    cfg = ForecastConfig(
        source=str(path), series=["store"], lags=[7, 14, 28], rolling=[7], n_estimators=60
    )
    with Workspace.init(tmp_path / "kb") as ws:
        report = replay_forecast(ws, cfg, steps=6)
        logged = ws.predictions.predictions(FORECAST_SIM)
        settled = ws.predictions.settled(FORECAST_SIM)
        assert Registry(ws.store, kind="forecast").versions() == []
        assert ws.predictions.predictions("forecast") == []
        with pytest.raises(ConfigError, match="unknown step 'month' for forecast; choose one of"):
            replay_forecast(ws, cfg, step="month")
    days = pd.to_datetime(sales["date"])
    ats = [r.at for r in report.rows]
    assert len(ats) == 6 and ats == sorted(ats)
    assert set(pd.to_datetime(pd.Series(ats)).diff().dropna()) == {pd.Timedelta(days=7)}
    for r in report.rows:
        at = pd.Timestamp(r.at)
        assert at.dayofweek == 0 and pd.Timestamp(r.latest_day) < at  # no future in training
        assert r.train_rows == int((days < at).sum())
        mine = [p for p in logged if p.version == r.version]
        assert len(mine) == r.forecasts == 3 * 7
        assert all(
            at <= pd.Timestamp(p.entity.split("@")[1]) < at + pd.Timedelta(days=7) for p in mine
        )
        assert r.settled == sum(1 for p, _ in settled if p.version == r.version) == 21
        assert r.wape is not None and r.naive_wape is not None
    assert report.pooled["wape"] < report.pooled["naive_wape"]
    assert report.verdict.startswith("beats seasonal-naive"), report.verdict


def test_crm_replay_stays_at_chance(tmp_path: Path) -> None:
    assert (CRM / "sales_pipeline.csv").exists(), "CI keeps ../shared beside the repo"
    with Workspace.init(tmp_path / "kb") as ws:
        ws.add_source("crm", str(CRM / "sales_pipeline.csv"))
        report = replay_leads(ws, crm_config())
    rows = report.rows
    assert rows[0].at == "2017-04-01" and rows[-1].at == "2017-12-01"
    assert all(pd.Timestamp(r.latest_close) < pd.Timestamp(r.at) for r in rows)
    measured = [r for r in rows if r.auc_ci is not None]
    assert len(measured) == len(rows)
    with_chance = [r for r in measured if r.auc_ci and r.auc_ci[0] <= 0.5 <= r.auc_ci[1]]
    assert len(with_chance) >= len(measured) - 1  # one month in 20 looks lucky at 95%
    lo, hi = report.pooled["auc_ci"]
    assert lo <= 0.5 <= hi
    assert report.verdict.startswith("no better than chance"), report.verdict
    assert "500 open deals have no engage_date; never scored" in report.notes


def test_cli(tmp_path: Path) -> None:
    from datawheel.cli.main import app

    kb = tmp_path / "kb"
    Workspace.init(kb).close()
    rows = [{**r, "close_date": r.pop("closed")} for r in _deals(n=900, reps=10)]
    deals = write_csv(tmp_path / "deals.csv", rows)
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
  open: [Open]
  time_column: engaged
  exclude: [close_date]
"""
        )
    runner = CliRunner()
    w = ["-w", str(kb)]
    result = runner.invoke(app, ["simulate-outcomes", "leads", *w, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["app"] == "leads" and data["step"] == "month"
    assert [r["version"] for r in data["rows"]][:2] == ["leads-sim-v1", "leads-sim-v2"]
    human = runner.invoke(app, ["simulate-outcomes", "leads", "--step", "month", *w])
    assert human.exit_code == 0, human.output
    assert "lead replay: accuracy as outcomes accumulate" in human.stdout
    assert "replay versions leads-sim-v" in human.stdout
    assert "better than chance" in human.stdout
    bad = runner.invoke(app, ["simulate-outcomes", "leads", "--step", "day", *w])
    assert bad.exit_code != 0
    assert "unknown step 'day'; choose one of: month, week" in bad.output
    unknown = runner.invoke(app, ["simulate-outcomes", "sales", *w])
    assert "nothing to replay for 'sales'; choose one of: leads, forecast" in unknown.output
    sales = tmp_path / "sales.csv"
    _sales(days=200).to_csv(sales, index=False)
    with (kb / "datawheel.yaml").open("a") as fh:
        fh.write(
            f"""forecast:
  source: {sales}
  series: [store]
  lags: [7, 14]
  rolling: [7]
  n_estimators: 40
"""
        )
    weekly = runner.invoke(app, ["simulate-outcomes", "forecast", *w])
    assert weekly.exit_code == 0, weekly.output
    assert "forecast replay: accuracy as actuals accumulate" in weekly.stdout
    assert "seasonal-naive" in weekly.stdout
