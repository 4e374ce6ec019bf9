"""The Workspace verbs of the predictive apps: lead scoring and demand forecasting.

A mixin of :class:`datawheel.workspace.Workspace`; each verb records its run and hands the
work to :mod:`datawheel.apps.leads` or :mod:`datawheel.apps.forecast`.

Example:
    >>> ws = Workspace.open("kb")
    >>> ws.leads_train().promoted
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datawheel.errors import ConfigError
from datawheel.workspace_part import WorkspacePart


class PredictionsMixin(WorkspacePart):
    """Lead scoring and demand forecasting (``datawheel leads ...``, ``datawheel forecast``)."""

    # -- lead scoring ---------------------------------------------------------------------

    def leads_train(self) -> Any:
        """Train the lead model on closed deals; promote it when it beats the current one."""
        from datawheel.apps.leads import train_leads

        self._fetch_current("leads")
        run_id = self.store.start_run("leads_train", {})
        try:
            report = train_leads(self, self.config.leads)
        except BaseException:
            self.store.finish_run(run_id, "failed", {})
            raise
        self.store.finish_run(
            run_id, "finished", {"version": report.version, "promoted": report.promoted}
        )
        self._push_models()
        return report

    def leads_score(self, path: str | Path | None = None) -> Any:
        """Score leads in a file or source (default: the open deals); every score is logged."""
        from datawheel.apps.leads import score_leads

        self._fetch_current("leads")
        return score_leads(self, self.config.leads, path)

    def leads_outcomes(self, path: str | Path) -> Any:
        """Import won/lost outcomes, match them to scores, and measure each model version."""
        from datawheel.apps.leads import import_lead_outcomes

        return import_lead_outcomes(self, self.config.leads, path)

    def leads_backtest(self) -> dict[str, Any]:
        """Walk-forward evaluation in time order (no future data in training)."""
        from datawheel.apps.leads import backtest_leads

        return backtest_leads(self, self.config.leads)

    def simulate_outcomes(self, app: str, step: str | None = None) -> Any:
        """Replay history step by step: train up to T, predict, import the outcomes, retrain.

        Replay versions and predictions go to leads-sim / forecast-sim, never to the versions
        in use.
        """
        if app not in ("leads", "forecast"):
            raise ConfigError(f"nothing to replay for {app!r}; choose one of: leads, forecast")
        step = step or ("month" if app == "leads" else "week")
        run_id = self.store.start_run("simulate_outcomes", {"app": app, "step": step})
        try:
            if app == "leads":
                from datawheel.apps.leads.replay import replay_leads

                report: Any = replay_leads(self, self.config.leads, step=step)
            else:
                from datawheel.apps.forecast.replay import replay_forecast

                report = replay_forecast(self, self.config.forecast, step=step)
        except BaseException:
            self.store.finish_run(run_id, "failed", {})
            raise
        self.store.finish_run(run_id, "finished", {"steps": len(report.rows)})
        self._push_models()
        return report

    # -- demand forecasting ---------------------------------------------------------------

    def forecast_train(self) -> Any:
        """Train the global forecasting model on the sales history and register it; it is put
        in use when it is the first, or beats the version in use on the latest days."""
        from datawheel.apps.forecast import train_forecast

        self._fetch_current("forecast")
        report = train_forecast(self._ws, self.config.forecast)
        self._push_models()
        return report

    def forecast_run(
        self,
        horizon: int | None = None,
        on_hand: str | Path | None = None,
        lead_time: int | None = None,
        service_level: float | None = None,
    ) -> Any:
        """Forecast every series with intervals, and order quantities when stock is given."""
        from datawheel.apps.forecast import run_forecast

        self._fetch_current("forecast")
        return run_forecast(
            self._ws,
            self.config.forecast,
            horizon,
            on_hand=Path(on_hand) if on_hand else None,
            lead_time=lead_time,
            service_level=service_level,
        )

    def forecast_backtest(self, weeks: int = 8) -> dict[str, Any]:
        """Rolling-origin backtest of the model against seasonal-naive and AutoETS."""
        from datawheel.apps.forecast import backtest_forecast

        return backtest_forecast(self._ws, self.config.forecast, weeks)

    def forecast_actuals(self, path: str | Path) -> Any:
        """Import actual sales and match them to the forecasts they settle."""
        from datawheel.apps.forecast import import_sales

        return import_sales(self._ws, self.config.forecast, path)
