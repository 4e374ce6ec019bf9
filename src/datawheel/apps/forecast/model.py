"""The global demand model: one LightGBM over every series, built with mlforecast.

Features: lags of the target (7, 14, 21, 28, 364 days by default), rolling means of the value a
week back, calendar features (weekday, month, day of year), the series columns as categories,
and known-future inputs (holidays, promotion plans, weather) as columns of the frame.

Intervals are split conformal: the model is trained on all but the last ``calib_days``, then
forecasts those days from rolling origins; the absolute errors, scaled by each series' recent
level, give one quantile per level. The same errors give each series' daily error std, which
sets the safety stock. Only one model is trained, so a fit stays within the time budget.

Example::

    model = ForecastModel(horizon=7, level=[80, 95]).fit(frame, static=["store", "item"])
    pred = model.predict(frame, future)  # unique_id, ds, forecast, lo-80, hi-80, ...
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datawheel.apps.forecast.data import DS, ID, Y, require_pandas

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SCALE_DAYS = 28
MODEL_FILE = "model.pkl"


class ForecastModel:
    """A global LightGBM forecaster with split-conformal intervals (scikit-learn style)."""

    def __init__(
        self,
        *,
        horizon: int = 7,
        lags: list[int] | None = None,
        rolling: list[int] | None = None,
        level: list[float] | None = None,
        n_estimators: int = 300,
        learning_rate: float = 0.08,
        num_leaves: int = 31,
        threads: int = 2,
        calib_days: int = 14,
        train_days: int | None = 800,
        seed: int = 0,
    ) -> None:
        self.horizon = horizon
        self.lags = lags or [7, 14, 21, 28, 364]
        self.rolling = rolling or [7, 28]
        self.level = level or [80.0, 95.0]
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.threads = threads
        self.calib_days = calib_days
        self.train_days = train_days
        self.seed = seed

    # -- fit ----------------------------------------------------------------------------

    def fit(
        self, frame: pd.DataFrame, static: list[str], exog: list[str] | None = None
    ) -> ForecastModel:
        """Train on ``frame`` (unique_id, ds, y, static and exog columns) minus the calibration
        tail, then measure the errors on that tail."""
        import numpy as np
        import pandas as pd

        require_pandas()
        self.static_ = list(static)
        self.exog_ = list(exog or [])
        self.categories_ = {c: sorted(frame[c].astype(str).unique()) for c in self.static_}
        frame = self._typed(frame)
        last = frame[DS].max()
        if self.train_days:  # recent history only
            frame = frame[frame[DS] > last - pd.Timedelta(days=self.train_days)]
        cutoff = last - pd.Timedelta(days=self.calib_days)
        # dropna=False: days whose longer lags reach before the history (the first year, for
        # the 364-day lag) still train, with those features missing (LightGBM's own NaN
        # handling). Dropping them left two years of history one year of training rows:
        # backtest WAPE 0.157 vs 0.116 on 20 store-item series of 2016-17, equal on 5 years.
        self.mlf_ = self._forecaster().fit(
            frame.loc[frame[DS] <= cutoff, self._columns()],
            static_features=self.static_,
            dropna=False,
        )
        self.trained_until_ = cutoff
        err = self._errors(frame, cutoff, last)
        resid = err[Y] - err["forecast"]
        score = (resid.abs() / err["scale"]).to_numpy()
        n = len(score)
        self.quantiles_: dict[float, float] = {}
        for lv in self.level:
            # finite-sample conformal quantile: ceil((n + 1) * level) / n
            q = min(1.0, np.ceil((n + 1) * lv / 100) / n) if n else 1.0
            self.quantiles_[lv] = float(np.quantile(score, q)) if n else 0.0
        std = resid.groupby(err[ID]).std(ddof=1)
        rel = (std / err.groupby(ID)["scale"].first()).median()
        self.sigma_: dict[str, float] = {str(k): float(v) for k, v in std.dropna().items()}
        self.rel_sigma_ = float(rel) if np.isfinite(rel) else 0.3
        self.calibration_ = {
            "days": self.calib_days,
            "errors": n,
            "wape": float(resid.abs().sum() / max(err[Y].abs().sum(), 1e-9)),
        }
        return self

    def _errors(self, frame: pd.DataFrame, start: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
        """Point forecasts of the days in (start, last], from origins ``horizon`` days apart
        that use the actuals up to each origin as lag inputs; with each series' scale."""
        import pandas as pd

        parts = []
        origin = start
        while origin < last:
            hist = frame[frame[DS] <= origin]
            end = min(origin + pd.Timedelta(days=self.horizon), last)
            actual = frame[(frame[DS] > origin) & (frame[DS] <= end)]
            h = (end - origin).days
            pred = self._point(hist, actual, h).merge(actual[[ID, DS, Y]], on=[ID, DS])
            pred["scale"] = pred[ID].map(_scale(hist))
            parts.append(pred.assign(origin=origin))
            origin = end
        return pd.concat(parts, ignore_index=True)

    def holdout(self, frame: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
        """Point forecasts of every day after ``start`` in ``frame`` (unique_id, ds, y,
        forecast and the origin it was made from), made as in use: from origins ``horizon``
        days apart, with the actuals up to each origin as lag inputs.

        Example::

            judged = model.holdout(frame, model.trained_until_)  # days it never trained on
        """
        typed = self._typed(frame)
        return self._errors(typed, start, typed[DS].max())[[ID, DS, Y, "forecast", "origin"]]

    def _forecaster(self) -> Any:
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean

        model = lgb.LGBMRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=50,
            max_bin=63,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            n_jobs=self.threads,
            random_state=self.seed,
            verbose=-1,
        )
        return MLForecast(
            models={"lgb": model},
            freq="D",
            lags=self.lags,
            lag_transforms={7: [RollingMean(window_size=w) for w in self.rolling]},
            date_features=["dayofweek", "month", "dayofyear"],
            num_threads=self.threads,
        )

    def _columns(self) -> list[str]:
        return [ID, DS, Y, *self.static_, *self.exog_]

    def _typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Series columns as categories with the training-time category list (stable codes)."""
        import pandas as pd

        frame = frame.copy()
        for c in self.static_:
            frame[c] = pd.Categorical(frame[c].astype(str), categories=self.categories_[c])
        return frame

    def _point(self, hist: pd.DataFrame, future: pd.DataFrame, h: int) -> pd.DataFrame:
        x_df = future[[ID, DS, *self.exog_]] if self.exog_ else None
        # the features look back at most max(lags) + the rolling window (+ slack); rows are
        # days (gaps are filled), so each series' tail is enough
        reach = max(self.lags) + 7 + max(self.rolling, default=0) + 14
        hist = hist.groupby(ID, observed=True, sort=False).tail(reach)
        out = self.mlf_.predict(h=h, new_df=hist[self._columns()], X_df=x_df)
        out = out.rename(columns={"lgb": "forecast"})
        out["forecast"] = out["forecast"].clip(lower=0.0)
        return out  # type: ignore[no-any-return]

    # -- predict ------------------------------------------------------------------------

    def predict(
        self, history: pd.DataFrame, future: pd.DataFrame | None = None, h: int | None = None
    ) -> pd.DataFrame:
        """Forecast ``h`` days after each series' last day in ``history``.

        ``future`` holds the known-future columns for those days (unique_id, ds, exog).
        Returns unique_id, ds, forecast and ``lo-<level>``/``hi-<level>`` per level.
        """
        h = h or self.horizon
        if self.exog_ and future is None:
            raise ValueError("this model uses known-future inputs; pass their future values")
        hist = self._typed(history)
        out = self._point(hist, future if future is not None else hist.iloc[:0], h)
        scale = out[ID].map(_scale(hist)).fillna(1.0)
        for lv, q in self.quantiles_.items():
            name = _fmt(lv)
            out[f"lo-{name}"] = (out["forecast"] - q * scale).clip(lower=0.0)
            out[f"hi-{name}"] = out["forecast"] + q * scale
        return out

    def sigma(self, uid: str, level: float) -> float:
        """Daily forecast-error std of a series (from calibration; else scaled by level)."""
        return self.sigma_.get(uid, self.rel_sigma_ * max(level, 1.0))

    # -- persistence --------------------------------------------------------------------

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MODEL_FILE
        with path.open("wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, folder: Path) -> ForecastModel:
        require_pandas()
        with (folder / MODEL_FILE).open("rb") as fh:
            model = pickle.load(fh)  # our own artifact, written by save()
        if not isinstance(model, cls):
            raise TypeError(f"{folder / MODEL_FILE} does not hold a ForecastModel")
        return model


def _scale(hist: pd.DataFrame) -> pd.Series:
    """Each series' mean over its last ``SCALE_DAYS`` days (at least 1), for scaled errors."""
    tail = hist.groupby(ID, observed=True).tail(SCALE_DAYS)
    return tail.groupby(ID, observed=True)[Y].mean().clip(lower=1.0)


def _fmt(level: float) -> str:
    return str(int(level)) if float(level).is_integer() else str(level)
