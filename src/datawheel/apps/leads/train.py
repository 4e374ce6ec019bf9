"""Train a lead model, judge it against the one in use, register it; walk-forward backtests.

Every trained version is registered (kind ``leads``). It replaces the version in use only
when its AUC on the same held-out deals beats that version's by ``leads.improve.margin``;
otherwise it is kept as ``rejected`` with the reason. The version in use is judged only on
held-out deals it did not train on, when the registry says which those are (each version
records ``trained_until``, the latest time-order value among its training deals).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datawheel.apps.leads.config import LeadsConfig
from datawheel.apps.leads.model import (
    LeadModel,
    dataset,
    fit,
    metrics,
    missing_columns,
    split,
    time_order,
)
from datawheel.errors import ConfigError

MIN_JUDGED = 10  # won and lost deals each, for an AUC worth comparing


@dataclass
class TrainReport:
    version: str
    promoted: bool
    split: str
    rows: dict[str, int]
    features: list[str]
    metrics: dict[str, Any]
    current: str | None = None
    current_metrics: dict[str, Any] | None = None
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    judged: dict[str, Any] = field(default_factory=dict)  # champion vs challenger, and why

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        m = self.metrics
        lines = [
            f"{self.version}: trained on {self.rows['train']:,} closed deals, "
            f"held out {self.rows['holdout']:,} ({self.split}); {self.rows['open']:,} open",
            f"  {m['verdict']}",
            f"  Brier {m['brier']:.3f} (base rate {m['base_rate']:.1%}: {m['base_brier']:.3f}); "
            f"top-20% lift {_x(m['lift_top20'])}",
        ]
        verb = "promoted" if self.promoted else f"rejected, {self.current} stays in use"
        lines.append(f"  {verb}: {self.judged.get('reason', '')}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _x(lift: float | None) -> str:
    return "undefined (no wins held out)" if lift is None else f"{lift:.2f}x"


def train_leads(ws: Any, cfg: LeadsConfig, *, trigger: str | None = None) -> TrainReport:
    """Train on closed deals, measure on the holdout, register; promote it when it beats the
    version in use by ``cfg.improve.margin`` AUC on the same held-out deals.

    Args:
        trigger: why this training ran (recorded with the version), e.g. improve's reason.

    Example:
        >>> report = train_leads(ws, ws.config.leads)
        >>> print(report.metrics["verdict"], report.judged["reason"])
    """
    from datawheel.apps.leads.evidence import win_rates
    from datawheel.improve.registry import Registry

    data = dataset(ws, cfg)
    closed, y = data.closed, data.labels
    x, _ = data.schema.matrix(closed)
    train, holdout, how = split(closed, y, cfg, cfg.holdout_share)
    order = time_order(closed, cfg)
    model = fit(x.iloc[train], y[train], cfg, order[train] if how.startswith("time") else None)
    p = model.predict_proba(x.iloc[holdout])
    result = metrics(y[holdout], p, base_rate=float(y[train].mean()), seed=cfg.seed)

    registry = Registry(ws.store, kind="leads")
    current = registry.current() or None
    ordered_by = cfg.time_column or "file order"
    judged, current_metrics = _judge(
        ws,
        registry,
        current,
        closed,
        y,
        (holdout, p, result),
        order,
        ordered_by,
        cfg,
        data.notes,
        data.left_out,
    )
    promoted = bool(judged["promote"])
    version = registry.next_id()
    folder = Path("models") / version
    model.save(
        ws.path / folder,
        data.schema,
        {
            "version": version,
            "verdict": result["verdict"],
            "signal": result["signal"],
            "trained_rows": len(train),
        },
    )
    registry.record(
        version,
        status="candidate" if promoted else "rejected",
        parent=current,
        settings={
            "features": data.schema.features,
            "split": how,
            "params": model.params,
            "trained_until": float(order[train].max()),
            "ordered_by": ordered_by,
            "trigger": trigger,
        },
        metrics={k: v for k, v in result.items() if k != "calibration"}
        | {"judged_rows": judged["rows"], "champion_auc": judged["champion"]},
        artifacts=str(folder),
        note=f"{judged['reason']}; {result['verdict']}",
    )
    if promoted:
        registry.promote(version)
    evidence = {
        col: win_rates(closed, y, col, cfg.min_group_size)
        for col in cfg.action_columns
        if col in closed.columns
    }
    return TrainReport(
        version,
        promoted,
        how,
        {"train": len(train), "holdout": len(holdout), "open": len(data.open)},
        data.schema.features,
        result,
        current,
        current_metrics,
        evidence,
        data.notes,
        judged,
    )


def _judge(
    ws: Any,
    registry: Any,
    current: str | None,
    closed: pd.DataFrame,
    y: np.ndarray,
    held: tuple[np.ndarray, np.ndarray, dict[str, Any]],
    order: np.ndarray,
    ordered_by: str,
    cfg: LeadsConfig,
    notes: list[str],
    left_out: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Challenger vs the version in use on the same held-out deals; whether to promote.

    ``held`` is the holdout's positions, the challenger's probabilities and its metrics.
    A version in use that reads a column now left out (listed in leads.exclude, or found to
    give the outcome away) is no fair champion: its AUC comes from the leak, so the
    challenger replaces it.
    """
    holdout, p, result = held
    margin = cfg.improve.margin
    judged: dict[str, Any] = {
        "metric": "auc",
        "rows": len(holdout),
        "challenger": result["auc"],
        "champion": None,
        "margin": margin,
    }
    if current is None:
        return judged | {"promote": True, "reason": "no model in use: the first is promoted"}, None
    row = registry.get(current)
    try:
        old, schema, _ = LeadModel.load(ws.path / row["artifacts"])
        missing_columns(closed, schema.features)
    except Exception as exc:  # noqa: BLE001 - a version in use that cannot run loses
        notes.append(f"could not score {current} on this holdout: {exc}")
        return judged | {"promote": True, "reason": f"{current} could not be run"}, None
    leaky = [c for c in schema.features if c in left_out]
    if leaky:
        reason = (
            f"{current} reads {', '.join(leaky)}, now left out (leads.exclude, or it gives the "
            "outcome away): its AUC is no fair bar, so this version replaces it"
        )
        return judged | {"promote": True, "reason": reason}, None

    keep = _unseen(holdout, y, order, row["settings"], ordered_by, current, notes)
    rows, chal_p = holdout[keep], p[keep]
    old_m = metrics(y[rows], old.predict_proba(schema.matrix(closed.iloc[rows])[0]), seed=cfg.seed)
    new_auc = _auc(y[rows], chal_p)
    old_auc = old_m["auc"]
    judged |= {"rows": len(rows), "challenger": new_auc, "champion": old_auc}
    where = f"the same {len(rows):,} held-out deals"
    if new_auc is None or old_auc is None:
        reason = f"AUC is undefined on {where} (all won or all lost); {current} stays in use"
        return judged | {"promote": False, "reason": reason}, old_m
    gain = new_auc - old_auc
    promote = gain > 0 and gain >= margin
    wins = f"margin {margin:.3f})" if promote else f"needs +{margin:.3f})"
    reason = f"AUC {new_auc:.3f} vs {current} {old_auc:.3f} on {where} ({gain:+.3f}; {wins}"
    return judged | {"promote": promote, "reason": reason}, old_m


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def _unseen(
    holdout: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    settings: dict[str, Any],
    ordered_by: str,
    current: str,
    notes: list[str],
) -> np.ndarray:
    """A mask over the holdout: the deals the version in use cannot have trained on.

    That is every deal later than its ``trained_until``. When too few of those are left
    (a version trained with a stratified split saw deals from the whole period), the whole
    holdout is used and the note says the version in use is flattered by it.
    """
    everything = np.ones(len(holdout), dtype=bool)
    until = settings.get("trained_until")
    if until is None or settings.get("ordered_by") != ordered_by:
        return everything
    later = order[holdout] > until
    if later.all():
        return everything
    won = int(y[holdout][later].sum())
    if won >= MIN_JUDGED and int(later.sum()) - won >= MIN_JUDGED:
        notes.append(
            f"judged on the {int(later.sum()):,} held-out deals later than {current}'s training "
            f"data; {int((~later).sum()):,} others it may have trained on are left out"
        )
        return later
    notes.append(
        f"{current} trained on deals from the whole holdout period, so its AUC here is "
        "flattering; the challenger had to beat that"
    )
    return everything


def backtest_leads(ws: Any, cfg: LeadsConfig) -> dict[str, Any]:
    """Walk forward in time: train on everything before each fold, score the fold.

    With no ``time_column`` the file order stands for time (said in the result).
    """
    data = dataset(ws, cfg)
    closed, y = data.closed, data.labels
    x, _ = data.schema.matrix(closed)
    order = time_order(closed, cfg)
    pos = np.argsort(order, kind="stable")
    chunks = np.array_split(pos, cfg.backtest_folds + 1)
    folds, ys, ps = [], [], []
    for k in range(1, len(chunks)):
        train, test = np.concatenate(chunks[:k]), chunks[k]
        if len(set(y[train])) < 2 or len(test) == 0:
            continue
        model = fit(x.iloc[train], y[train], cfg, order[train])
        p = model.predict_proba(x.iloc[test])
        m = metrics(y[test], p, base_rate=float(y[train].mean()), seed=cfg.seed)
        m.pop("calibration")
        folds.append({"fold": k, "train": int(len(train)), **m})
        ys.append(y[test])
        ps.append(p)
    if not folds:
        raise ConfigError("no backtest fold had both won and lost deals to train on")
    pooled = metrics(np.concatenate(ys), np.concatenate(ps), seed=cfg.seed)
    return {
        "ordered_by": cfg.time_column or "file order (no leads.time_column set)",
        "mean_auc": float(np.mean([f["auc"] for f in folds if f["auc"] is not None])),
        "mean_brier": float(np.mean([f["brier"] for f in folds])),
        "folds": folds,
        "pooled": pooled,
        "notes": data.notes,
    }
