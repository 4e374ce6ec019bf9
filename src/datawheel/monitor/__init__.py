"""Monitor: daily checks on table sources and the knowledge base, stored, with alerts.

profile (snapshot.py) → compare with history (checks.py, history.py) → store → alert
(alerts.py: log, webhook, email). ``run_monitor`` (run.py) runs the whole thing.

The checks (DuckDB, SQLAlchemy) load on first use, so importing this package
(``datawheel.config`` does, for :class:`MonitorConfig`) stays cheap.

Example::

    report = run_monitor(ws, ws.config.monitor)
    report.exit_code   # 0 ok, 1 warnings, 2 alerts
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datawheel.lazy import lazy_attributes
from datawheel.monitor.settings import EmailConfig, MonitorConfig, SourceMonitorConfig

if TYPE_CHECKING:
    from datawheel.monitor.alerts import NotifyError
    from datawheel.monitor.checks import Finding, psi
    from datawheel.monitor.history import History
    from datawheel.monitor.run import MonitorReport, run_monitor

__all__ = [
    "EmailConfig",
    "Finding",
    "History",
    "MonitorConfig",
    "MonitorReport",
    "NotifyError",
    "SourceMonitorConfig",
    "psi",
    "run_monitor",
]

_LAZY = {
    "NotifyError": "alerts",
    "Finding": "checks",
    "psi": "checks",
    "History": "history",
    "MonitorReport": "run",
    "run_monitor": "run",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
