"""Champion vs challenger: both forecast the latest days, which the challenger never trained on.

A new forecast model trains on all history but its last ``calib_days`` (14): those days are
the time-ordered holdout. The model in use forecasts the same days from the same origins,
with the same actuals as lag inputs, so the two WAPEs compare like with like; seasonal-naive
is measured on the same days too. Days the model in use trained on are left out of the
comparison when enough remain (else the note says its WAPE is flattered).

Example::

    judged = judge(ws, registry, challenger, frame, cfg, notes)
    judged["promote"], judged["reason"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datawheel.apps.forecast.backtest import accuracy
from datawheel.apps.forecast.baselines import autoets_forecast, moving_average, seasonal_naive
from datawheel.apps.forecast.data import DS, ID, Y
from datawheel.apps.forecast.model import ForecastModel

if TYPE_CHECKING:
    import pandas as pd

    from datawheel.apps.forecast.config import ForecastConfig
    from datawheel.improve.registry import Registry


def judge(
    ws: Any,
    registry: Registry,
    challenger: ForecastModel,
    frame: pd.DataFrame,
    cfg: ForecastConfig,
    notes: list[str],
) -> dict[str, Any]:
    """WAPE of the challenger and of the version in use on the same latest days; whether the
    challenger is promoted (the first version always is)."""
    margin = cfg.improve.margin
    new = challenger.holdout(frame, challenger.trained_until_)
    judged: dict[str, Any] = {
        "metric": "wape",
        "from": challenger.trained_until_.date().isoformat(),
        "days": int(new[DS].nunique()),
        "rows": len(new),
        "challenger": accuracy(new[Y], new["forecast"])["wape"],
        "champion": None,
        "naive": _naive_wape(frame, new),
        "margin": margin,
    }
    method, methods = choose_method(frame, new)
    judged |= {"method": method, "methods": methods}
    if method != "model":
        chosen = methods["wape"]
        notes.append(
            f"forecasts with {method.replace('_', ' ')}: WAPE {chosen[method]:.4f} against the "
            f"model's {chosen['model']:.4f} on the {judged['days']} latest days it never "
            "trained on (the model is kept and judged again at the next training)"
        )
    current = registry.current()
    if current is None:
        return judged | {"promote": True, "reason": "no model in use: the first is promoted"}
    try:
        old = ForecastModel.load(ws.path / registry.get(current)["artifacts"])
        missing = sorted(set(old.exog_) - set(frame.columns))
        if missing:
            raise ValueError(f"it needs input(s) {', '.join(missing)}, which the config dropped")
        old_pred = old.holdout(frame, challenger.trained_until_)
    except Exception as exc:  # noqa: BLE001 - a version in use that cannot run loses
        notes.append(f"could not run {current} on the latest days: {exc}")
        return judged | {"promote": True, "reason": f"{current} could not be run"}
    both = new.merge(old_pred[[ID, DS, "forecast"]], on=[ID, DS], suffixes=("", "_old"))
    both = _unseen(both, old, challenger, current, notes)
    new_wape = accuracy(both[Y], both["forecast"])["wape"]
    old_wape = accuracy(both[Y], both["forecast_old"])["wape"]
    days = int(both[DS].nunique())
    judged |= {
        "days": days,
        "rows": len(both),
        "challenger": new_wape,
        "champion": old_wape,
        "naive": _naive_wape(frame, both),
    }
    where = f"the same {days} latest days ({len(both):,} series-days)"
    if new_wape is None or old_wape is None:
        reason = f"WAPE is undefined on {where} (no sales); {current} stays in use"
        return judged | {"promote": False, "reason": reason}
    promote = new_wape < old_wape * (1 - margin)
    change = new_wape / old_wape - 1 if old_wape else 0.0
    wins = f"margin {margin:.0%})" if promote else f"needs {margin:.0%} lower)"
    reason = f"WAPE {new_wape:.4f} vs {current} {old_wape:.4f} on {where} ({change:+.1%}; {wins}"
    return judged | {"promote": promote, "reason": reason}


#: What a version may forecast with: its model, the model blended half and half with the
#: 28-day mean, or one of the two baselines, whichever had the lowest WAPE on the days it
#: never trained on. So the method in use is never worse there than a baseline it beat.
METHODS = ("model", "blend", "seasonal_naive", "moving_average", "autoets")
#: AutoETS is fitted per series and origin: tried up to this many series (seconds each)
ETS_MAX_SERIES = 50


def choose_method(frame: pd.DataFrame, judged: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    """WAPE of each method on the judged series-days (the model's forecasts and, from the same
    origins, the baselines'); the lowest wins, the model on a tie."""
    import pandas as pd

    if judged.empty:
        return "model", {}
    ets = judged[ID].nunique() <= ETS_MAX_SERIES
    parts = []
    for origin, days in judged.groupby("origin"):
        h = int((days[DS].max() - origin).days)
        hist = frame[frame[DS] <= origin]
        naive = seasonal_naive(hist, h).rename(columns={"forecast": "seasonal_naive"})
        mean = moving_average(hist, h).rename(columns={"forecast": "moving_average"})
        both = days[[ID, DS, Y, "forecast"]].astype({ID: str})
        both = both.merge(naive.astype({ID: str}), on=[ID, DS])
        both = both.merge(mean.astype({ID: str}), on=[ID, DS])
        if ets:
            fitted = autoets_forecast(hist, h).rename(columns={"forecast": "autoets"})
            both = both.merge(fitted.astype({ID: str}), on=[ID, DS], how="left")
        parts.append(both)
    table = pd.concat(parts, ignore_index=True).rename(columns={"forecast": "model"})
    table["blend"] = (table["model"] + table["moving_average"]) / 2
    tried = [m for m in METHODS if m in table.columns and table[m].notna().all()]
    wape = {m: accuracy(table[Y], table[m])["wape"] for m in tried}
    known = {m: w for m, w in wape.items() if w is not None}
    best = min(known, key=lambda m: (known[m], METHODS.index(m))) if known else "model"
    out: dict[str, Any] = {"wape": wape, "series_days": len(table)}
    if not ets:
        out["autoets"] = f"not tried: over {ETS_MAX_SERIES} series"
    return best, out


def _unseen(
    both: pd.DataFrame,
    old: ForecastModel,
    challenger: ForecastModel,
    current: str,
    notes: list[str],
) -> pd.DataFrame:
    """The days the version in use did not train on, when at least a horizon of them is left."""
    until = old.trained_until_
    if until <= challenger.trained_until_:
        return both
    later = both[both[DS] > until]
    if later[DS].nunique() >= challenger.horizon:
        notes.append(
            f"judged on the days after {until.date()}; {current} trained on the ones before"
        )
        return later
    notes.append(
        f"{current} trained on days up to {until.date()}, most of the judged days, so its "
        "WAPE there is flattering; the challenger had to beat that"
    )
    return both


def _naive_wape(frame: pd.DataFrame, judged: pd.DataFrame) -> float | None:
    """Seasonal-naive WAPE on the judged series-days, from the same origins."""
    import pandas as pd

    if judged.empty:
        return None
    parts = []
    for origin, days in judged.groupby("origin"):
        h = int((days[DS].max() - origin).days)
        naive = seasonal_naive(frame[frame[DS] <= origin], h)
        parts.append(days[[ID, DS, Y]].merge(naive, on=[ID, DS]))
    both = pd.concat(parts, ignore_index=True)
    return accuracy(both[Y], both["forecast"])["wape"]
