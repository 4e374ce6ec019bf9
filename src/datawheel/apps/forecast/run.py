"""The forecast verbs on a workspace: train, forecast (+ replenishment), import sales, backtest.

Every series x day forecast is logged through the prediction log (app ``forecast``, entity
``<series>@<date>``, e.g. ``1/7@2018-01-03``) with the model version, so imported sales settle
them and WAPE, sMAPE, bias and interval coverage are measured per version.

Example::

    report = train_forecast(ws, ws.config.forecast)       # forecast-v1: the first is promoted
    result = run_forecast(ws, ws.config.forecast, 7, on_hand=Path("stock.csv"))
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datawheel.apps.forecast import replenish
from datawheel.apps.forecast.backtest import accuracy, build_model, rolling_backtest
from datawheel.apps.forecast.baselines import naive_sigma, seasonal_naive
from datawheel.apps.forecast.data import (
    DS,
    ID,
    History,
    Y,
    add_known_future,
    load_history,
    read_rows,
    source_of,
)
from datawheel.apps.forecast.model import ForecastModel, _fmt
from datawheel.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from datawheel.apps.forecast.config import ForecastConfig
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)

APP = "forecast"


@dataclass
class TrainReport:
    version: str
    series: int
    rows: int
    fallback: list[str]
    bad_rows: dict[str, int]
    gaps_filled: int
    features: list[str]
    calibration: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)
    promoted: bool = True
    current: str | None = None  # the version in use when this one was trained
    judged: dict[str, Any] = field(default_factory=dict)  # champion vs challenger, and why

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ForecastResult:
    version: str
    horizon: int
    rows: list[dict[str, Any]]
    fallback: list[str]
    replenishment: list[dict[str, Any]]
    bad_rows: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportReport:
    imported: int
    matched: int
    unmatched: int
    bad_rows: list[dict[str, Any]]
    accuracy: dict[str, dict[str, Any]]  # per model version, over every settled forecast

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prepare(
    ws: Workspace, cfg: ForecastConfig, history: History
) -> tuple[pd.DataFrame, list[str], list[str], list[str]]:
    """Known-future columns joined; returns (frame of long series, short series, exog, notes)."""
    frame, exog, _ = add_known_future(history.frame, ws.path, cfg)
    length = frame.groupby(ID).size()
    short = sorted(length.index[length < cfg.min_history_days])
    notes = list(history.notes)
    if short:
        notes.append(
            f"{len(short)} series have under {cfg.min_history_days} days of history and use "
            f"seasonal-naive instead of the model: {', '.join(short[:10])}"
            + (" ..." if len(short) > 10 else "")
        )
    if history.bad_rows:
        summary = "; ".join(f"{n} {why}" for why, n in history.bad_summary().items())
        notes.append(f"{len(history.bad_rows)} rows left out ({summary})")
    if history.gaps_filled:
        notes.append(f"{history.gaps_filled} missing series-days filled with 0")
    unused = [c for c in history.columns if c not in {cfg.date, cfg.target, *cfg.series, *exog}]
    if unused:
        notes.append(
            f"not used: {', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''} (the model "
            "reads the sales history, the calendar, forecast.country's holidays and "
            "forecast.known_future tables: to use a column such as a promotion flag, give its "
            "future values there)"
        )
    return frame[~frame[ID].isin(short)], short, exog, notes


def train_forecast(
    ws: Workspace, cfg: ForecastConfig, *, trigger: str | None = None
) -> TrainReport:
    """Train the global model on the sales history and register it. The first version is put
    in use; later ones only when their WAPE on the latest days (which they never trained on)
    beats the version in use by ``cfg.improve.margin`` (see :mod:`.judge`).

    Args:
        trigger: why this training ran (recorded with the version), e.g. improve's reason.
    """
    from datawheel.apps.forecast.judge import judge
    from datawheel.improve.registry import Registry

    started = time.perf_counter()
    history = load_history(ws, cfg)
    frame, short, exog, notes = _prepare(ws, cfg, history)
    if frame.empty:
        raise ConfigError(
            f"no series has {cfg.min_history_days} days of history to train on; "
            "lower forecast.min_history_days or load more history"
        )
    model = build_model(cfg).fit(frame, static=cfg.series, exog=exog)
    registry = Registry(ws.store, kind=APP)
    judged = judge(ws, registry, model, frame, cfg, notes)
    promoted = bool(judged.pop("promote"))
    current = registry.current()
    version = registry.next_id()
    folder = ws.path / "models" / version
    model.save(folder)
    if history.bad_rows:
        _write_bad_rows(history, folder / "bad_rows.csv")
        notes.append(f"rows left out are listed in {folder / 'bad_rows.csv'}")
    seconds = time.perf_counter() - started
    report = TrainReport(
        version=version,
        series=int(frame[ID].nunique()),
        rows=len(frame),
        fallback=short,
        bad_rows=history.bad_summary(),
        gaps_filled=history.gaps_filled,
        features=exog,
        calibration=model.calibration_ | {"quantiles": model.quantiles_},
        seconds=round(seconds, 2),
        notes=notes,
        promoted=promoted,
        current=current,
        judged=judged,
    )
    until = model.trained_until_.date()
    registry.record(
        version,
        status="candidate" if promoted else "rejected",
        parent=current,
        settings=cfg.model_dump(mode="json")
        | {"trigger": trigger, "read": history.notes, "method": judged.get("method", "model")},
        metrics={
            "calibration_wape": model.calibration_["wape"],
            "series": report.series,
            "wape": judged["challenger"],
            "naive_wape": judged["naive"],
            "champion_wape": judged["champion"],
            "judged_days": judged["days"],
            "trained_until": until.isoformat(),
        },
        artifacts=str(folder.relative_to(ws.path)),
        note=f"trained until {until} on {report.series} series; {judged['reason']}",
    )
    if promoted:
        registry.promote(version)
    log.info(
        "trained %s on %d series in %.1fs (%s)",
        version,
        report.series,
        seconds,
        "promoted" if promoted else "rejected",
    )
    return report


def _write_bad_rows(history: History, path: Path) -> None:
    import csv

    fields = ["row", "reason", *{k: None for b in history.bad_rows for k in b.values}]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for b in history.bad_rows:
            writer.writerow({"row": b.row, "reason": b.reason, **b.values})


def _future(frame: pd.DataFrame, series: list[str], h: int) -> pd.DataFrame:
    import pandas as pd

    last = frame.groupby(ID)[[DS, *series]].last()
    parts = []
    for d in range(1, h + 1):
        part = last.reset_index()
        part[DS] = part[DS] + pd.Timedelta(days=d)
        parts.append(part)
    return pd.concat(parts, ignore_index=True).sort_values([ID, DS], ignore_index=True)


def run_forecast(
    ws: Workspace,
    cfg: ForecastConfig,
    horizon: int | None = None,
    on_hand: Path | None = None,
    lead_time: int | None = None,
    service_level: float | None = None,
) -> ForecastResult:
    """Forecast ``horizon`` days for every series, log each forecast, and plan orders.

    Series with too little history get seasonal-naive (named in ``fallback`` and the notes).
    With ``on_hand`` (a CSV of series columns + ``on_hand``) the result has order quantities.
    """
    import pandas as pd

    from datawheel.improve.registry import Registry

    h = horizon or cfg.horizon
    lead = lead_time or cfg.lead_time_days
    level = service_level or cfg.service_level
    stock = replenish.read_on_hand(Path(on_hand), cfg.series) if on_hand else None
    if stock is not None and lead > h:
        raise ConfigError(
            f"lead time {lead} days exceeds the {h}-day horizon; pass --horizon {lead} or more"
        )
    replenish.z_value(level)
    registry = Registry(ws.store, kind=APP)
    version = registry.current()
    if version is None:
        raise ConfigError("no forecast model yet; train one with: datawheel forecast train")
    model = ForecastModel.load(ws.path / "models" / version)
    method = (registry.get(version).get("settings") or {}).get("method", "model")
    history = load_history(ws, cfg)
    frame, short, exog, notes = _prepare(ws, cfg, history)
    if sorted(exog) != sorted(model.exog_):
        raise ConfigError(
            f"{version} was trained with inputs {model.exog_ or 'none'} but the config now "
            f"gives {exog or 'none'}; retrain with: datawheel forecast train"
        )
    future, _, fut_notes = add_known_future(_future(history.frame, cfg.series, h), ws.path, cfg)
    notes.extend(fut_notes)
    parts = []
    sigma: dict[str, float] = {}
    if not frame.empty:
        pred = model.predict(frame, future[~future[ID].isin(short)], h)
        parts.append(_by_method(pred, frame, method, h))
        if method != "model":
            notes.append(
                f"{version} forecasts with {method.replace('_', ' ')}, which beat its "
                "model on the days it never trained on (forecast train says by how much)"
            )
        scale = frame.groupby(ID).tail(28).groupby(ID)[Y].mean()
        sigma.update({uid: model.sigma(uid, float(scale.get(uid, 1.0))) for uid in scale.index})
    if short:
        short_hist = history.frame[history.frame[ID].isin(short)]
        naive = seasonal_naive(short_hist, h)
        nsig = naive_sigma(short_hist)
        from statistics import NormalDist

        for lv in cfg.level:
            z = NormalDist().inv_cdf(0.5 + lv / 200)
            width = naive[ID].map(nsig).fillna(0.0) * z
            naive[f"lo-{_fmt(lv)}"] = (naive["forecast"] - width).clip(lower=0.0)
            naive[f"hi-{_fmt(lv)}"] = naive["forecast"] + width
        parts.append(naive.assign(method="seasonal_naive"))
        sigma.update({str(k): float(v) for k, v in nsig.items()})
    out = pd.concat(parts, ignore_index=True).merge(future, on=[ID, DS], how="left")
    out = out.sort_values([ID, DS], ignore_index=True)
    bands = [c for c in out.columns if c.startswith(("lo-", "hi-"))]
    rows, logged = [], []
    for rec in out.to_dict("records"):
        day = pd.Timestamp(rec[DS]).date().isoformat()
        inputs = {"series": rec[ID], "date": day, "method": rec["method"]}
        inputs |= {c: _num(rec.get(c)) for c in exog}
        output = {"forecast": _num(rec["forecast"])} | {b: _num(rec[b]) for b in bands}
        logged.append((f"{rec[ID]}@{day}", inputs, output))
        rows.append({"series": rec[ID], "date": day, "method": rec["method"], **output})
    ids = ws.predictions.record(APP, version, logged)
    for row, pid in zip(rows, ids, strict=True):
        row["prediction_id"] = pid
    plan = []
    if stock is not None:
        unknown = sorted(set(stock) - set(out[ID]))
        if unknown:
            notes.append(f"on-hand rows for unknown series ignored: {', '.join(unknown[:10])}")
        plan = replenish.plan(rows, sigma, stock, lead_time=lead, service_level=level)
    return ForecastResult(version, h, rows, short, plan, history.bad_summary(), notes)


def _by_method(pred: pd.DataFrame, frame: pd.DataFrame, method: str, h: int) -> pd.DataFrame:
    """The model's forecasts, or the method its version chose instead; the intervals keep the
    model's width around the new point forecast."""
    from datawheel.apps.forecast.baselines import autoets_forecast, moving_average

    if method == "model":
        return pred.assign(method="model")
    base = {"seasonal_naive": seasonal_naive, "autoets": autoets_forecast}.get(
        method, moving_average
    )
    other = base(frame, h).rename(columns={"forecast": "other"}).astype({ID: str})
    out = pred.astype({ID: str}).merge(other, on=[ID, DS], how="left")
    other_f = out["other"].fillna(out["forecast"])
    new = (out["forecast"] + other_f) / 2 if method == "blend" else other_f
    shift = new - out["forecast"]
    for col in [c for c in out.columns if c.startswith(("lo-", "hi-"))]:
        out[col] = (out[col] + shift).clip(lower=0.0)
    out["forecast"] = new
    return out.drop(columns=["other"]).assign(method=method)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else round(f, 4)


def import_sales(ws: Workspace, cfg: ForecastConfig, path: str | Path) -> ImportReport:
    """Import actual sales (same columns as the history); match them to logged forecasts.

    Negative or non-numeric quantities are reported in ``bad_rows`` and not imported.
    """
    from datawheel.feedback.outcomes import Outcome

    rows = read_rows(source_of(ws, cfg, path)[0], cfg)
    good, bad = rows.good, rows.bad
    outcomes = [
        Outcome(APP, f"{uid}@{ds.date().isoformat()}", float(y), ds.date().isoformat())
        for uid, ds, y in zip(good[ID], good[DS], good[Y], strict=True)
    ]
    report = ws.predictions.import_outcomes(APP, outcomes)
    return ImportReport(
        imported=report.imported,
        matched=report.matched,
        unmatched=len(report.unmatched),
        bad_rows=[{"row": b.row, "reason": b.reason, **b.values} for b in bad],
        accuracy=settled_accuracy(ws, cfg),
    )


def settled_accuracy(ws: Workspace, cfg: ForecastConfig) -> dict[str, dict[str, Any]]:
    """WAPE, sMAPE, bias and coverage of the widest interval per version, on settled rows."""
    widest = _fmt(max(cfg.level))
    by_version: dict[str, list[tuple[float, float, float | None, float | None]]] = {}
    for pred, value in ws.predictions.settled(APP):
        out = pred.output
        by_version.setdefault(pred.version or "", []).append(
            (float(value), out["forecast"], out.get(f"lo-{widest}"), out.get(f"hi-{widest}"))
        )
    result = {}
    for version, items in by_version.items():
        y, f, lo, hi = zip(*items, strict=True)
        have_bands = all(v is not None for v in lo + hi)
        result[version] = accuracy(y, f, lo if have_bands else None, hi if have_bands else None)
    return result


def backtest_forecast(
    ws: Workspace, cfg: ForecastConfig, weeks: int = 8, *, autoets: bool = True
) -> dict[str, Any]:
    """Rolling-origin backtest of the model vs seasonal-naive and AutoETS (time-ordered)."""
    history = load_history(ws, cfg)
    frame, exog, _ = add_known_future(history.frame, ws.path, cfg)
    result = rolling_backtest(frame, cfg, cfg.series, exog, weeks=weeks, autoets=autoets)
    result["bad_rows"] = history.bad_summary()
    naive = result["seasonal_naive"]["wape"]
    model = result["model"]["wape"]
    if naive and model is not None:
        result["improvement_vs_naive"] = round(1 - model / naive, 4)
    return result
