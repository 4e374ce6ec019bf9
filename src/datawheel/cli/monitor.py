"""``datawheel monitor``: the daily data checks, with an exit code cron and CI can use."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json

_STYLES = {"ok": "green", "warning": "yellow", "alert": "bold red"}


def register(app: typer.Typer) -> None:
    app.command("monitor", cls=Command)(monitor)


def monitor(
    source: Annotated[
        str | None, typer.Option("--source", help="Check only this table source.")
    ] = None,
    rebaseline: Annotated[
        bool,
        typer.Option(
            "--rebaseline",
            help="Accept the data as it is now: compare nothing for drift and null rates "
            "this run, and make it the reference for later runs (after a known change).",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Check table sources (volume, drift, freshness, schema, null rates) and the documents;
    store the results and send alerts. Exit code: 0 ok, 1 warnings, 2 alerts.

    Example: datawheel monitor -w kb/   (daily from cron: 0 6 * * * datawheel monitor -w kb/)
    After a known change: datawheel monitor --source sales --rebaseline -w kb/
    """
    with opened(workspace) as ws:
        report = ws.monitor(source=source, rebaseline=rebaseline)
    if json_:
        print_json(report.to_dict())
    else:
        table = Table("source", "check", "level", "message")
        for f in report.findings:
            style = _STYLES[f.level]
            table.add_row(escape(f.source), f.check, f"[{style}]{f.level}[/]", escape(f.message))
        out.print(table)
        counts = ", ".join(
            f"{sum(f.level == level for f in report.findings)} {level}"
            for level in ("alert", "warning", "ok")
        )
        out.print(
            f"[{_STYLES[report.level]}]{report.level}[/]: {counts} ({report.seconds:.2f}s), "
            f"stored as run {report.run_id}",
            highlight=False,
        )
    raise typer.Exit(report.exit_code)
