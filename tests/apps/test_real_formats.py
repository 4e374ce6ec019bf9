"""Sales and deals as people export them: transactions, decimal commas, cleaned tables.

Each test failed on main before these fixes: transactions kept only the first row of a
series and day, ``3,5`` became a missing value filled with 0, apps read the raw file and
not the clean table, ``forecast actuals FILE`` looked for FILE in the workspace, and the
config template's ``dedupe: {on: key}`` did not load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from datawheel.apps.forecast import ForecastConfig
from datawheel.apps.forecast.data import load_history
from datawheel.config import Config
from datawheel.errors import ConfigError
from datawheel.workspace import Workspace

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    """Four months of item 1 in stores 1 and 2, from the public store-item demand data."""
    frame = pd.read_csv(SHARED / "store_item_demand" / "train.csv", nrows=1826 * 2)
    assert sorted(set(zip(frame["store"], frame["item"], strict=True))) == [(1, 1), (2, 1)]
    return frame[frame["date"] < "2013-05-01"].reset_index(drop=True)


@pytest.fixture()
def ws(tmp_path: Path) -> Any:
    with Workspace.init(tmp_path / "kb") as workspace:
        yield workspace


def _cfg(path: Path, **kw: Any) -> ForecastConfig:
    return ForecastConfig(source=str(path), **kw)


def _totals(frame: pd.DataFrame) -> pd.Series:
    out = frame.assign(key=frame["store"].astype(str) + "/" + frame["item"].astype(str))
    return out.groupby("key")["sales"].sum().sort_index()


def test_transactions_are_summed_per_series_and_day(ws: Any, daily: pd.DataFrame, tmp_path):
    # each day's sales as a till records them: one row per sale of 1 to 3 units
    rows = []
    for rec in daily.itertuples(index=False):
        left = int(rec.sales)
        while left > 0:
            units = min(left, 1 + (left + rec.item) % 3)
            rows.append((rec.date, rec.store, rec.item, units))
            left -= units
    till = pd.DataFrame(rows, columns=["date", "store", "item", "sales"])
    path = tmp_path / "till.csv"
    till.to_csv(path, index=False)
    assert len(till) > 5 * len(daily)

    history = load_history(ws, _cfg(path))
    assert not history.bad_rows and history.gaps_filled == 0
    assert len(history.frame) == len(daily)  # one row per series and day
    got = history.frame.groupby("unique_id")["y"].sum().sort_index()
    assert got.to_numpy() == pytest.approx(_totals(daily).to_numpy())  # every unit reached it
    assert any("rows of one series and day were summed" in n for n in history.notes)

    refused = load_history(ws, _cfg(path, aggregate="refuse"))  # the old behaviour, on request
    assert refused.bad_summary() == {"repeats a series and date": len(till) - len(daily)}


def test_decimal_commas_are_numbers_not_missing_days(ws: Any, daily: pd.DataFrame, tmp_path):
    halves = daily.assign(sales=(daily["sales"] / 2).map(lambda v: f"{v:.1f}".replace(".", ",")))
    path = tmp_path / "sales.csv"
    halves.to_csv(path, index=False, sep=";")
    history = load_history(ws, _cfg(path))
    assert not history.bad_rows
    got = history.frame.groupby("unique_id")["y"].sum().sort_index()
    assert got.to_numpy() == pytest.approx((_totals(daily) / 2).to_numpy())
    assert "sales read with decimal comma" in history.notes

    ambiguous = daily.assign(sales=daily["sales"].map(lambda v: f"1,{v:03d}"))
    path = tmp_path / "ambiguous.csv"
    ambiguous.to_csv(path, index=False, sep=";")
    with pytest.raises(ConfigError, match=r"read as a thousand or as a decimal; say which"):
        load_history(ws, _cfg(path))
    history = load_history(ws, _cfg(path, decimal=","))
    assert history.frame["y"].between(1, 2).all()


def test_the_forecast_reads_the_clean_table(ws: Any, daily: pd.DataFrame, tmp_path) -> None:
    dirty = daily.astype({"sales": str})
    dirty.loc[3, "sales"] = "ERROR"  # a till's placeholder
    dirty.loc[5, "sales"] = "-4"
    path = tmp_path / "sales.csv"
    dirty.to_csv(path, index=False)
    ws.add_source("sales", str(path))
    cfg = ForecastConfig(source="sales")
    raw = load_history(ws, cfg)
    assert raw.bad_summary() == {"sales is not a number": 1, "sales is negative": 1}
    assert "no clean run yet" in raw.notes[0]

    text = (ws.path / "datawheel.yaml").read_text()
    text = text.replace(
        f"path: {path}",
        f"path: {path}\n    clean:\n      types: {{sales: double}}\n      rules: [sales >= 0]",
    )
    (ws.path / "datawheel.yaml").write_text(text)
    ws.config = Config.load(ws.path / "datawheel.yaml")
    report = ws.clean("sales")
    assert report.rows_quarantined == 2
    cleaned = load_history(ws, cfg)
    assert not cleaned.bad_rows  # the clean step holds them, with its reasons
    assert cleaned.notes[0].startswith("read the clean table of sales from clean run")
    assert len(cleaned.frame) == len(daily)  # the two quarantined days: filled, counted
    assert cleaned.gaps_filled == 2


def test_actuals_are_read_from_the_current_folder(
    ws: Any, daily: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datawheel.apps.forecast.data import source_of

    elsewhere = tmp_path / "exports"
    elsewhere.mkdir()
    daily.to_csv(elsewhere / "week.csv", index=False)
    monkeypatch.chdir(elsewhere)
    source, _ = source_of(ws, ForecastConfig(source="history.csv"), "week.csv")
    assert Path(source.path or "") == elsewhere / "week.csv"
    configured, _ = source_of(ws, ForecastConfig(source="history.csv"))
    assert Path(configured.path or "") == ws.path / "history.csv"  # config: the workspace's


def test_the_config_templates_on_keys_load(tmp_path: Path) -> None:
    path = tmp_path / "datawheel.yaml"
    path.write_text(
        "sources:\n  deals:\n    path: deals.csv\n    key: [id]\n"
        "    clean:\n      dedupe: {on: key, keep: last}\n"
        "forecast:\n  known_future:\n    - path: promotions.csv\n      on: [date, store]\n"
        "improve: {auto_improve: yes}\n"
    )
    config = Config.load(path)
    assert config.sources["deals"].clean.dedupe.on == "key"
    assert config.forecast.known_future[0].on == ["date", "store"]
    assert config.improve.auto_improve is True


def test_one_series_needs_no_series_columns(ws: Any, daily: pd.DataFrame, tmp_path) -> None:
    from datawheel.apps.forecast import run_forecast, train_forecast

    path = tmp_path / "shop.csv"
    daily[daily["store"] == 1][["date", "sales"]].to_csv(path, index=False)
    cfg = _cfg(path, series=[], n_estimators=30, min_history_days=28, lags=[7, 14])
    report = train_forecast(ws, cfg)
    assert report.series == 1 and not report.bad_rows
    result = run_forecast(ws, cfg)
    assert [r["series"] for r in result.rows] == ["sales"] * cfg.horizon
    assert all(r["forecast"] > 0 for r in result.rows)


def test_sales_dated_in_the_future_are_left_out_not_zero_filled(ws: Any, daily, tmp_path) -> None:
    typo = daily.astype({"date": str})
    typo.loc[10, "date"] = "2031-01-11"  # 2013 typed as 2031
    path = tmp_path / "sales.csv"
    typo.to_csv(path, index=False)
    history = load_history(ws, _cfg(path))
    assert history.bad_summary() == {"date is in the future": 1}
    assert history.frame["ds"].max() < pd.Timestamp("2014-01-01")
    assert history.gaps_filled == 1  # the typo'd day itself, not thousands of days to 2031


def test_a_wide_table_is_read_melted_or_named_wide(ws: Any, daily: pd.DataFrame, tmp_path):
    """One column per product beside the date (like daily pharmacy sales by drug class)."""
    wide = daily.pivot(index="date", columns="store", values="sales")
    wide.columns = [f"store_{c}" for c in wide.columns]
    path = tmp_path / "wide.csv"
    wide.reset_index().to_csv(path, index=False)

    with pytest.raises(ConfigError) as refused:  # the default series: [store, item]
        load_history(ws, _cfg(path))
    assert "(a wide table)? Name the series column" in str(refused.value)

    history = load_history(ws, _cfg(path, series=["product"]))
    assert not history.bad_rows and len(history.frame) == len(daily)
    assert sorted(history.frame["unique_id"].unique()) == ["store_1", "store_2"]
    assert history.frame["y"].sum() == pytest.approx(daily["sales"].sum())
    assert any(n.startswith("read as a wide table: 2 series columns") for n in history.notes)


def test_retraining_learns_from_imported_actuals(ws: Any, daily: pd.DataFrame, tmp_path) -> None:
    """Actuals imported after a forecast reach the next training, though the history file
    was never updated."""
    from datawheel.apps.forecast import import_sales

    history_file, later_file = tmp_path / "history.csv", tmp_path / "week.csv"
    daily[daily["date"] < "2013-04-15"].to_csv(history_file, index=False)
    daily[daily["date"] >= "2013-04-15"].to_csv(later_file, index=False)
    cfg = _cfg(history_file)
    before = load_history(ws, cfg)
    assert before.frame["ds"].max() == pd.Timestamp("2013-04-14")
    import_sales(ws, cfg, later_file)
    after = load_history(ws, cfg)
    assert after.frame["ds"].max() == pd.Timestamp("2013-04-30")
    assert len(after.frame) == len(daily) and after.gaps_filled == 0
    assert after.frame["y"].sum() == pytest.approx(daily["sales"].sum())
    assert "32 imported actuals added to the history" in " ".join(after.notes)


def test_the_method_in_use_is_never_worse_than_a_baseline_on_the_unseen_days(
    ws: Any, daily: pd.DataFrame, tmp_path
) -> None:
    from datawheel.apps.forecast import run_forecast, train_forecast
    from datawheel.apps.forecast.baselines import autoets_forecast
    from datawheel.apps.forecast.data import DS, ID
    from datawheel.apps.forecast.run import _by_method

    path = tmp_path / "sales.csv"
    daily.to_csv(path, index=False)
    cfg = _cfg(path, n_estimators=40, min_history_days=28, lags=[7, 14])
    report = train_forecast(ws, cfg)
    wape = report.judged["methods"]["wape"]
    assert set(wape) == {"model", "blend", "seasonal_naive", "moving_average", "autoets"}
    assert wape[report.judged["method"]] == min(wape.values())
    rows = run_forecast(ws, cfg).rows
    assert {r["method"] for r in rows} == {report.judged["method"]}

    # a version that chose AutoETS forecasts AutoETS' numbers, inside shifted bands
    history = load_history(ws, cfg)
    pred = pd.DataFrame(
        {
            ID: ["1/1"] * 7,
            DS: pd.date_range("2013-05-01", periods=7),
            "forecast": 1.0,
            "lo-80": 0.0,
            "hi-80": 2.0,
        }
    )
    got = _by_method(pred, history.frame, "autoets", 7)
    ets = autoets_forecast(history.frame, 7)
    want = ets[ets[ID] == "1/1"]["forecast"].to_numpy()
    assert got["forecast"].to_numpy() == pytest.approx(want)
    assert (got["hi-80"] - got["forecast"]).to_numpy() == pytest.approx([1.0] * 7)
    assert set(got["method"]) == {"autoets"}
