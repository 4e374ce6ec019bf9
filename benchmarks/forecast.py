"""Demand forecasting on the store-item-demand data: 500 series (10 stores x 50 items), 5 years.

Two measurements, both through the public functions a workspace uses:

- speed: ``train_forecast`` + ``run_forecast`` (7 days, every series logged) end to end, from
  reading the CSV to the logged forecasts, with 2 threads;
- accuracy: ``backtest_forecast`` over the last 8 weekly origins with a 7-day horizon. The
  model is trained once on the data before the first origin; seasonal-naive (same weekday last
  week) and statsforecast AutoETS (refit per origin on the last 365 days) are scored on the
  same days.

Targets: WAPE at least 25% below seasonal-naive, no worse than AutoETS; train + forecast of
all 500 series within 60 s on 2 cores.

Usage: python benchmarks/forecast.py [--weeks 8] [--no-autoets] [--json]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from _common import SHARED, emit

TRAIN = SHARED / "store_item_demand" / "train.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--no-autoets", action="store_true", help="Skip the AutoETS baseline.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from datawheel.apps.forecast import (
        ForecastConfig,
        backtest_forecast,
        run_forecast,
        train_forecast,
    )
    from datawheel.workspace import Workspace

    cfg = ForecastConfig(source=str(TRAIN), threads=2)
    with (
        tempfile.TemporaryDirectory(prefix="dw-forecast-bench-") as tmp,
        Workspace.init(Path(tmp) / "kb") as ws,
    ):
        started = time.perf_counter()
        report = train_forecast(ws, cfg)
        trained = time.perf_counter()
        result = run_forecast(ws, cfg, 7)
        seconds = time.perf_counter() - started
        print(
            f"train {trained - started:.1f}s + forecast {seconds - (trained - started):.1f}s"
            f" = {seconds:.1f}s for {report.series} series ({len(result.rows)} forecasts "
            f"logged, {len(result.fallback)} fallbacks)"
        )
        bt = backtest_forecast(ws, cfg, args.weeks, autoets=not args.no_autoets)
    model, naive = bt["model"], bt["seasonal_naive"]
    ets = bt.get("autoets") or {}
    print(
        f"backtest {bt['weeks']} origins {bt['origins'][0]}..{bt['origins'][-1]}, "
        f"h={bt['horizon']}, trained until {bt['trained_until']} "
        f"(fit {bt['fit_seconds']}s, predict {bt['predict_seconds']}s)"
    )
    for name, m in (("model", model), ("seasonal-naive", naive), ("AutoETS", ets)):
        if m:
            print(
                f"  {name:<15} WAPE {m['wape']:.4f}  sMAPE {m['smape']:.4f}  "
                f"bias {m['bias']:+.4f}"
                + (f"  coverage {m['coverage']:.3f}" if m.get("coverage") is not None else "")
            )
    print(
        f"  improvement vs seasonal-naive {1 - model['wape'] / naive['wape']:.1%}"
        + (f"; AutoETS took {bt['autoets_seconds']}s" if ets else "")
    )
    emit(
        {
            "series": bt["series"],
            "wape": round(model["wape"], 4),
            "wape_seasonal_naive": round(naive["wape"], 4),
            "wape_autoets": round(ets["wape"], 4) if ets else None,
            "seconds": round(seconds, 2),
            "smape": round(model["smape"], 4),
            "bias": round(model["bias"], 4),
            "coverage_80": model.get("coverage_80"),
            "coverage_95": model.get("coverage_95"),
            "backtest_fit_seconds": bt["fit_seconds"],
            "autoets_seconds": bt.get("autoets_seconds"),
        },
        args.json,
    )


if __name__ == "__main__":
    main()
