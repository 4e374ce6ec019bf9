"""Lead scoring: calibrated close probabilities, reasons, next actions, honest metrics.

Example:
    >>> from datawheel.apps.leads import score_leads, train_leads
    >>> print(train_leads(ws, ws.config.leads).render())
    >>> result = score_leads(ws, ws.config.leads)  # the open deals of leads.source
"""

from datawheel.apps.leads.config import JoinConfig, LeadsConfig, LeadsImproveConfig
from datawheel.apps.leads.evidence import OutcomeReport, import_lead_outcomes, wilson, win_rates
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
