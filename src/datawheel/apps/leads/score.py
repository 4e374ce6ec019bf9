"""Score leads: close probability, the top reasons, and the best next action.

Reasons are the booster's per-prediction contributions (log-odds), in words. The best next
action re-scores each lead with every option of each action column; it is what the model
associates with closing, not a proven cause, and the note says so when data is thin or the
model is no better than chance.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datawheel.apps.leads.config import LeadsConfig
from datawheel.apps.leads.evidence import APP
from datawheel.apps.leads.model import LeadModel, Schema, missing_columns, read_deals, source_of
from datawheel.errors import ConfigError

REASONS = 3
MIN_LIFT = 0.005  # smaller gains in close probability are noise, not advice
MIN_EFFECT = 0.02  # log-odds; a smaller push (under ~0.5 points near 50%) is no reason


@dataclass
class ScoreResult:
    version: str
    verdict: str  # how good the model was on its holdout
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_csv(self, path: str | Path) -> None:
        actions = sorted({a["column"] for r in self.rows for a in r["actions"]})
        header = ["id", "probability"] + [f"reason_{i + 1}" for i in range(REASONS)]
        for col in actions:
            header += [f"best_{col}", f"lift_{col}", f"note_{col}"]
        header.append("prediction_id")
        with Path(path).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for r in self.rows:
                reasons = [x["text"] for x in r["reasons"]]
                line = [r["id"], f"{r['probability']:.4f}"]
                line += reasons + [""] * (REASONS - len(reasons))
                by_col = {a["column"]: a for a in r["actions"]}
                for col in actions:
                    a = by_col.get(col)
                    line += [a["best"], f"{a['lift']:+.4f}", a["note"]] if a else ["", "", ""]
                writer.writerow([*line, r["prediction_id"]])


def load_current(ws: Any) -> tuple[LeadModel, Schema, dict[str, Any], str]:
    from datawheel.improve.registry import Registry

    registry = Registry(ws.store, kind=APP)
    version = registry.current()
    if not version:
        raise ConfigError("no lead model yet; train one with: datawheel leads train")
    model, schema, info = LeadModel.load(ws.path / registry.get(version)["artifacts"])
    return model, schema, info, version


def score_leads(ws: Any, cfg: LeadsConfig, path_or_source: str | Path | None = None) -> ScoreResult:
    """Score a file or source of leads (default: the open deals of ``leads.source``).

    Every score is logged with its id and model version, so outcomes can settle it later.

    Example:
        >>> result = score_leads(ws, ws.config.leads, "new-leads.csv")
        >>> result.rows[0]["probability"], result.rows[0]["reasons"][0]["text"]
    """
    from datawheel.apps.leads.model import labels

    model, schema, info, version = load_current(ws)
    source = None if path_or_source is None else source_of(ws, path_or_source)
    frame, notes = read_deals(ws, cfg, source)
    if path_or_source is None or cfg.target in frame.columns:
        y = labels(frame, cfg)  # unknown target values fail here too
        closed = int(y.notna().sum())
        if closed:
            notes.append(f"{closed:,} rows already closed (won or lost) were not scored")
        frame = frame[y.isna()].reset_index(drop=True)
    missing_columns(frame, schema.features)
    verdict = str(info.get("verdict", ""))
    if frame.empty:
        return ScoreResult(version, verdict, [], [*notes, "no open leads to score"])
    x, unseen = schema.matrix(frame)
    for col, values in unseen.items():
        shown = ", ".join(repr(v) for v in values[:3])
        notes.append(
            f"{col}: {len(values)} value(s) never seen in training ({shown}); scored as missing"
        )
    if cfg.id_column in frame.columns:
        ids = frame[cfg.id_column].astype("string").fillna("").tolist()
    else:
        notes.append(f"no {cfg.id_column} column: leads are named by row number (row-1, ...)")
        ids = [f"row-{i + 1}" for i in range(len(frame))]
    rows = score_frame(model, schema, x, cfg, chance=not info.get("signal", True))
    inputs = _inputs(x)
    logged = ws.predictions.record(
        APP,
        version,
        [
            (lead, row_in, {k: r[k] for k in ("probability", "reasons", "actions")})
            for lead, row_in, r in zip(ids, inputs, rows, strict=True)
        ],
    )
    for lead, r, pid in zip(ids, rows, logged, strict=True):
        r["id"], r["prediction_id"] = lead, pid
    return ScoreResult(version, verdict, rows, notes)


def score_frame(
    model: LeadModel, schema: Schema, x: pd.DataFrame, cfg: LeadsConfig, *, chance: bool = False
) -> list[dict[str, Any]]:
    """Probability, reasons and actions per row of the typed feature matrix ``x``."""
    p = model.predict_proba(x)
    contrib = model.contributions(x)[:, :-1]
    actions = best_actions(model, schema, x, p, cfg, chance=chance)
    values = x.astype(object).to_numpy()
    tops = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :REASONS]
    rows = []
    for i, top in enumerate(tops):
        reasons = [
            _reason(x.columns[j], values[i, j], float(contrib[i, j]))
            for j in top
            if abs(contrib[i, j]) >= MIN_EFFECT
        ]
        rows.append({"probability": float(p[i]), "reasons": reasons, "actions": actions[i]})
    return rows


def _reason(column: str, value: Any, effect: float) -> dict[str, Any]:
    shown = _show(value)
    verb = "raises it" if effect > 0 else "lowers it"
    return {"feature": column, "value": shown, "effect": effect, "text": f"{column}={shown} {verb}"}


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "missing"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def best_actions(
    model: LeadModel,
    schema: Schema,
    x: pd.DataFrame,
    p: np.ndarray,
    cfg: LeadsConfig,
    *,
    chance: bool = False,
) -> list[list[dict[str, Any]]]:
    """For each row and action column: the option with the highest close probability."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(len(x))]
    for col in cfg.action_columns:
        counts = schema.categories.get(col)
        if not counts or len(x) == 0:
            continue  # not a categorical feature the model uses
        options = list(counts)
        probs = np.column_stack(
            [
                model.predict_proba(
                    x.assign(**{col: pd.Categorical([o] * len(x), categories=options)})
                )
                for o in options
            ]
        )
        best = probs.argmax(axis=1)
        now = x[col].astype(object).to_numpy()
        for i in range(len(x)):
            option = options[best[i]]
            lift = float(probs[i, best[i]] - p[i])
            current = _show(now[i])
            if lift < MIN_LIFT and current in counts:  # ties and noise: keep what is there
                option, lift = current, 0.0
            out[i].append(
                {
                    "column": col,
                    "current": current,
                    "best": option,
                    "probability": float(probs[i, best[i]]),
                    "lift": lift,
                    "note": _note(col, option, current, counts[option], lift, cfg, chance),
                }
            )
    return out


def _note(
    col: str, option: str, current: str, n: int, lift: float, cfg: LeadsConfig, chance: bool
) -> str:
    if option == current or lift < MIN_LIFT:
        return "keep as is: no option predicts a clearly better close rate"
    if chance:
        return "the model is no better than chance on its holdout; not evidence for a change"
    if n < cfg.min_group_size:
        return f"thin data: only {n} closed deals had {col}={option}; treat as a guess"
    return f"based on {n:,} closed deals with {col}={option}; an association, not a proven cause"


def _inputs(x: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row's features as JSON-safe values, for the prediction log."""
    plain = x.astype(object).where(x.notna(), None)
    return [
        {
            k: (float(v) if isinstance(v, (float, np.floating)) else v if v is None else str(v))
            for k, v in row.items()
        }
        for row in plain.to_dict("records")
    ]
