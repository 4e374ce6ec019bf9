"""Time-ordered backtests and the accuracy measures of every forecast.

A rolling-origin backtest over the last ``weeks`` weeks: the model is trained once on the
data before the first origin (nothing after it is ever seen in training), then forecasts
``h`` days from each weekly origin using the actuals up to that origin as lag inputs.
Seasonal-naive and AutoETS (refit per origin) are measured on the same days.

Example::

    result = rolling_backtest(frame, cfg, static=["store", "item"], exog=[], weeks=8)
    result["model"]["wape"], result["seasonal_naive"]["wape"]
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from datawheel.apps.forecast.baselines import autoets_backtest, moving_average, seasonal_naive
from datawheel.apps.forecast.data import DS, ID, Y
from datawheel.apps.forecast.model import ForecastModel, _fmt

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from datawheel.apps.forecast.config import ForecastConfig

log = logging.getLogger(__name__)


def accuracy(
    actual: np.ndarray | pd.Series,
    forecast: np.ndarray | pd.Series,
    lo: np.ndarray | pd.Series | None = None,
    hi: np.ndarray | pd.Series | None = None,
) -> dict[str, float | int | None]:
    """WAPE, sMAPE, bias (sum of errors over sum of actuals) and interval coverage.

    >>> accuracy([10, 10], [8, 12])["wape"]
    0.2
    """
    import numpy as np

    y = np.asarray(actual, dtype="float64")
    f = np.asarray(forecast, dtype="float64")
    total = float(np.abs(y).sum())
    denom = np.abs(y) + np.abs(f)
    smape = np.where(denom > 0, 2 * np.abs(f - y) / np.where(denom > 0, denom, 1), 0.0)
    out: dict[str, float | int | None] = {
        "n": int(len(y)),
        "wape": float(np.abs(f - y).sum() / total) if total else None,
        "smape": float(smape.mean()) if len(y) else None,
        "bias": float((f - y).sum() / total) if total else None,
        "coverage": None,
    }
    if lo is not None and hi is not None and len(y):
        low = np.asarray(lo, dtype="float64")
        high = np.asarray(hi, dtype="float64")
        out["coverage"] = float(((y >= low) & (y <= high)).mean())
    return out


def origins(last: pd.Timestamp, weeks: int, h: int) -> list[pd.Timestamp]:
    """Weekly forecast origins so the last window ends on ``last``."""
    import pandas as pd

    return [last - pd.Timedelta(days=h + 7 * (weeks - 1 - k)) for k in range(weeks)]


def rolling_backtest(
    frame: pd.DataFrame,
    cfg: ForecastConfig,
    static: list[str],
    exog: list[str],
    weeks: int = 8,
    autoets: bool = True,
) -> dict[str, Any]:
    """Backtest the model and the baselines on the last ``weeks`` weekly origins."""
    import pandas as pd

    h = cfg.horizon
    cuts = origins(frame[DS].max(), weeks, h)
    first = cuts[0]
    length = frame[frame[DS] <= first].groupby(ID, observed=True).size()
    keep = length.index[length >= cfg.min_history_days]
    skipped = int(frame[ID].nunique() - len(keep))
    frame = frame[frame[ID].isin(keep)]
    if frame.empty:
        raise ValueError(
            f"no series has {cfg.min_history_days} days of history before {first.date()}; "
            "use fewer --weeks or lower forecast.min_history_days"
        )
    started = time.perf_counter()
    model = build_model(cfg).fit(frame[frame[DS] <= first], static, exog)
    fit_s = time.perf_counter() - started
    parts, naive_parts = [], []
    started = time.perf_counter()
    for cut in cuts:
        hist = frame[frame[DS] <= cut]
        actual = frame[(frame[DS] > cut) & (frame[DS] <= cut + pd.Timedelta(days=h))]
        pred = model.predict(hist, actual[[ID, DS, *exog]], h)
        parts.append(pred.merge(actual[[ID, DS, Y]], on=[ID, DS]).assign(cutoff=cut))
        naive = seasonal_naive(hist, h).merge(actual[[ID, DS, Y]], on=[ID, DS])
        mean = moving_average(hist, h).rename(columns={"forecast": "mean"})
        naive = naive.merge(mean, on=[ID, DS])
        naive_parts.append(naive.assign(cutoff=cut))
    predict_s = time.perf_counter() - started
    pred = pd.concat(parts, ignore_index=True)
    naive = pd.concat(naive_parts, ignore_index=True)
    widest = _fmt(max(cfg.level))
    result: dict[str, Any] = {
        "series": int(pred[ID].nunique()),
        "series_skipped": skipped,
        "weeks": weeks,
        "horizon": h,
        "origins": [c.date().isoformat() for c in cuts],
        "trained_until": model.trained_until_.date().isoformat(),
        "model": accuracy(pred[Y], pred["forecast"], pred[f"lo-{widest}"], pred[f"hi-{widest}"])
        | {"interval": float(max(cfg.level))},
        "seasonal_naive": accuracy(naive[Y], naive["forecast"]),
        "moving_average": accuracy(naive[Y], naive["mean"]),
        "fit_seconds": round(fit_s, 2),
        "predict_seconds": round(predict_s, 2),
    }
    for lv in cfg.level:
        name = _fmt(lv)
        result["model"][f"coverage_{name}"] = accuracy(
            pred[Y], pred["forecast"], pred[f"lo-{name}"], pred[f"hi-{name}"]
        )["coverage"]
    if autoets:
        started = time.perf_counter()
        ets = autoets_backtest(frame, h, weeks, threads=cfg.threads)
        ets = ets.merge(frame[[ID, DS, Y]].assign(**{ID: frame[ID].astype(str)}), on=[ID, DS])
        result["autoets"] = accuracy(ets[Y], ets["forecast"])
        result["autoets_seconds"] = round(time.perf_counter() - started, 2)
    return result


def build_model(cfg: ForecastConfig) -> ForecastModel:
    return ForecastModel(
        horizon=cfg.horizon,
        lags=cfg.lags,
        rolling=cfg.rolling,
        level=cfg.level,
        n_estimators=cfg.n_estimators,
        learning_rate=cfg.learning_rate,
        num_leaves=cfg.num_leaves,
        threads=cfg.threads,
        train_days=cfg.train_days,
    )
