"""Replay the deal history step by step: the flywheel on tabular data.

At each boundary T (the first of a month, or a Monday) the replay trains on the deals that
closed before T only, scores the deals open at T, logs those scores, imports the outcomes of
the deals that close before the next boundary, and measures the scores they settle. The rows
show whether accuracy grows as outcomes accumulate, or stays at chance.

Replay versions and scores are kept apart from the real ones: they are registered under the
kind ``leads-sim`` (versions ``leads-sim-v1``, ...; never promoted) and logged under the app
``leads-sim``, so ``datawheel versions``, ``datawheel leads score`` and the per-version
metrics of real outcomes never see them.

Open deals are scored with the columns as they are in the file today; the export holds no
snapshot of a deal as it stood at T, so a column edited after T would leak (the configured
``exclude`` columns, such as the close date and value, are never features).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from datawheel.apps.leads.config import LeadsConfig
from datawheel.apps.leads.model import (
    Schema,
    feature_columns,
    fit,
    labels,
    missing_columns,
    read_deals,
)
from datawheel.apps.leads.score import _inputs, score_frame
from datawheel.dates import parse_dates
from datawheel.errors import ConfigError

log = logging.getLogger(__name__)

APP = "leads-sim"  # registry kind and prediction-log app of replay runs
MIN_TRAIN = 200  # closed deals before the first boundary
MIN_SETTLED = 20  # fewer settled scores in a step: no AUC for it
FREQ = {"month": "MS", "week": "W-MON"}


@dataclass
class ReplayStep:
    """One boundary T: what was trained, scored and settled."""

    at: str  # T, ISO date
    version: str
    train_rows: int
    latest_close: str  # the latest close date among the training rows (always before T)
    scored: int  # deals open at T
    closed: int  # deals that closed in [T, next T)
    settled: int  # of those, scored at T (matched to this version)
    base_rate: float | None  # win rate of the settled deals
    auc: float | None
    auc_ci: list[float] | None
    brier: float | None


@dataclass
class ReplayReport:
    app: str
    step: str
    rows: list[ReplayStep]
    pooled: dict[str, Any]  # n, auc, auc_ci: AUC within steps, averaged over all of them
    verdict: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [f"{self.app} replay by {self.step}: {len(self.rows)} steps", self.verdict]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _holds_dates(values: pd.Series) -> bool:
    try:
        return bool(parse_dates(values, None, "leads.date_format").notna().mean() > 0.5)
    except ConfigError:  # dates, only ambiguous between day-first and month-first
        return True


def replay_leads(
    ws: Any,
    cfg: LeadsConfig,
    *,
    step: Literal["month", "week"] | str = "month",
    start: str | date | None = None,
    close_column: str | None = None,
    min_train: int = MIN_TRAIN,
) -> ReplayReport:
    """Train up to T, score the open deals, import what closed next, retrain; per step.

    Args:
        step: ``month`` (boundaries on the 1st) or ``week`` (on Mondays).
        start: the first boundary to replay (default: the first with ``min_train`` closed
            deals, 10 of them won and 10 lost, before it).
        close_column: the date each won or lost deal closed (default: leads.close_column).

    Example:
        >>> report = replay_leads(ws, ws.config.leads)
        >>> [(r.at, r.train_rows, r.auc) for r in report.rows]
        >>> print(report.verdict)
    """
    from datawheel.feedback.outcomes import Outcome
    from datawheel.improve.registry import Registry

    if step not in FREQ:
        raise ConfigError(f"unknown step {step!r}; choose one of: {', '.join(FREQ)}")
    close_column = close_column or cfg.close_column
    frame, notes = read_deals(ws, cfg)
    y = labels(frame, cfg)
    features = feature_columns(frame, cfg)
    missing_columns(frame, features)
    if close_column not in frame.columns:
        dated = [c for c in frame.columns if _holds_dates(frame[c].head(200))]
        hint = f" columns that hold dates: {', '.join(dated)};" if dated else ""
        raise ConfigError(
            f"the replay needs the date each deal closed; no {close_column!r} column in the "
            f"deals;{hint} set leads.close_column to the one that says when a deal closed"
        )
    if close_column in features:
        notes.append(f"{close_column} is a feature; add it to leads.exclude (known at the close)")
    closes = parse_dates(frame[close_column], cfg.date_format, "leads.date_format")
    undated = int((y.notna() & closes.isna()).sum())
    if undated:
        notes.append(f"{undated:,} closed deals have no {close_column}; never replayed")
    if cfg.time_column:
        engaged = parse_dates(frame[cfg.time_column], cfg.date_format, "leads.date_format")
        never = int((engaged.isna() & y.isna()).sum())
        if never:
            notes.append(f"{never:,} open deals have no {cfg.time_column}; never scored")
    else:  # no start date: a deal is in the pipeline from the beginning
        engaged = pd.Series(pd.Timestamp.min, index=frame.index)
    ids = frame[cfg.id_column].astype("string").fillna("").tolist()

    dated = y.notna() & closes.notna()
    bounds = _boundaries(closes[dated], y[dated], step, start, min_train)
    if not bounds:
        raise ConfigError(
            f"{int(dated.sum()):,} dated closed deals: a replay needs {min_train} closed "
            "(10 won, 10 lost) before its first step; lower min_train or add history"
        )
    registry = Registry(ws.store, kind=APP)
    rows: list[ReplayStep] = []
    settled: list[tuple[np.ndarray, np.ndarray]] = []
    parent: str | None = None
    ends = [*bounds[1:], bounds[-1] + pd.tseries.frequencies.to_offset(FREQ[step])]
    for at, until in zip(bounds, ends, strict=True):
        train = dated & (closes < at)
        part = frame[train]
        y_train = y[train].to_numpy(dtype=int)
        schema = Schema.infer(part, features)
        x, _ = schema.matrix(part)
        order = closes[train].astype("int64").to_numpy(dtype=float)
        model = fit(x, y_train, cfg, order)

        version = registry.next_id()
        folder = Path("models") / version
        latest = closes[train].max().date().isoformat()
        model.save(
            ws.path / folder,
            schema,
            {"version": version, "as_of": at.date().isoformat(), "trained_rows": len(part)},
        )
        registry.record(
            version,
            status="replay",
            parent=parent,
            settings={
                "app": "leads",
                "as_of": at.date().isoformat(),
                "trained_rows": len(part),
                "latest_close": latest,
                "features": schema.features,
            },
            metrics={},
            artifacts=str(folder),
            note=f"replay: trained on deals closed before {at.date()}",
        )
        parent = version

        open_at = (engaged < at) & ~(y.notna() & (closes < at)) & ~(y.notna() & closes.isna())
        scored = frame[open_at]
        if len(scored):
            xs, _ = schema.matrix(scored)
            outs = score_frame(model, schema, xs, cfg)
            keep = ("probability", "reasons", "actions")
            ws.predictions.record(
                APP,
                version,
                [
                    (ids[i], row_in, {"as_of": at.date().isoformat(), **{k: r[k] for k in keep}})
                    for i, row_in, r in zip(scored.index, _inputs(xs), outs, strict=True)
                ],
            )
        closing = dated & (closes >= at) & (closes < until)
        ws.predictions.import_outcomes(
            APP,
            [
                Outcome(APP, ids[i], int(y[i]), closes[i].date().isoformat())
                for i in frame.index[closing]
            ],
        )
        ys, ps = _settled(ws, version)
        settled.append((ys, ps))
        rows.append(
            _step(at, version, len(part), latest, len(scored), int(closing.sum()), ys, ps, cfg.seed)
        )
        log.info("replay %s: %s", at.date(), rows[-1])
    pooled = _pooled(settled, cfg.seed)
    return ReplayReport("leads", step, rows, pooled, trend(rows, pooled), notes)


def _boundaries(
    closes: pd.Series, y: pd.Series, step: str, start: str | date | None, min_train: int
) -> list[pd.Timestamp]:
    """Step starts from the first with enough closed deals before it to the last close."""
    first = closes.min().normalize()
    grid = pd.date_range(first, closes.max(), freq=FREQ[step])  # each step has closes to settle
    out = []
    for at in grid:
        before = y[closes < at]
        won = int(before.sum())
        if len(before) < min_train or won < 10 or len(before) - won < 10:
            continue
        if start is not None and at < pd.Timestamp(start):
            continue
        out.append(at)
    return out


def _settled(ws: Any, version: str) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes and probabilities of the scores this version made that are settled."""
    pairs = [
        (int(v), float(p.output["probability"]))
        for p, v in ws.predictions.settled(APP)
        if p.version == version
    ]
    ys = np.array([a for a, _ in pairs], dtype=int)
    ps = np.array([b for _, b in pairs], dtype=float)
    return ys, ps


def _step(
    at: pd.Timestamp,
    version: str,
    train_rows: int,
    latest: str,
    scored: int,
    closed: int,
    ys: np.ndarray,
    ps: np.ndarray,
    seed: int = 42,
) -> ReplayStep:
    auc = ci = brier = rate = None
    if len(ys):
        rate = float(ys.mean())
        brier = float(np.mean((ps - ys) ** 2))
    if len(ys) >= MIN_SETTLED and 0 < ys.sum() < len(ys):
        auc = float(_auc(ys, ps)[0])
        boots = _boot(ys, ps, np.random.default_rng(seed))
        boots = boots[~np.isnan(boots)]
        ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
    return ReplayStep(
        at.date().isoformat(),
        version,
        train_rows,
        latest,
        scored,
        closed,
        len(ys),
        rate,
        auc,
        ci,
        brier,
    )


def _auc(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUC of each row of ``p`` against the same row of ``y`` (Mann-Whitney, ties halved).

    Rows with one class give NaN. Rank-based and vectorised: the bootstraps below take
    thousands of AUCs, which scikit-learn's per-call checks would make slow.
    """
    from scipy.stats import rankdata

    y, p = np.atleast_2d(y), np.atleast_2d(p)
    ranks = rankdata(p, axis=1)
    pos = y.sum(axis=1)
    neg = y.shape[1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(((ranks * y).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg))


def _boot(y: np.ndarray, p: np.ndarray, rng: np.random.Generator, n: int = 200) -> np.ndarray:
    """``n`` bootstrap AUCs of one step (NaN where a resample holds one class)."""
    idx = rng.integers(0, len(y), (n, len(y)))
    return _auc(y[idx], p[idx])


def _pooled(steps: list[tuple[np.ndarray, np.ndarray]], seed: int = 42) -> dict[str, Any]:
    """AUC within each step, averaged (weighted by settled deals), with a bootstrap 95% CI.

    AUC is taken within steps, not over all scores at once: the win rate moves from month to
    month and a single ranking across months would mix that drift into the score.
    """
    usable = [(y, p) for y, p in steps if len(y) >= MIN_SETTLED and 0 < y.sum() < len(y)]
    n = int(sum(len(y) for y, _ in usable))
    if not usable:
        return {"n": n, "auc": None, "auc_ci": None}
    weights = np.array([len(y) for y, _ in usable], dtype=float)
    rng = np.random.default_rng(seed)
    point = np.array([float(_auc(y, p)[0]) for y, p in usable])
    boots = np.column_stack([_boot(y, p, rng) for y, p in usable])
    boots = np.where(np.isnan(boots), point, boots)  # a one-class resample keeps the step's AUC
    means = boots @ weights / weights.sum()
    ci = [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
    return {"n": n, "auc": float(point @ weights / weights.sum()), "auc_ci": ci}


def trend(rows: list[ReplayStep], pooled: dict[str, Any]) -> str:
    """One line: does AUC rise as training data accumulates, or stay at chance?

    One step in twenty beats chance by luck alone at 95%, so the verdict on signal rests on
    every settled score pooled; the per-step AUCs give the direction.
    """
    measured = [r for r in rows if r.auc is not None and r.auc_ci is not None]
    if not measured or pooled["auc"] is None:
        return (
            f"no step had {MIN_SETTLED}+ settled scores of both outcomes; too little history "
            "to say whether accuracy grows"
        )
    beats = sum(1 for r in measured if r.auc_ci is not None and r.auc_ci[0] > 0.5)
    aucs = [float(r.auc or 0.0) for r in measured]
    lo, hi = pooled["auc_ci"]
    span = (
        f"mean AUC {pooled['auc']:.2f} (CI {lo:.2f}–{hi:.2f}) over {pooled['n']:,} settled "
        f"deals; per step {min(aucs):.2f}–{max(aucs):.2f} as training "
        f"grows from {measured[0].train_rows:,} to {measured[-1].train_rows:,} deals; "
        f"{beats} of {len(measured)} steps above chance"
    )
    if lo <= 0.5:
        return (
            f"no better than chance ({span}): more outcomes of these columns do not teach the "
            "model; add features known before the close"
        )
    half = max(1, len(measured) // 2)
    early, late = float(np.mean(aucs[:half])), float(np.mean(aucs[half:] or aucs))
    head = f"better than chance ({span})"
    if late - early >= 0.03:
        return f"{head}: AUC rises as outcomes accumulate (mean {early:.2f} early, {late:.2f} late)"
    if early - late >= 0.03:
        return f"{head}: AUC falls over time (mean {early:.2f} early, {late:.2f} late); check drift"
    return f"{head}: AUC is flat (mean {early:.2f} early, {late:.2f} late); more data adds little"
