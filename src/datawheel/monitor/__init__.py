"""Monitor: daily checks on table sources and the knowledge base, stored, with alerts.

profile (snapshot.py) → compare with history (checks.py, history.py) → store → alert
(alerts.py: log, webhook, email). ``run_monitor`` (run.py) runs the whole thing.

Example::

    report = run_monitor(ws, ws.config.monitor)
    report.exit_code   # 0 ok, 1 warnings, 2 alerts
"""

from datawheel.monitor.alerts import NotifyError
from datawheel.monitor.checks import Finding, psi
from datawheel.monitor.history import History
from datawheel.monitor.run import MonitorReport, run_monitor
from datawheel.monitor.settings import EmailConfig, MonitorConfig, SourceMonitorConfig

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
