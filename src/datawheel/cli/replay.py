"""``datawheel simulate-outcomes``: replay history step by step and watch accuracy change."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json


def register(app: typer.Typer) -> None:
    app.command("simulate-outcomes", cls=Command)(simulate_outcomes)


def simulate_outcomes(
    app_name: Annotated[
        str, typer.Argument(metavar="APP", help="What to replay: leads or forecast.")
    ],
    step: Annotated[
        str | None,
        typer.Option("--step", help="month or week (default: month for leads, week for forecast)."),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Replay history: train up to T, predict, import the outcomes, retrain; per step.

    Replay versions and predictions are kept apart (leads-sim, forecast-sim), so the
    versions in use and their metrics are untouched.

    Example: datawheel simulate-outcomes leads --step month -w kb/
    """
    with opened(workspace) as ws:
        report = ws.simulate_outcomes(app_name, step)
    if json_:
        print_json(report.to_dict())
        return
    data = report.to_dict()
    out.print(_leads_table(data) if data["app"] == "leads" else _forecast_table(data))
    if data["rows"]:
        first, last = data["rows"][0]["version"], data["rows"][-1]["version"]
        out.print(f"replay versions {first} … {last} (not in use)", highlight=False)
    out.print(report.verdict, highlight=False)
    for note in data.get("notes", []):
        out.print(f"note: {note}", highlight=False)


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def _leads_table(data: dict[str, Any]) -> Table:
    table = Table(
        data["step"],
        "trained on",
        "scored",
        "settled",
        "win rate",
        "AUC",
        "95% CI",
        "Brier",
        title="lead replay: accuracy as outcomes accumulate",
    )
    for r in data["rows"]:
        ci = r["auc_ci"]
        table.add_row(
            r["at"],
            f"{r['train_rows']:,}",
            f"{r['scored']:,}",
            f"{r['settled']:,}",
            _num(r["base_rate"], ".1%"),
            _num(r["auc"], ".3f"),
            "" if ci is None else f"{ci[0]:.2f}–{ci[1]:.2f}",
            _num(r["brier"], ".3f"),
        )
    return table


def _forecast_table(data: dict[str, Any]) -> Table:
    table = Table(
        data["step"],
        "trained on",
        "series",
        "WAPE",
        "seasonal-naive WAPE",
        title="forecast replay: accuracy as actuals accumulate",
    )
    for r in data["rows"]:
        table.add_row(
            r["at"],
            f"{r['train_rows']:,}",
            f"{r.get('series', 0):,}",
            _num(r.get("wape"), ".3f"),
            _num(r.get("naive_wape"), ".3f"),
        )
    return table
