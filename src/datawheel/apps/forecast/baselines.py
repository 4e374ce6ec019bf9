"""Baselines every forecast is compared with: seasonal-naive (weekly), a 28-day mean and
AutoETS.

Seasonal-naive repeats the last observed week; it is also the fallback for series with too
little history for the model. AutoETS (statsforecast) fits one exponential-smoothing model
per series with weekly seasonality.

Example::

    naive = seasonal_naive(history, h=7)          # unique_id, ds, forecast
    ets = autoets_backtest(history, h=7, windows=8)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datawheel.apps.forecast.data import DS, ID, Y
from datawheel.errors import MissingExtraError

if TYPE_CHECKING:
    import pandas as pd

SEASON = 7


def seasonal_naive(history: pd.DataFrame, h: int, season: int = SEASON) -> pd.DataFrame:
    """Forecast day ``d`` after each series' end as the value ``season`` days before, repeated.

    Series shorter than a season get the mean of what they have.
    """
    import numpy as np
    import pandas as pd

    hist = history[[ID, DS, Y]].sort_values([ID, DS])
    rows = []
    for uid, part in hist.groupby(ID, observed=True, sort=False):
        values = part[Y].to_numpy()[-season:]
        last = part[DS].iloc[-1]
        if len(values) < season:
            pattern = np.full(season, float(values.mean()) if len(values) else 0.0)
        else:
            pattern = values.astype("float64")
        dates = pd.date_range(last + pd.Timedelta(days=1), periods=h, freq="D")
        rows.append(pd.DataFrame({ID: uid, DS: dates, "forecast": np.resize(pattern, h)}))
    if not rows:
        return pd.DataFrame({ID: [], DS: [], "forecast": []})
    return pd.concat(rows, ignore_index=True)


MEAN_DAYS = 28


def moving_average(history: pd.DataFrame, h: int, days: int = MEAN_DAYS) -> pd.DataFrame:
    """Forecast every day after each series' end as the mean of its last ``days`` days."""
    import pandas as pd

    hist = history[[ID, DS, Y]].sort_values([ID, DS])
    tail = hist.groupby(ID, observed=True).tail(days)
    level = tail.groupby(ID, observed=True)[Y].mean()
    last = hist.groupby(ID, observed=True)[DS].max()
    rows = [
        pd.DataFrame(
            {
                ID: uid,
                DS: pd.date_range(last[uid] + pd.Timedelta(days=1), periods=h, freq="D"),
                "forecast": float(level[uid]),
            }
        )
        for uid in level.index
    ]
    if not rows:
        return pd.DataFrame({ID: [], DS: [], "forecast": []})
    return pd.concat(rows, ignore_index=True)


def naive_sigma(history: pd.DataFrame, season: int = SEASON, days: int = 56) -> pd.Series:
    """Each series' std of week-over-week changes over its last ``days`` (seasonal-naive error)."""
    hist = history[[ID, DS, Y]].sort_values([ID, DS])
    tail = hist.groupby(ID, observed=True).tail(days + season)
    diff = tail.groupby(ID, observed=True)[Y].diff(season)
    return diff.groupby(tail[ID], observed=True).std(ddof=1).fillna(0.0)


def autoets_backtest(
    history: pd.DataFrame,
    h: int,
    windows: int,
    step: int = SEASON,
    threads: int = 2,
    input_days: int | None = 365,
) -> pd.DataFrame:
    """Rolling-origin AutoETS forecasts (refit per origin) for the last ``windows`` origins.

    Returns unique_id, ds, cutoff, forecast. ``input_days`` bounds each fit's history.
    """
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS
    except ImportError:
        raise MissingExtraError("the AutoETS baseline (statsforecast)", "forecast") from None
    frame = history[[ID, DS, Y]].copy()
    frame[ID] = frame[ID].astype(str)
    sf = StatsForecast(models=[AutoETS(season_length=SEASON)], freq="D", n_jobs=threads)
    cv = sf.cross_validation(
        df=frame, h=h, n_windows=windows, step_size=step, input_size=input_days
    )
    return cv.rename(columns={"AutoETS": "forecast"})[[ID, DS, "cutoff", "forecast"]]


def autoets_forecast(
    history: pd.DataFrame, h: int, threads: int = 2, input_days: int = 365
) -> pd.DataFrame:
    """AutoETS (weekly season) fitted per series on its last ``input_days`` days, forecasting
    ``h`` days after each series' end: unique_id, ds, forecast."""
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS
    except ImportError:
        raise MissingExtraError("the AutoETS baseline (statsforecast)", "forecast") from None
    frame = history[[ID, DS, Y]].copy()
    frame[ID] = frame[ID].astype(str)
    frame = frame.groupby(ID, observed=True).tail(input_days)
    sf = StatsForecast(models=[AutoETS(season_length=SEASON)], freq="D", n_jobs=threads)
    out = sf.forecast(df=frame, h=h)
    out = out.reset_index() if ID not in out.columns else out
    return out.rename(columns={"AutoETS": "forecast"})[[ID, DS, "forecast"]]
