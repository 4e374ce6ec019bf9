"""Replay the sales history week by week: train up to T, forecast, import the actuals.

At each Monday T of the last ``steps`` weeks the model is trained on the days before T only,
forecasts the next ``horizon`` days of every series with enough history, the forecasts are
logged, the actual sales of the week are imported to settle them, and the week's WAPE is set
against seasonal-naive on the same days.

Replay forecasts are logged under the app ``forecast-sim`` with the version label
``forecast-sim@<T>``; the replay models are not registered or saved, so the forecast version
in use, ``datawheel versions`` and the accuracy of real forecasts are untouched.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from datawheel.apps.forecast.backtest import accuracy, build_model
from datawheel.apps.forecast.baselines import seasonal_naive
from datawheel.apps.forecast.data import DS, ID, Y, add_known_future, load_history
from datawheel.apps.forecast.model import _fmt
from datawheel.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from datawheel.apps.forecast.config import ForecastConfig

log = logging.getLogger(__name__)

APP = "forecast-sim"
STEPS = 12


@dataclass
class ForecastStep:
    """One week from T: what was trained, forecast and settled."""

    at: str  # T, ISO date; trained on the days before it
    version: str
    train_rows: int
    latest_day: str  # the last day in training (always before T)
    series: int
    forecasts: int
    settled: int
    wape: float | None
    naive_wape: float | None
    coverage: float | None  # of the widest interval


@dataclass
class ForecastReplay:
    app: str
    step: str
    rows: list[ForecastStep]
    pooled: dict[str, Any]  # every settled forecast: wape, naive_wape, n
    verdict: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [f"{self.app} replay by {self.step}: {len(self.rows)} steps", self.verdict]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def replay_forecast(
    ws: Any,
    cfg: ForecastConfig,
    *,
    step: str = "week",
    start: str | date | None = None,
    steps: int = STEPS,
) -> ForecastReplay:
    """Train up to each Monday T, forecast the week, import its actuals; per week.

    Args:
        step: only ``week`` (forecasts are settled by the week's sales).
        start: the first Monday to replay (default: the last ``steps`` Mondays with a full
            week of sales after them).
        steps: how many weeks to replay when ``start`` is not given.

    Example:
        >>> report = replay_forecast(ws, ws.config.forecast, steps=8)
        >>> [(r.at, r.wape, r.naive_wape) for r in report.rows]
    """
    import pandas as pd

    from datawheel.feedback.outcomes import Outcome

    if step != "week":
        raise ConfigError(f"unknown step {step!r} for forecast; choose one of: week")
    history = load_history(ws, cfg)
    frame, exog, notes = add_known_future(history.frame, ws.path, cfg)
    h = cfg.horizon
    last = frame[DS].max()
    mondays = pd.date_range(frame[DS].min() + pd.Timedelta(days=1), last, freq="W-MON")
    mondays = mondays[mondays + pd.Timedelta(days=6) <= last]  # a full week of actuals
    chosen = list(mondays[mondays >= pd.Timestamp(start)] if start else mondays[-steps:])
    if not chosen:
        raise ConfigError(
            f"no Monday with a full week of sales after it (sales run {frame[DS].min().date()} "
            f"to {last.date()}); load more history or pass an earlier start"
        )
    widest = _fmt(max(cfg.level))
    rows: list[ForecastStep] = []
    all_y: list[Any] = []
    all_f: list[Any] = []
    all_n: list[Any] = []
    skipped: set[str] = set()
    for at in chosen:
        train = frame[frame[DS] < at]
        length = train.groupby(ID, observed=True).size()
        keep = length.index[length >= cfg.min_history_days]
        skipped |= {str(s) for s in length.index[length < cfg.min_history_days]}
        train = train[train[ID].isin(keep)]
        week = frame[(frame[DS] >= at) & (frame[DS] < at + pd.Timedelta(days=7))]
        week = week[week[ID].isin(keep)]
        version = f"{APP}@{at.date().isoformat()}"
        if train.empty:
            continue
        model = build_model(cfg).fit(train, cfg.series, exog)
        ahead = frame[(frame[DS] >= at) & (frame[DS] < at + pd.Timedelta(days=h))]
        pred = model.predict(train, ahead[ahead[ID].isin(keep)][[ID, DS, *exog]], h)
        _log(ws, version, pred)
        ws.predictions.import_outcomes(
            APP,
            [
                Outcome(APP, _entity(uid, ds), float(y), ds.date().isoformat())
                for uid, ds, y in zip(week[ID], week[DS], week[Y], strict=True)
            ],
        )
        got = _settled(ws, version, widest)
        naive = seasonal_naive(train, h).merge(week[[ID, DS, Y]], on=[ID, DS])
        naive = naive.assign(
            entity=[_entity(u, d) for u, d in zip(naive[ID], naive[DS], strict=True)]
        )
        naive = naive[naive["entity"].isin(got["entity"])]
        acc = accuracy(got["y"], got["forecast"], got["lo"], got["hi"])
        base = accuracy(naive[Y], naive["forecast"])
        all_y.append(got["y"])
        all_f.append(got["forecast"])
        all_n.append((naive[Y], naive["forecast"]))
        rows.append(
            ForecastStep(
                at.date().isoformat(),
                version,
                len(train),
                train[DS].max().date().isoformat(),
                int(len(keep)),
                len(pred),
                int(acc["n"] or 0),
                _f(acc["wape"]),
                _f(base["wape"]),
                _f(acc["coverage"]),
            )
        )
        log.info("forecast replay %s: %s", at.date(), rows[-1])
    if skipped:
        notes.append(
            f"{len(skipped)} series had under {cfg.min_history_days} days before a step and "
            "were left out of it"
        )
    pooled: dict[str, Any] = {"n": 0, "wape": None, "naive_wape": None}
    if all_y:
        model_acc = accuracy(pd.concat(all_y), pd.concat(all_f))
        naive_acc = accuracy(pd.concat([y for y, _ in all_n]), pd.concat([f for _, f in all_n]))
        pooled = {"n": model_acc["n"], "wape": model_acc["wape"], "naive_wape": naive_acc["wape"]}
    return ForecastReplay("forecast", step, rows, pooled, trend(rows, pooled), notes)


def _entity(uid: Any, ds: Any) -> str:
    import pandas as pd

    return f"{uid}@{pd.Timestamp(ds).date().isoformat()}"


def _f(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _log(ws: Any, version: str, pred: pd.DataFrame) -> None:
    """Log each series-day forecast the way ``datawheel forecast run`` does."""
    import pandas as pd

    bands = [c for c in pred.columns if c.startswith(("lo-", "hi-"))]
    logged = []
    for rec in pred.to_dict("records"):
        day = pd.Timestamp(rec[DS]).date().isoformat()
        output = {"forecast": float(rec["forecast"])} | {b: float(rec[b]) for b in bands}
        logged.append((f"{rec[ID]}@{day}", {"series": str(rec[ID]), "date": day}, output))
    ws.predictions.record(APP, version, logged)


def _settled(ws: Any, version: str, widest: str) -> pd.DataFrame:
    """The forecasts this version made that the imported actuals settled."""
    import pandas as pd

    rows = [
        {
            "entity": p.entity,
            "y": float(value),
            "forecast": p.output["forecast"],
            "lo": p.output.get(f"lo-{widest}"),
            "hi": p.output.get(f"hi-{widest}"),
        }
        for p, value in ws.predictions.settled(APP)
        if p.version == version
    ]
    return pd.DataFrame(rows, columns=["entity", "y", "forecast", "lo", "hi"])


def trend(rows: list[ForecastStep], pooled: dict[str, Any]) -> str:
    """One line: does the model beat seasonal-naive, and does WAPE fall as weeks accumulate?

    A trend is claimed only when the later half's mean WAPE differs from the earlier half's by
    more than twice its standard error (from the week-to-week spread).
    """
    import numpy as np

    measured = [r for r in rows if r.wape is not None and r.naive_wape is not None]
    if not measured or pooled["wape"] is None or pooled["naive_wape"] is None:
        return "no week had actuals to settle its forecasts; too little history to judge"
    beats = sum(1 for r in measured if (r.wape or 0) < (r.naive_wape or 0))
    head = (
        f"WAPE {pooled['wape']:.3f} vs seasonal-naive {pooled['naive_wape']:.3f} over "
        f"{pooled['n']:,} settled series-days; better in {beats} of {len(measured)} weeks"
    )
    wapes = [float(r.wape or 0.0) for r in measured]
    half = len(wapes) // 2
    if half < 3:
        move = f"{len(wapes)} weeks are too few to see a trend"
    else:
        early, late = wapes[:half], wapes[half:]
        diff = sum(late) / len(late) - sum(early) / len(early)
        spread = float(np.std(wapes, ddof=1)) * (1 / len(early) + 1 / len(late)) ** 0.5
        said = f"({sum(early) / len(early):.3f} early, {sum(late) / len(late):.3f} late)"
        if diff < -2 * spread:
            move = f"WAPE falls as weeks accumulate {said}"
        elif diff > 2 * spread:
            move = f"WAPE rises over time {said}; check for drift"
        else:
            move = f"WAPE shows no clear trend {said}; more weeks add little"
    better = pooled["wape"] < pooled["naive_wape"]
    return f"{'beats' if better else 'does not beat'} seasonal-naive ({head}); {move}"
