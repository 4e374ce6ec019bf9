"""``datawheel forecast``: train, forecast with order quantities, backtest, import actual sales."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json

forecast_app = typer.Typer(
    rich_markup_mode=None,
    help="Demand forecasts per series with intervals, order quantities and backtests.\n\n"
    "Example: datawheel forecast train && datawheel forecast run --horizon 7 --on-hand stock.csv",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")
    forecast_app.command("train", cls=Command)(train)
    forecast_app.command("run", cls=Command)(run)
    forecast_app.command("backtest", cls=Command)(backtest)
    forecast_app.command("actuals", cls=Command)(actuals)


def _notes(notes: list[str]) -> None:
    for note in notes:
        out.print(f"[yellow]note:[/] {escape(note)}", highlight=False)


def train(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Train the global forecast model on forecast.source and register it. The first version
    is put in use; a later one only when it beats the one in use on the latest days.

    Example: datawheel forecast train -w kb/
    """
    with opened(workspace) as ws:
        report = ws.forecast_train()
    if json_:
        print_json(report.to_dict())
        return
    cal = report.calibration
    out.print(
        f"trained {report.version} on {report.series} series ({report.rows:,} rows) in "
        f"{report.seconds:.1f}s; calibration WAPE {cal['wape']:.3f} over the last "
        f"{cal['days']} days; inputs: {', '.join(report.features) or 'history only'}",
        highlight=False,
    )
    verb = "promoted" if report.promoted else f"rejected, {report.current} stays in use"
    out.print(f"{verb}: {escape(report.judged['reason'])}", highlight=False)
    _notes(report.notes)


def run(
    horizon: Annotated[
        int | None, typer.Option("--horizon", help="Days ahead (default: forecast.horizon, 7).")
    ] = None,
    on_hand: Annotated[
        Path | None,
        typer.Option("--on-hand", help="CSV of series columns + on_hand: adds order quantities."),
    ] = None,
    lead_time: Annotated[
        int | None, typer.Option("--lead-time", help="Days until an order lands (config default).")
    ] = None,
    service_level: Annotated[
        float | None,
        typer.Option("--service-level", help="Chance of not running out, e.g. 0.95."),
    ] = None,
    csv_out: Annotated[
        Path | None,
        typer.Option("--csv", help="Write the forecasts (or, with --on-hand, the orders) here."),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Forecast every series with intervals; log each forecast; plan orders from stock.

    Example: datawheel forecast run --horizon 7 --on-hand stock.csv --lead-time 3 --csv orders.csv
    """
    with opened(workspace) as ws:
        result = ws.forecast_run(
            horizon=horizon, on_hand=on_hand, lead_time=lead_time, service_level=service_level
        )
    if csv_out is not None:
        _write_csv(result, csv_out)
    if json_:
        print_json(result.to_dict())
        return
    if result.replenishment:
        table = Table("series", "lead time", "demand", "safety stock", "on hand", "order")
        for r in result.replenishment:
            table.add_row(
                escape(r["series"]),
                str(r["lead_time"]),
                f"{r['demand_lead_time']:.1f}",
                f"{r['safety_stock']:.1f}",
                f"{r['on_hand']:g}",
                f"[bold]{r['order_qty']}[/]",
            )
    else:
        bands = [k for k in result.rows[0] if k.startswith(("lo-", "hi-"))] if result.rows else []
        table = Table("series", "date", "forecast", *bands, "method")
        for r in result.rows[:50]:
            table.add_row(
                escape(r["series"]),
                r["date"],
                f"{r['forecast']:.1f}",
                *(f"{r[b]:.1f}" for b in bands),
                r["method"],
            )
    out.print(table)
    shown = "" if result.replenishment or len(result.rows) <= 50 else " (first 50 shown)"
    out.print(
        f"{len(result.rows)} forecasts by {result.version} logged{shown}"
        + (f"; written to {csv_out}" if csv_out else ""),
        highlight=False,
    )
    _notes(result.notes)


def _write_csv(result: Any, path: Path) -> None:
    import csv

    from datawheel.apps.forecast.replenish import write_csv

    if result.replenishment:
        write_csv(result.replenishment, path)
        return
    with path.open("w", encoding="utf-8", newline="") as fh:
        fields = list(result.rows[0]) if result.rows else ["series", "date", "forecast"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(result.rows)


def backtest(
    weeks: Annotated[int, typer.Option("--weeks", help="Weekly origins to test.", min=1)] = 8,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Rolling-origin backtest (time-ordered) of the model vs seasonal-naive, a 28-day mean
    and AutoETS.

    Example: datawheel forecast backtest --weeks 8 -w kb/
    """
    with opened(workspace) as ws:
        result = ws.forecast_backtest(weeks)
    if json_:
        print_json(result)
        return
    table = Table("method", "WAPE", "sMAPE", "bias", "coverage")
    for name in ("model", "seasonal_naive", "moving_average", "autoets"):
        m = result.get(name)
        if not m:
            continue
        cov = m.get("coverage")
        table.add_row(
            name,
            f"{m['wape']:.3f}",
            f"{m['smape']:.3f}",
            f"{m['bias']:+.3f}",
            f"{cov:.2f} ({m['interval']:g}%)" if cov is not None else "",
        )
    out.print(table)
    out.print(
        f"{result['series']} series, {result['weeks']} origins from {result['origins'][0]}, "
        f"model trained until {result['trained_until']}",
        highlight=False,
    )


def actuals(
    path: Annotated[
        Path, typer.Argument(help="CSV of actual sales: date, series columns, target.")
    ],
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Import actual sales, match them to logged forecasts and report accuracy per version.

    Example: datawheel forecast actuals sales_this_week.csv -w kb/
    """
    with opened(workspace) as ws:
        report = ws.forecast_actuals(path)
    if json_:
        print_json(report.to_dict())
        return
    out.print(
        f"imported {report.imported} actuals: {report.matched} matched a forecast, "
        f"{report.unmatched} did not; {len(report.bad_rows)} rows left out",
        highlight=False,
    )
    for b in report.bad_rows[:10]:
        out.print(f"[yellow]row {b['row']}:[/] {escape(b['reason'])}", highlight=False)
    table = Table("version", "n", "WAPE", "sMAPE", "bias", "coverage")
    for version, m in report.accuracy.items():
        cov = m.get("coverage")
        table.add_row(
            version,
            str(m["n"]),
            f"{m['wape']:.3f}" if m["wape"] is not None else "",
            f"{m['smape']:.3f}" if m["smape"] is not None else "",
            f"{m['bias']:+.3f}" if m["bias"] is not None else "",
            f"{cov:.2f}" if cov is not None else "",
        )
    out.print(table)
