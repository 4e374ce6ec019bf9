"""Lead scoring: calibrated close probabilities, reasons, next actions, honest metrics.

Example:
    >>> from datawheel.apps.leads import score_leads, train_leads
    >>> print(train_leads(ws, ws.config.leads).render())
    >>> result = score_leads(ws, ws.config.leads)  # the open deals of leads.source
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Only the settings load with the package: config.py reads them, and a bare install (no
# pandas) must still start. Training and scoring load on first use.
from datawheel.apps.leads.config import JoinConfig, LeadsConfig, LeadsImproveConfig
from datawheel.lazy import lazy_attributes

if TYPE_CHECKING:
    from datawheel.apps.leads.evidence import (
        OutcomeReport,
        import_lead_outcomes,
        wilson,
        win_rates,
    )
    from datawheel.apps.leads.score import ScoreResult, score_leads
    from datawheel.apps.leads.train import TrainReport, backtest_leads, train_leads

__all__ = [
    "JoinConfig",
    "LeadsConfig",
    "LeadsImproveConfig",
    "OutcomeReport",
    "ScoreResult",
    "TrainReport",
    "backtest_leads",
    "import_lead_outcomes",
    "score_leads",
    "train_leads",
    "wilson",
    "win_rates",
]

_LAZY = {
    "OutcomeReport": "evidence",
    "import_lead_outcomes": "evidence",
    "wilson": "evidence",
    "win_rates": "evidence",
    "ScoreResult": "score",
    "score_leads": "score",
    "TrainReport": "train",
    "backtest_leads": "train",
    "train_leads": "train",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
