"""Forecasting on small synthetic sales (weekly pattern, Poisson noise): backtest, known-future
inputs, holidays, replenishment, fallbacks, bad rows, logging and actuals, and the CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np  # noqa: E402
import pandas as pd
import pytest

from datawheel.apps.forecast import (  # noqa: E402
    ForecastConfig,
    KnownFuture,
    backtest_forecast,
    import_sales,
    run_forecast,
    train_forecast,
)
from datawheel.apps.forecast.data import add_known_future  # noqa: E402
from datawheel.apps.forecast.replenish import order_quantity  # noqa: E402
from datawheel.errors import SourceError
from datawheel.workspace import Workspace  # noqa: E402

WEEK = [0.8, 0.9, 1.0, 1.0, 1.1, 1.5, 1.3]
START = "2016-01-01"
DAYS = 760
PROMO_EFFECT = 1.6


def synth(
    stores: int = 2, items: int = 3, days: int = DAYS, seed: int = 0, promo: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Daily sales: level x weekday factor x (promo effect on promo days), Poisson noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START, periods=days, freq="D")
    rows, promos = [], []
    for s in range(1, stores + 1):
        for i in range(1, items + 1):
            level = 15 + 10 * s + 5 * i
            week = np.array([WEEK[d.dayofweek] for d in dates])
            on = rng.random(days) < 0.15 if promo else np.zeros(days, dtype=bool)
            mu = level * week * np.where(on, PROMO_EFFECT, 1.0)
            sales = rng.poisson(mu)
            rows.append(pd.DataFrame({"date": dates.date, "store": s, "item": i, "sales": sales}))
            if promo:
                promos.append(
                    pd.DataFrame({"date": dates.date, "store": s, "item": i, "promo": on * 1})
                )
    history = pd.concat(rows, ignore_index=True)
    return history, (pd.concat(promos, ignore_index=True) if promo else None)


def cfg_for(path: Path, **kw: Any) -> ForecastConfig:
    return ForecastConfig(source=str(path), n_estimators=120, learning_rate=0.1, **kw)


@pytest.fixture()
def ws(tmp_path: Path) -> Any:
    with Workspace.init(tmp_path / "kb") as workspace:
        yield workspace


@pytest.fixture()
def sales(tmp_path: Path) -> Path:
    history, _ = synth()
    path = tmp_path / "sales.csv"
    history.to_csv(path, index=False)
    return path


def test_model_beats_seasonal_naive_in_time_ordered_backtest(ws: Any, sales: Path) -> None:
    result = backtest_forecast(ws, cfg_for(sales), weeks=4, autoets=False)
    assert result["series"] == 6
    assert result["trained_until"] < result["origins"][0]  # no future data in training
    assert result["model"]["wape"] < 0.85 * result["seasonal_naive"]["wape"]
    assert 0.8 <= result["model"]["coverage_95"] <= 1.0
    assert abs(result["model"]["bias"]) < 0.1


def test_promotion_plan_moves_the_forecast(ws: Any, tmp_path: Path) -> None:
    history, promos = synth(promo=True, seed=1)
    assert promos is not None
    history.to_csv(tmp_path / "sales.csv", index=False)
    last = pd.Timestamp(history["date"].max())
    future_days = pd.date_range(last + pd.Timedelta(days=1), periods=7, freq="D")
    keys = history[["store", "item"]].drop_duplicates()

    def plan(name: str, promo_days: set[int]) -> ForecastConfig:
        fut = pd.concat(
            [
                keys.assign(date=d.date(), promo=int(k in promo_days))
                for k, d in enumerate(future_days)
            ]
        )
        pd.concat([promos, fut]).to_csv(tmp_path / name, index=False)
        spec = KnownFuture(path=str(tmp_path / name), on=["date", "store", "item"])
        return cfg_for(tmp_path / "sales.csv", known_future=[spec])

    with_promo = plan("promo_on.csv", {1, 4})
    report = train_forecast(ws, with_promo)
    assert report.features == ["promo"]
    on = pd.DataFrame(run_forecast(ws, with_promo, 7).rows)
    off = pd.DataFrame(run_forecast(ws, plan("promo_off.csv", set()), 7).rows)
    ratio = on["forecast"] / off["forecast"]
    promo_days = on["date"].isin(
        [future_days[1].date().isoformat(), future_days[4].date().isoformat()]
    )
    assert ratio[promo_days].mean() == pytest.approx(PROMO_EFFECT, rel=0.15)
    assert ratio[~promo_days].mean() == pytest.approx(1.0, abs=0.05)


def test_columns_the_model_does_not_read_are_named(ws: Any, tmp_path: Path) -> None:
    """A promotion flag in the sales table has no future values there: the report says it is
    not used and where its future values would go; given there, it is used."""
    history, promos = synth(promo=True, seed=2)
    assert promos is not None
    merged = history.merge(promos, on=["date", "store", "item"]).assign(open=1)
    merged.to_csv(tmp_path / "sales.csv", index=False)
    plain = train_forecast(ws, cfg_for(tmp_path / "sales.csv"))
    [note] = [n for n in plain.notes if n.startswith("not used:")]
    assert note.startswith("not used: promo, open (") and "forecast.known_future" in note
    promos.to_csv(tmp_path / "promos.csv", index=False)
    spec = KnownFuture(path=str(tmp_path / "promos.csv"), on=["date", "store", "item"])
    joined = train_forecast(ws, cfg_for(tmp_path / "sales.csv", known_future=[spec]))
    assert joined.features == ["promo"]
    assert [n for n in joined.notes if n.startswith("not used:")] == [note.replace("promo, ", "")]


def test_a_retrain_replaces_the_version_in_use_only_when_it_wins(ws: Any, tmp_path: Path) -> None:
    from datawheel.improve.registry import Registry

    history, promos = synth(promo=True, seed=1)
    assert promos is not None
    history.to_csv(tmp_path / "sales.csv", index=False)
    promos.to_csv(tmp_path / "promos.csv", index=False)
    blind = cfg_for(tmp_path / "sales.csv")
    first = train_forecast(ws, blind)
    assert (first.version, first.promoted, first.current) == ("forecast-v1", True, None)
    j1 = first.judged
    assert j1["reason"] == "no model in use: the first is promoted"
    assert (j1["days"], j1["rows"], j1["from"]) == (14, 84, "2018-01-15")  # the last 14 days
    assert j1["challenger"] == pytest.approx(first.calibration["wape"])  # days it never saw

    # barely trained (10 small steps): worse on the same days, rejected; forecast-v1 stays
    weak = train_forecast(ws, blind.model_copy(update={"n_estimators": 10, "learning_rate": 0.01}))
    j2 = weak.judged
    assert (weak.version, weak.promoted, weak.current) == ("forecast-v2", False, "forecast-v1")
    assert j2["champion"] == pytest.approx(j1["challenger"])  # same days, same origins
    assert j2["challenger"] > j2["champion"] and j2["reason"].endswith("needs 1% lower)")
    registry = Registry(ws.store, kind="forecast")
    assert registry.get("forecast-v2")["status"] == "rejected"
    assert run_forecast(ws, blind, 7).version == "forecast-v1"

    # knowing the promotion plan explains the promotion days: it wins and is promoted
    plan = KnownFuture(path=str(tmp_path / "promos.csv"), on=["date", "store", "item"])
    told = train_forecast(ws, cfg_for(tmp_path / "sales.csv", known_future=[plan]))
    j3 = told.judged
    assert (told.version, told.promoted, told.current) == ("forecast-v3", True, "forecast-v1")
    assert j3["challenger"] < 0.9 * j3["champion"] and "margin 1%" in j3["reason"]
    assert j3["naive"] > j3["champion"]
    assert registry.current() == "forecast-v3"
    assert registry.get("forecast-v3")["metrics"]["naive_wape"] == j3["naive"]


def test_holiday_feature_when_a_country_is_set(ws: Any, sales: Path) -> None:
    frame = pd.DataFrame({"ds": pd.to_datetime(["2017-07-04", "2017-07-05", "2017-12-25"])})
    out, features, _ = add_known_future(frame.copy(), ws.path, cfg_for(sales, country="us"))
    assert features == ["holiday"]
    assert out["holiday"].tolist() == [1.0, 0.0, 1.0]
    assert add_known_future(frame.copy(), ws.path, cfg_for(sales))[1] == []
    report = train_forecast(ws, cfg_for(sales, country="US"))
    assert report.features == ["holiday"]
    with pytest.raises(ValueError, match="unknown country"):
        ForecastConfig(country="XX")


def test_replenishment_matches_hand_computation(ws: Any, sales: Path, tmp_path: Path) -> None:
    z = NormalDist().inv_cdf(0.95)
    row = order_quantity(
        demand=30.0, sigma_daily=2.0, lead_time=4, service_level=0.95, on_hand=10.0
    )
    assert row["safety_stock"] == pytest.approx(z * 2.0 * 2.0)
    assert row["order_qty"] == math.ceil(30 + z * 4 - 10) == 27
    enough = order_quantity(demand=5.0, sigma_daily=1.0, lead_time=1, service_level=0.9, on_hand=50)
    assert enough["order_qty"] == 0

    cfg = cfg_for(sales)
    train_forecast(ws, cfg)
    stock = tmp_path / "stock.csv"
    stock.write_text("store,item,on_hand\n1,1,40\n2,3,0\n", encoding="utf-8")
    result = run_forecast(ws, cfg, 7, on_hand=stock, lead_time=3, service_level=0.9)
    assert [r["series"] for r in result.replenishment] == ["1/1", "2/3"]
    for r in result.replenishment:
        daily = [x["forecast"] for x in result.rows if x["series"] == r["series"]][:3]
        assert r["demand_lead_time"] == pytest.approx(sum(daily))
        safety = NormalDist().inv_cdf(0.9) * r["sigma_daily"] * math.sqrt(3)
        assert r["sigma_daily"] > 0
        assert r["safety_stock"] == pytest.approx(safety)
        assert r["order_qty"] == max(0, math.ceil(sum(daily) + safety - r["on_hand"]))


def test_short_series_falls_back_to_seasonal_naive(ws: Any, tmp_path: Path) -> None:
    history, _ = synth()
    young = pd.DataFrame(
        {
            "date": pd.date_range(end=history["date"].max(), periods=20, freq="D").date,
            "store": 9,
            "item": 9,
            "sales": np.arange(20),
        }
    )
    pd.concat([history, young]).to_csv(tmp_path / "sales.csv", index=False)
    cfg = cfg_for(tmp_path / "sales.csv")
    report = train_forecast(ws, cfg)
    assert report.fallback == ["9/9"] and report.series == 6
    result = run_forecast(ws, cfg, 7)
    assert result.fallback == ["9/9"]
    assert any("9/9" in n and "seasonal-naive" in n for n in result.notes)
    rows = [r for r in result.rows if r["series"] == "9/9"]
    assert {r["method"] for r in rows} == {"seasonal_naive"}
    assert [r["forecast"] for r in rows] == [float(v) for v in range(13, 20)]
    # the others: whichever method did best on the days the model never trained on
    others = {r["method"] for r in result.rows if r["series"] != "9/9"}
    assert others == {report.judged["method"]}


def test_negative_and_non_numeric_sales_are_reported(ws: Any, tmp_path: Path) -> None:
    history, _ = synth(stores=1, items=2)
    history["sales"] = history["sales"].astype(str)
    history.loc[10, "sales"] = "n/a"
    history.loc[20, "sales"] = "-4"
    history.loc[30, "date"] = "not a date"
    history.to_csv(tmp_path / "sales.csv", index=False)
    cfg = cfg_for(tmp_path / "sales.csv")
    report = train_forecast(ws, cfg)
    assert report.bad_rows == {
        "sales is not a number": 1,
        "sales is negative": 1,
        "date is not a date": 1,
    }
    # the dropped days are filled (with 0) and said so, never silently used as -4
    assert report.gaps_filled == 3
    assert any("3 rows left out" in n for n in report.notes)
    listed = (ws.path / "models" / report.version / "bad_rows.csv").read_text()
    assert "sales is negative" in listed and ",-4" in listed


def test_forecasts_are_logged_and_actuals_matched(ws: Any, tmp_path: Path) -> None:
    history, _ = synth(stores=1, items=3, days=DAYS + 7)
    cut = pd.Timestamp(history["date"].max()) - pd.Timedelta(days=7)
    dates = pd.to_datetime(history["date"])
    train, later = history[dates <= cut], history[dates > cut].copy()
    train.to_csv(tmp_path / "sales.csv", index=False)
    cfg = cfg_for(tmp_path / "sales.csv")
    version = train_forecast(ws, cfg).version
    result = run_forecast(ws, cfg, 7)
    logged = ws.predictions.predictions("forecast")
    assert len(logged) == len(result.rows) == 21
    assert {p.version for p in logged} == {version}
    assert logged[0].entity == f"{logged[0].inputs['series']}@{logged[0].inputs['date']}"
    later["sales"] = later["sales"].astype(str)
    later.iloc[0, later.columns.get_loc("sales")] = "-1"
    later.to_csv(tmp_path / "actuals.csv", index=False)
    report = import_sales(ws, cfg, tmp_path / "actuals.csv")
    assert (report.imported, report.matched, report.unmatched) == (20, 20, 0)
    assert [b["reason"] for b in report.bad_rows] == ["sales is negative"]
    metrics = report.accuracy[version]
    assert metrics["n"] == 20 and metrics["wape"] < 0.3 and metrics["coverage"] is not None


def test_cli_train_run_backtest_actuals(tmp_path: Path, sales: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from datawheel.cli.main import app

    cfg = cfg_for(sales)
    runner = CliRunner()
    kb = tmp_path / "kb"
    assert runner.invoke(app, ["init", str(kb)]).exit_code == 0
    section = {"forecast": cfg.model_dump(mode="json", exclude_defaults=True)}
    with (kb / "datawheel.yaml").open("a", encoding="utf-8") as fh:
        fh.write("\n" + yaml.safe_dump(section, sort_keys=False))
    w = ["-w", str(kb)]
    result = runner.invoke(app, ["forecast", "train", *w, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == "forecast-v1"

    stock = tmp_path / "stock.csv"
    stock.write_text("store,item,on_hand\n1,1,10\n", encoding="utf-8")
    orders = tmp_path / "orders.csv"
    args = ["--on-hand", str(stock), "--lead-time", "3", "--csv", str(orders)]
    result = runner.invoke(app, ["forecast", "run", *args, *w])
    assert result.exit_code == 0, result.output
    assert "42 forecasts by forecast-v1 logged" in result.stdout
    with orders.open() as fh:
        plan = list(csv.DictReader(fh))
    assert plan[0]["series"] == "1/1" and int(plan[0]["order_qty"]) > 0

    result = runner.invoke(
        app, ["forecast", "run", "--lead-time", "9", "--on-hand", str(stock), *w]
    )
    assert result.exit_code == 2
    assert "lead time 9 days exceeds the 7-day horizon" in result.output

    result = runner.invoke(app, ["forecast", "backtest", "--weeks", "2", "--json", *w])
    assert result.exit_code == 0, result.output
    bt = json.loads(result.stdout.splitlines()[-1])
    assert {"model", "seasonal_naive", "autoets"} <= set(bt)

    actual = tmp_path / "actuals.csv"
    actual.write_text("date,store,item,sales\n2015-06-01,1,1,5\n2015-06-02,1,1,oops\n")
    result = runner.invoke(app, ["forecast", "actuals", str(actual), *w])
    assert result.exit_code == 0, result.output
    assert "imported 1 actuals: 0 matched a forecast, 1 did not; 1 rows left out" in result.stdout

    result = runner.invoke(app, ["forecast", "run", "--bogus", *w])
    assert result.exit_code == 2 and "Valid options" in result.output


def test_weekly_totals_are_refused_with_the_reason(ws: Any, tmp_path: Path) -> None:
    history, _ = synth(days=400)
    history["date"] = pd.to_datetime(history["date"])
    weekly = (
        history.groupby(["store", "item", pd.Grouper(key="date", freq="W-SUN")])["sales"]
        .sum()
        .reset_index()
    )
    weekly.to_csv(tmp_path / "weekly.csv", index=False)
    with pytest.raises(SourceError, match="one date every 7 days .* weekly or monthly totals"):
        train_forecast(ws, cfg_for(tmp_path / "weekly.csv"))
    sparse = history.sample(frac=0.3, random_state=0)  # a slow seller: most days no row
    sparse.to_csv(tmp_path / "sparse.csv", index=False)
    assert train_forecast(ws, cfg_for(tmp_path / "sparse.csv")).series == 6


def test_a_day_first_export_with_its_own_column_names(ws: Any, tmp_path: Path) -> None:
    from datawheel.apps.forecast.data import load_history

    history, _ = synth(days=120)
    history.to_csv(tmp_path / "iso.csv", index=False)
    german = history.rename(
        columns={"date": "Datum", "store": "Filiale", "item": "Artikel", "sales": "Absatz"}
    )
    german["Datum"] = pd.to_datetime(german["Datum"]).dt.strftime("%d.%m.%Y")
    german.to_csv(tmp_path / "de.csv", index=False, sep=";")
    cfg = cfg_for(tmp_path / "de.csv", date="Datum", series=["Filiale", "Artikel"], target="Absatz")
    got = load_history(ws, cfg)
    want = load_history(ws, cfg_for(tmp_path / "iso.csv"))
    # every day read day-first (pandas alone reads 01.02.2016 as 2 January): same history
    assert not got.bad_rows and got.gaps_filled == want.gaps_filled == 0
    assert got.frame["ds"].tolist() == want.frame["ds"].tolist()
    assert got.frame["y"].tolist() == want.frame["y"].tolist()


DEMAND = Path(__file__).resolve().parents[3] / "shared/datasets/store_item_demand/train.csv"


@pytest.mark.slow
def test_two_years_of_real_history_beat_autoets(ws: Any, tmp_path: Path) -> None:
    """A company with two years of sales: the days before the 364-day lag exists still train."""
    demand = pd.read_csv(DEMAND, parse_dates=["date"])
    recent = demand[(demand["store"] <= 2) & (demand["item"] <= 10)]
    recent = recent[recent["date"] >= "2016-01-01"]
    path = tmp_path / "two-years.csv"
    recent.to_csv(path, index=False)
    result = backtest_forecast(ws, ForecastConfig(source=str(path)), weeks=8)
    assert result["series"] == 20
    assert result["model"]["wape"] < 0.95 * result["autoets"]["wape"], result
