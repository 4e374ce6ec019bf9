"""Follow-up evidence: win rates with Wilson intervals, and outcomes that settle scores.

Win rates by agent, product or sector are plain counts, not model output: they stay honest
when the model has no signal. Imported outcomes are matched to the latest score of the same
lead; outcomes for leads never scored are kept aside (no prediction id) and reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datawheel.apps.leads.config import LeadsConfig
from datawheel.errors import ConfigError

APP = "leads"


def wilson(won: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a win rate ``won / n``."""
    if n == 0:
        return 0.0, 1.0
    p = won / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rates(
    closed: pd.DataFrame, y: np.ndarray, column: str, min_group_size: int = 30
) -> list[dict[str, Any]]:
    """Win rate per value of ``column`` with its 95% Wilson interval, best first."""
    groups = pd.DataFrame({"value": closed[column].astype("string").fillna("(missing)"), "y": y})
    rows = []
    for value, part in groups.groupby("value", sort=False):
        n, won = len(part), int(part["y"].sum())
        lo, hi = wilson(won, n)
        rows.append(
            {
                "value": str(value),
                "won": won,
                "n": n,
                "rate": won / n,
                "ci": [lo, hi],
                "thin": n < min_group_size,
            }
        )
    return sorted(rows, key=lambda r: -r["rate"])


@dataclass
class OutcomeReport:
    imported: int
    matched: int
    unmatched: list[str]  # lead ids never scored: kept with no prediction id
    by_version: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [f"imported {self.imported:,} outcomes; {self.matched:,} matched a score"]
        if self.unmatched:
            shown = ", ".join(self.unmatched[:5]) + (" …" if len(self.unmatched) > 5 else "")
            lines.append(f"  {len(self.unmatched):,} for leads never scored, kept aside: {shown}")
        for version, m in self.by_version.items():
            lines.append(f"  {version}: {m['n']:,} settled; {m['verdict']}")
        return "\n".join(lines)


def import_lead_outcomes(ws: Any, cfg: LeadsConfig, path: str | Path) -> OutcomeReport:
    """Import won/lost outcomes (a file with the id and target columns, and a date if any).

    Example:
        >>> import_lead_outcomes(ws, ws.config.leads, "closed-this-week.csv").matched
    """
    from datawheel.apps.leads.model import labels, read_table, source_of
    from datawheel.feedback.outcomes import Outcome

    frame = read_table(source_of(ws, path))
    need = [c for c in (cfg.id_column, cfg.target) if c not in frame.columns]
    if need:
        raise ConfigError(
            f"{path} is missing column(s) {', '.join(need)}; an outcome file needs the lead id "
            f"({cfg.id_column}) and how it ended ({cfg.target}); columns here: "
            f"{', '.join(frame.columns)}"
        )
    y = labels(frame, cfg)
    if y.isna().any():
        open_rows = int(y.isna().sum())
        raise ConfigError(
            f"{open_rows:,} rows of {path} are not closed (empty or open {cfg.target}); an "
            f"outcome is one of {', '.join(cfg.positive + cfg.negative)}"
        )
    date = next((c for c in ("close_date", "date", cfg.time_column) if c and c in frame), None)
    outcomes = [
        Outcome(
            APP,
            str(frame.at[i, cfg.id_column]),
            int(y[i]),
            None if date is None or pd.isna(frame.at[i, date]) else str(frame.at[i, date]),
        )
        for i in frame.index
    ]
    report = ws.predictions.import_outcomes(APP, outcomes)
    return OutcomeReport(report.imported, report.matched, report.unmatched, version_metrics(ws))


def version_metrics(ws: Any) -> dict[str, dict[str, Any]]:
    """AUC, Brier, calibration and top-20% lift of every model version on settled scores."""
    from datawheel.apps.leads.model import metrics

    by: dict[str, tuple[list[int], list[float]]] = {}
    for prediction, value in ws.predictions.settled(APP):
        ys, ps = by.setdefault(prediction.version or "none", ([], []))
        ys.append(int(value))
        ps.append(float(prediction.output["probability"]))
    return {v: metrics(np.array(ys), np.array(ps)) for v, (ys, ps) in by.items()}
