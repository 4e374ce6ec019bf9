"""Improve for the predictive apps: retrain when outcomes pile up or accuracy decays.

``datawheel improve --app leads|forecast`` first decides whether to retrain, from the policy
in ``leads.improve`` / ``forecast.improve``:

* **new outcomes**: at least ``min_new_outcomes`` won/lost outcomes (leads) or
  ``min_new_actuals`` actual sales (forecast) imported since the app's latest version was
  trained;
* **accuracy decay**: the live AUC (leads) or WAPE (forecast) of the version in use, on its
  predictions that outcomes settled (at least ``min_settled``), is worse than the figure
  measured on its holdout at training by more than ``max_auc_drop`` (AUC points) or
  ``max_wape_rise`` (a share of the WAPE). It fires only when outcomes arrived since the
  latest training: retraining on the same data would learn nothing new;
* no version in use yet (the first is trained), or ``--force``.

A retrain trains a challenger with the app's own training (time-ordered holdout), which
judges it against the version in use on the same latest data and promotes it only when it
wins by the policy's ``margin``; otherwise it is kept as ``rejected`` with the reason. Every
version stays in the registry (kinds ``leads`` and ``forecast``) for ``datawheel rollback
--app``.

Example:
    >>> report = improve_app(ws, "leads")
    >>> print(report.render())
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.errors import ConfigError
from datawheel.improve.registry import Registry

if TYPE_CHECKING:
    from datawheel.apps.forecast.config import ForecastImproveConfig
    from datawheel.apps.leads.config import LeadsImproveConfig
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)
APPS = ("leads", "forecast")


@dataclass
class Decision:
    """Whether improve retrains, which triggers fired, and every check with its numbers."""

    retrain: bool
    triggers: list[str]  # new_outcomes, accuracy_decay, no_version, forced
    reasons: list[str]
    current: str | None  # the version in use
    latest: str | None  # the newest version; new outcomes are counted from its training
    new_outcomes: int
    live: dict[str, Any] | None = None  # metric, value, trained, n of the version in use


@dataclass
class AppImproveReport:
    app: str
    decision: Decision
    version: str | None = None  # the challenger trained, if any
    promoted: bool = False
    current: str | None = None  # the version in use afterwards
    judged: dict[str, Any] = field(default_factory=dict)  # champion vs challenger, and why
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        d = self.decision
        head = "retrain" if d.retrain else "nothing retrained"
        lines = [f"{self.app}: {head}"] + [f"  {r}" for r in d.reasons]
        if self.version is None:
            lines.append(f"{self.current or 'no version'} stays in use")
        elif self.promoted:
            lines.append(f"promoted {self.version}: {self.judged.get('reason', '')}")
        else:
            lines.append(f"rejected {self.version}: {self.judged.get('reason', '')}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def improve_app(ws: Workspace, app: str, *, force: bool = False) -> AppImproveReport:
    """Decide whether to retrain ``app``; if so, train a challenger and promote it only if
    it beats the version in use on a time-ordered holdout.

    Example:
        >>> improve_app(ws, "forecast", force=True).promoted
    """
    decision = decide(ws, app, force=force)
    if not decision.retrain:
        return AppImproveReport(app, decision, current=decision.current)
    trigger = "; ".join(decision.reasons)
    notes: list[str] = []
    report: Any
    if app == "leads":
        from datawheel.apps.leads import train_leads

        cfg = ws.config.leads
        if not cfg.time_column:
            notes.append("no leads.time_column: the file order stands for time in the holdout")
        # improve always judges on the latest deals, whatever holdout `leads train` uses
        report = train_leads(ws, cfg.model_copy(update={"holdout": "time"}), trigger=trigger)
    else:
        from datawheel.apps.forecast import train_forecast

        report = train_forecast(ws, ws.config.forecast, trigger=trigger)
    current = Registry(ws.store, kind=app).current()
    log.info("improve %s: %s %s", app, report.version, "promoted" if report.promoted else "kept")
    return AppImproveReport(
        app, decision, report.version, report.promoted, current, report.judged, notes + report.notes
    )


def decide(ws: Workspace, app: str, *, force: bool = False) -> Decision:
    """Whether ``app`` should be retrained now, and why (or why not), with the numbers."""
    if app not in APPS:
        raise ConfigError(
            f"no predictive app {app!r}; choose one of: {', '.join(APPS)} "
            "(datawheel improve without --app improves the knowledge base)"
        )
    registry = Registry(ws.store, kind=app)
    current = registry.current()
    versions = registry.versions()
    latest = versions[-1] if versions else None
    since = datetime.fromisoformat(latest["created_at"]) if latest else None
    new = ws.predictions.count_outcomes(app, since)
    triggers = ["forced"] if force else []
    reasons = ["forced (--force)"] if force else []
    if current is None:
        triggers.append("no_version")
        reasons.append(f"no {app} model in use yet: training the first")
        return Decision(True, triggers, reasons, None, latest["id"] if latest else None, new)

    policy: LeadsImproveConfig | ForecastImproveConfig
    if app == "leads":
        policy = ws.config.leads.improve
        unit, needed = "outcomes", policy.min_new_outcomes
    else:
        policy = ws.config.forecast.improve
        unit, needed = "actuals", policy.min_new_actuals
    assert latest is not None  # there is a version in use
    name = latest["id"] if latest["id"] == current else f"{latest['id']} ({latest['status']})"
    if new >= needed:
        triggers.append("new_outcomes")
        reasons.append(f"{new:,} {unit} imported since {name} was trained (threshold {needed:,})")
    else:
        reasons.append(f"{new:,} {unit} imported since {name} was trained; {needed:,} needed")

    live = _live(ws, app, registry.get(current))
    if live is None:
        reasons.append(f"no {unit} settled a prediction of {current} yet: no live accuracy")
    elif live["n"] < policy.min_settled:
        reasons.append(
            f"live {live['metric'].upper()} of {current} is {_num(live['value'])} on "
            f"{live['n']:,} settled predictions: too few to judge ({policy.min_settled:,} needed)"
        )
    else:
        decayed, text = _decay(live, current, ws, app)
        if decayed and new == 0:
            reasons.append(
                f"{text}, but no {unit} were imported since {name} was trained: a retrain "
                f"would learn nothing new (import {unit}, or pass --force)"
            )
        elif decayed:
            triggers.append("accuracy_decay")
            reasons.append(text)
        else:
            reasons.append(text)
    return Decision(bool(triggers), triggers, reasons, current, latest["id"], new, live)


def _live(ws: Workspace, app: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """The version's live accuracy on its settled predictions, and the figure at training."""
    version = row["id"]
    if app == "leads":
        from datawheel.apps.leads.model import metrics

        pairs = [
            (int(value), float(p.output["probability"]))
            for p, value in ws.predictions.settled(app)
            if p.version == version
        ]
        if not pairs:
            return None
        y, prob = (np.array(c) for c in zip(*pairs, strict=True))
        m = metrics(y, prob)
        return {
            "metric": "auc",
            "value": m["auc"],
            "ci": m["auc_ci"],
            "trained": row["metrics"].get("auc"),
            "n": m["n"],
        }
    from datawheel.apps.forecast.run import settled_accuracy

    acc = settled_accuracy(ws, ws.config.forecast).get(version)
    if acc is None:
        return None
    trained = row["metrics"].get("wape", row["metrics"].get("calibration_wape"))
    return {"metric": "wape", "value": acc["wape"], "trained": trained, "n": acc["n"]}


def _decay(live: dict[str, Any], current: str, ws: Workspace, app: str) -> tuple[bool, str]:
    """Whether the live figure is worse than at training by more than the policy allows."""
    value, trained = live["value"], live["trained"]
    head = f"live {live['metric'].upper()} of {current} {_num(value)} on {live['n']:,} settled"
    if value is None or trained is None:
        return False, f"{head}: undefined (all one outcome, or no sales), not judged"
    if app == "leads":
        allowed = ws.config.leads.improve.max_auc_drop
        drop = trained - value
        text = f"{head} scores vs {trained:.3f} at training ({-drop:+.3f}; allowed drop {allowed})"
        return drop > allowed, text
    allowed = ws.config.forecast.improve.max_wape_rise
    rise = value / trained - 1 if trained else 0.0
    text = f"{head} forecasts vs {trained:.3f} at training ({rise:+.0%}; allowed {allowed:+.0%})"
    return rise > allowed, text


def _num(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
