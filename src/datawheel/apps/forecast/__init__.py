"""Demand forecasting: a global LightGBM model over every series, baselines, replenishment.

The heavy parts (pandas, mlforecast, statsforecast) load on first use, so importing this
package (``datawheel.config`` does, for :class:`ForecastConfig`) stays cheap.

Example::

    from datawheel.apps.forecast import backtest_forecast, train_forecast

    report = train_forecast(ws, ws.config.forecast)
    print(backtest_forecast(ws, ws.config.forecast, weeks=8)["model"]["wape"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datawheel.apps.forecast.config import ForecastConfig, KnownFuture
from datawheel.lazy import lazy_attributes

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

__getattr__ = lazy_attributes(
    __name__,
    {
        name: "run"
        for name in (
            "ForecastResult",
            "ImportReport",
            "TrainReport",
            "backtest_forecast",
            "import_sales",
            "run_forecast",
            "train_forecast",
        )
    },
)
