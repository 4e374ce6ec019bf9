"""``datawheel clean`` and ``datawheel quarantine``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json

quarantine_app = typer.Typer(
    help="Rows held back by cleaning, and re-admitting fixed ones.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("clean", cls=Command)(clean)
    app.add_typer(quarantine_app, name="quarantine")
    quarantine_app.command("list", cls=Command)(quarantine_list)
    quarantine_app.command("readmit", cls=Command)(quarantine_readmit)


def clean(
    name: Annotated[str, typer.Argument(help="A source under sources: in datawheel.yaml.")],
    memory: Annotated[str, typer.Option("--memory", help="DuckDB memory cap.")] = "2GB",
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Clean a table source: its steps and business rules, rejected rows quarantined.

    Example: datawheel clean crm -w kb/
    """
    with opened(workspace) as ws:
        report = ws.clean(name, memory_limit=memory)
    if json_:
        print_json(report.model_dump(mode="json"))
    else:
        out.print(report.render(), highlight=False)


def quarantine_list(
    name: Annotated[str, typer.Argument(help="The source.")],
    rule: Annotated[str | None, typer.Option("--rule", help="Only rows failing this rule.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = 50,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List quarantined rows with every reason they failed.

    Example: datawheel quarantine list crm --rule "close_date >= engage_date"
    """
    with opened(workspace) as ws:
        rows = ws.quarantined(name, rule=rule, limit=limit)
    if json_:
        print_json({"source": name, "rows": rows})
        return
    table = Table("row", "reasons", "original")
    for r in rows:
        table.add_row(
            str(r.get("_row")),
            "; ".join(map(str, r.get("_reasons") or [])),
            str(r.get("_original"))[:120],
        )
    out.print(table)


def quarantine_readmit(
    name: Annotated[str, typer.Argument(help="The source.")],
    fixed: Annotated[Path, typer.Option("--fixed", help="CSV of fixed rows with their _row.")],
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Re-validate fixed rows; those that pass join the clean table in a new run.

    Example: datawheel quarantine readmit crm --fixed fixed.csv
    """
    with opened(workspace) as ws:
        report = ws.readmit(name, fixed)
    if json_:
        print_json(report.model_dump(mode="json"))
    else:
        out.print(report.render(), highlight=False)
