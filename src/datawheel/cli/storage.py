"""``datawheel storage sync``: copy what is missing to object storage (storage.url)."""

from __future__ import annotations

import typer

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json

storage_app = typer.Typer(
    rich_markup_mode=None,
    help="Object storage (storage.url in datawheel.yaml): originals and model versions.\n\n"
    "Example: datawheel storage sync -w kb/",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(storage_app, name="storage")
    storage_app.command("sync", cls=Command)(sync)


def sync(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Check the bucket, then copy every original and model version not copied yet.

    Example: datawheel storage sync -w kb/
    """
    with opened(workspace) as ws:
        result = ws.sync_storage()
    if json_:
        print_json(result)
        return
    for item in result["originals"]:
        out.print(f"[yellow]not copied[/] {item['path']}: {item['reason']}", highlight=False)
    for warning in result["models"]:
        out.print(f"[yellow]not copied[/] {warning}", highlight=False)
    if result["originals"] or result["models"]:
        raise typer.Exit(1)
    out.print("storage is up to date: every original and model version is copied")
