"""``datawheel ingest``."""

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
    progress_bar,
)
from datawheel.config import CONFIG_FILE


def register(app: typer.Typer) -> None:
    app.command("ingest", cls=Command)(ingest)


def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files, folders, zips or corpus.jsonl; the first may be the workspace folder "
            "(the older form: datawheel ingest kb/ docs/).",
            show_default=False,
            metavar="PATH",
        ),
    ],
    workspace: WorkspaceOpt = None,
    sync: Annotated[
        bool, typer.Option("--sync", help="Remove documents whose files are gone.")
    ] = False,
    groups: Annotated[
        str | None, typer.Option("--groups", help="Comma-separated groups that may read these.")
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local (embed here) or spark (each batch of new chunks embedded as a Spark "
            "job; pip install 'datawheel[spark]').",
        ),
    ] = "local",
    spark_master: SparkMasterOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Ingest documents: txt, md, html, pdf, docx, BEIR corpus.jsonl, and Notion,
    Confluence or Slack exports (folders or zips). Unchanged files are skipped.

    Example: datawheel ingest -w kb/ ~/docs/ ~/exports/notion.zip --groups sales

    (datawheel ingest kb/ ~/docs/ works too: a first argument that is a workspace names it.)

    A large corpus, embedded on Spark: datawheel ingest kb/ corpus/ --engine spark
    --spark-master spark://head:7077
    """
    group_list = [g.strip() for g in groups.split(",") if g.strip()] if groups else None
    workspace, paths = _workspace_and_paths(workspace, paths)
    with opened(workspace) as ws, progress_bar(not json_) as progress:
        report = ws.ingest(
            paths,
            sync=sync,
            groups=group_list,
            progress=progress,
            engine=engine,
            spark_master=spark_master,
        )
    if json_:
        print_json(report.to_dict())
    else:
        table = Table("seen", "added", "updated", "unchanged", "removed", "failed", "chunks added")
        table.add_row(
            *(
                f"{n:,}"
                for n in (
                    report.seen,
                    report.added,
                    report.updated,
                    report.unchanged,
                    report.removed,
                    len(report.failed),
                    report.chunks_added,
                )
            )
        )
        out.print(table)
        for uri, reason in report.failed:
            console.print(f"[yellow]failed[/] {escape(uri)}: {escape(reason)}", highlight=False)
        if report.skipped:
            kinds = ", ".join(f"{k} ({n:,})" for k, n in sorted(report.skipped.items()))
            tables = {".csv", ".tsv", ".parquet", ".xlsx", ".xls"} & set(report.skipped)
            hint = "; tables go in with: datawheel sources add NAME FILE" if tables else ""
            total = sum(report.skipped.values())
            files = f"{total:,} file" + ("s" if total != 1 else "")
            note = f"not documents, passed over: {files}: {kinds}{hint}"
            out.print(note, highlight=False)
        if report.gone:
            many = report.gone != 1
            out.print(
                f"{report.gone:,} file{'s are' if many else ' is'} gone since the last ingest "
                f"and still searchable; re-run with --sync to remove {'them' if many else 'it'}",
                highlight=False,
            )
        out.print(f"done in {report.seconds:.1f}s")
    if report.failed:
        raise typer.Exit(3 if (report.added + report.updated + report.unchanged) else 1)


def _workspace_and_paths(
    workspace: Path | None, args: list[Path]
) -> tuple[Path | None, list[Path]]:
    """``-w``/``$DATAWHEEL_WORKSPACE``/the current folder name the workspace, or (the older
    positional form) a first argument that is a workspace folder, followed by paths."""
    if workspace is None and len(args) > 1 and (args[0] / CONFIG_FILE).is_file():
        return args[0], args[1:]
    if workspace is None and len(args) == 1 and (args[0] / CONFIG_FILE).is_file():
        raise typer.BadParameter(
            f"{args[0]} is a workspace; say what to ingest into it, e.g. "
            f"datawheel ingest -w {args[0]} ~/docs/",
            param_hint="PATHS",
        )
    return workspace, args
