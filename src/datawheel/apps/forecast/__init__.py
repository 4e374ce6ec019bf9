"""Demand forecasting: a global LightGBM model over every series, baselines, replenishment.

The heavy parts (pandas, mlforecast, statsforecast) load on first use, so importing this
package (``datawheel.config`` does, for :class:`ForecastConfig`) stays cheap.

Example::

    from datawheel.apps.forecast import backtest_forecast, train_forecast

    report = train_forecast(ws, ws.config.forecast)
    print(backtest_forecast(ws, ws.config.forecast, weeks=8)["model"]["wape"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datawheel.apps.forecast.config import ForecastConfig, KnownFuture

if TYPE_CHECKING:
    from datawheel.apps.forecast.run import (
        ForecastResult,
        ImportReport,
        TrainReport,
        backtest_forecast,
        import_sales,
        run_forecast,
        train_forecast,
    )

__all__ = [
    "ForecastConfig",
    "ForecastResult",
    "ImportReport",
    "KnownFuture",
    "TrainReport",
    "backtest_forecast",
    "import_sales",
    "run_forecast",
    "train_forecast",
]

_LAZY = {
    "ForecastResult",
    "ImportReport",
    "TrainReport",
    "backtest_forecast",
    "import_sales",
    "run_forecast",
    "train_forecast",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from datawheel.apps.forecast import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
