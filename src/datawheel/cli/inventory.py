"""``datawheel inventory``: profile and classify every source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datawheel.cli.common import (
    Command,
    JsonOpt,
    SparkMasterOpt,
    WorkspaceOpt,
    handled,
    opened,
    out,
    print_json,
)
from datawheel.errors import ConfigError

_STYLE = {"high": "bold green", "low": "dim"}


def register(app: typer.Typer) -> None:
    app.command("inventory", cls=Command)(inventory)


def inventory(
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write a self-contained HTML report (no internet needed) to this file.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="duckdb (this machine) or spark (pip install 'datawheel[spark]'): "
            "same figures; Spark reads CSV, TSV and Parquet sources.",
        ),
    ] = "duckdb",
    spark_master: SparkMasterOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Profile every table source and the knowledge base, and say what each is worth.

    Rows, columns, types, null rates, distinct counts, min/max, size and last update; then
    the category (business-process, customer-interaction, expert-knowledge, public-web), value
    density, flywheel effect, priority and the AI application it suits, with the reasons.
    The rules are data: the inventory: section of datawheel.yaml.

    Example: datawheel inventory -w kb/ --html inventory.html

    On Spark: datawheel inventory --engine spark --spark-master local[2]
    """
    with opened(workspace) as ws:
        result = ws.inventory(engine=engine, spark_master=spark_master)
    if html is not None:
        with handled():
            try:
                from datawheel.tables.inventory_html import render_html

                html.write_text(render_html(result), encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"cannot write the HTML report to {html} ({exc.strerror}); "
                    "pass --html with a file in an existing, writable folder"
                ) from None
    if json_:
        data = result.to_dict()
        data["html"] = str(html) if html is not None else None
        print_json(data)
        return
    # the terminal gets the deciding columns; --json and --html have all of them
    shown = ("source", "rows", "category", "value density", "flywheel", "priority")
    table = Table(*shown, "application", title="Data inventory", title_justify="left")
    from datawheel.tables.inventory_html import summary_row

    for entry in result.ranked():
        row = {k: escape(v) for k, v in summary_row(entry).items()}
        if entry.error:
            row["category"] = f"[red]unreadable: {escape(entry.error)}[/]"
        for key in ("value density", "flywheel", "priority"):
            if row[key] in _STYLE:
                row[key] = f"[{_STYLE[row[key]]}]{row[key]}[/]"
        application = row["application"].split(" (")[0]
        table.add_row(*(row[k] for k in shown), application)
    out.print(table)
    if html is not None:
        out.print(f"HTML report: {escape(str(html))}", highlight=False)
    out.print(
        "details per column and the reasons: --json or --html FILE", style="dim", highlight=False
    )
