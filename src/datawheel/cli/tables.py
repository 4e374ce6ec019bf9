"""``datawheel clean`` and ``datawheel quarantine``."""

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
    console,
    opened,
    out,
    print_json,
    short_path,
)
from datawheel.errors import DatawheelError

sources_app = typer.Typer(
    rich_markup_mode=None,
    help="Table sources: files or databases to clean and profile.\n\n"
    "Example: datawheel sources add crm sales_pipeline.csv && datawheel clean crm",
    no_args_is_help=True,
)
quarantine_app = typer.Typer(
    rich_markup_mode=None,
    help="Rows held back by cleaning, and re-admitting fixed ones.\n\n"
    "Example: datawheel quarantine list crm && datawheel quarantine readmit crm --fixed fixed.csv",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")
    sources_app.command("add", cls=Command)(sources_add)
    sources_app.command("list", cls=Command)(sources_list)
    app.command("clean", cls=Command)(clean)
    app.add_typer(quarantine_app, name="quarantine")
    quarantine_app.command("list", cls=Command)(quarantine_list)
    quarantine_app.command("readmit", cls=Command)(quarantine_readmit)


def sources_add(
    name: Annotated[str, typer.Argument(help="Name for the source (letters, digits, _.-).")],
    location: Annotated[str, typer.Argument(help="A file, or a SQLAlchemy URL.")],
    table: Annotated[str | None, typer.Option("--table", help="With a URL: the table.")] = None,
    query: Annotated[str | None, typer.Option("--query", help="With a URL: a SELECT.")] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Register a table source in datawheel.yaml; add cleaning steps and rules there.

    Example: datawheel sources add crm data/sales_pipeline.csv -w kb/
    """
    with opened(workspace) as ws:
        source = ws.add_source(name, location, table=table, query=query)
        try:  # registered either way; a source that cannot be read yet is said, not fatal
            peek, problem = ws.preview_source(name), None
        except DatawheelError as exc:
            peek, problem = None, str(exc)
    if json_:
        shown = {"columns": peek.columns, "rows": peek.rows, "hint": peek.hint} if peek else None
        print_json({**source.model_dump(mode="json"), "preview": shown, "problem": problem})
        return
    out.print(
        f"added source {name!r}; declare its cleaning steps and rules under "
        f"sources.{name}.clean in {ws.path / 'datawheel.yaml'}",
        highlight=False,
    )
    if problem:
        console.print(f"[yellow]warning:[/] cannot read it yet: {escape(problem)}")
        return
    assert peek is not None
    shown = peek.columns[:8]  # a wide table would not fit; all are in --json
    more = len(peek.columns) - len(shown)
    title = f"first {len(peek.rows)} rows, as text" + (f"; {more} more columns" if more else "")
    table_ = Table(*shown, title=title)
    for row in peek.rows:
        table_.add_row(*(escape(v) if v is not None else "" for v in row[: len(shown)]))
    out.print(table_)
    if peek.hint:
        console.print(f"[yellow]warning:[/] {escape(peek.hint)}")


def sources_list(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """List the table sources declared in datawheel.yaml.

    Example: datawheel sources list -w kb/
    """
    with opened(workspace) as ws:
        sources = {
            n: s.model_dump(mode="json", exclude_defaults=True)
            for n, s in ws.config.sources.items()
        }
        latest = {v["source"]: v for v in ws.table_versions()}  # ordered by run: last wins
    if json_:
        print_json({n: {**src, "latest_run": latest.get(n)} for n, src in sources.items()})
        return
    table = Table("name", "where", "rules", "latest run", "clean rows", "quarantined")
    for name, src in sources.items():
        where = src.get("path") or f"{src.get('url')} {src.get('table') or src.get('query')}"
        where = short_path(str(where), max(20, out.width // 3))
        run = latest.get(name)
        table.add_row(
            name,
            str(where),
            str(len(src.get("clean", {}).get("rules", []))),
            f"{run['run']} ({run['kind']})" if run else "never",
            f"{run['rows_clean']:,}" if run else "",
            f"{run['rows_quarantined']:,}" if run else "",
        )
    out.print(table)


def clean(
    name: Annotated[str, typer.Argument(help="A source under sources: in datawheel.yaml.")],
    memory: Annotated[str, typer.Option("--memory", help="DuckDB memory cap.")] = "2GB",
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="duckdb (this machine) or spark (pip install 'datawheel[spark]'): "
            "same steps, same results.",
        ),
    ] = "duckdb",
    spark_master: SparkMasterOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Clean a table source: its steps and business rules, rejected rows quarantined.

    Example: datawheel clean crm -w kb/

    On Spark: datawheel clean crm --engine spark --spark-master local[2]
    """
    with opened(workspace) as ws:
        report = ws.clean(name, memory_limit=memory, engine=engine, spark_master=spark_master)
    if json_:
        print_json(report.model_dump(mode="json"))
    else:
        out.print(escape(report.render()), highlight=False)
    if report.rows_in and not report.rows_clean:  # nothing for the apps to read
        raise typer.Exit(1)


def quarantine_list(
    name: Annotated[str, typer.Argument(help="The source.")],
    rule: Annotated[str | None, typer.Option("--rule", help="Only rows failing this rule.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = 50,
    summary: Annotated[
        bool, typer.Option("--summary", help="Rows per failed check instead of the rows.")
    ] = False,
    csv_: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write every quarantined row (or those failing --rule) to this CSV, with "
            "_row and _reasons: fix the values, then quarantine readmit --fixed it.",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List quarantined rows with every reason they failed.

    Example: datawheel quarantine list crm --rule "close_date >= engage_date"

    Fix and readmit: datawheel quarantine list crm --csv fix.csv, edit fix.csv, then
    datawheel quarantine readmit crm --fixed fix.csv
    """
    with opened(workspace) as ws:
        if summary:
            checks = ws.quarantine_summary(name)
            if json_:
                print_json({"source": name, "checks": checks})
                return
            table = Table("check", "rows", "example reason")
            for c in checks:
                table.add_row(escape(c["check"]), f"{c['rows']:,}", escape(c["example"][:120]))
            out.print(table)
            return
        if csv_ is not None:
            count = ws.export_quarantine(name, csv_, rule=rule)
            if json_:
                print_json({"source": name, "rows": count, "csv": str(csv_)})
            else:
                out.print(f"wrote {count:,} quarantined rows to {csv_}")
            return
        rows = ws.quarantined(name, rule=rule, limit=limit)
    if json_:
        print_json({"source": name, "rows": rows})
        return
    table = Table("row", "reasons", "original")
    for r in rows:
        # the row as it came in: its columns, or the raw text of a line that did not parse
        original = r.get("_raw_line") or ", ".join(
            f"{k}={v}" for k, v in r.items() if not k.startswith("_")
        )
        table.add_row(
            str(r.get("_row") or f"line {r.get('_line')}"),
            "; ".join(map(str, r.get("_reasons") or [])),
            original[:200],
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
        out.print(escape(report.render()), highlight=False)
