"""``datawheel roi``: annual value from measured usage, against the investment."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Column, Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json


def register(app: typer.Typer) -> None:
    app.command("roi", cls=Command)(roi)


def roi(
    days: Annotated[
        int, typer.Option("--days", min=1, help="Usage window; its counts are annualised.")
    ] = 30,
    extrapolate: Annotated[
        bool,
        typer.Option(
            "--extrapolate",
            help="Annualise usage seen on fewer than 7 days too (one batch is no year).",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """ROI and payback: value of answers, lead scores and forecasts, measured from usage.

    Each line shows what was measured in the store and the assumptions (roi: in
    datawheel.yaml) that turn it into money.

    Example: datawheel roi --days 30 -w kb/
    """
    with opened(workspace) as ws:
        report = ws.roi(days=days, extrapolate=extrapolate)
    data = report.to_dict()
    if json_:
        print_json(data)
        return
    cur = data["currency"]
    table = Table(
        "line",
        Column(f"{cur}/year", justify="right"),
        Column("measured", overflow="fold"),
        Column("assumptions", overflow="fold"),
        title=f"value over the last {days} days, annualised",
    )
    for item in data["items"]:
        table.add_row(
            item["name"],
            f"{item['annual_value']:,.0f}",
            _pairs(item["measured"]),
            _pairs(item["assumptions"]),
        )
    out.print(table)
    for item in data["items"]:
        if item["formula"]:
            out.print(f"{item['name']}: {item['formula']}", highlight=False)
        if item["reason"]:
            out.print(f"{item['name']}: {item['reason']}", highlight=False)
    inv = data["investment"]
    out.print(
        f"investment: people {inv['people']:,.0f} + infrastructure {inv['infrastructure']:,.0f}"
        f" + LLM {inv['llm']:,.0f} = {inv['total']:,.0f} {cur}/year",
        highlight=False,
    )
    out.print(f"annual value: {data['annual_value']:,.0f} {cur}", highlight=False)
    out.print(f"ROI: {data['formulas']['roi']}", highlight=False)
    out.print(f"payback: {data['formulas']['payback_months']}", highlight=False)
    out.print(_adoption(data["adoption"]), highlight=False)
    if data["defaults"]:
        out.print(
            f"still at their defaults: {', '.join(data['defaults'])}; set your own under "
            "roi: in datawheel.yaml",
            highlight=False,
        )


def _pairs(values: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {_value(v)}" for key, v in values.items() if v is not None)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _adoption(a: dict[str, Any]) -> str:
    if a["dau"] is None:
        return "adoption: nobody asked a question in the window"
    line = (
        f"adoption: {a['dau']:.1f} daily active users over {a['days_with_traffic']} days with "
        f"traffic ({a['users']:,} distinct; {a['last_day_users']} on {a['last_day']})"
    )
    if a["adoption"] is not None:
        line += f"; {a['adoption']:.0%} of {a['registered_users']:,} registered users"
    return line
