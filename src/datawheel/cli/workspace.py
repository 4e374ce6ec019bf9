"""``datawheel init`` and ``datawheel status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, handled, opened, out, print_json


def register(app: typer.Typer) -> None:
    app.command("init", cls=Command)(init)
    app.command("status", cls=Command)(status)


def init(
    path: Annotated[Path, typer.Argument(help="Folder for the new workspace.")],
) -> None:
    """Create a workspace: a commented datawheel.yaml and the embedded store.

    Example: datawheel init kb/
    """
    from datawheel.workspace import Workspace

    with handled():
        ws = Workspace.init(path)
        ws.close()
    out.print(
        f"workspace ready at {ws.path}\n  settings: {ws.path / 'datawheel.yaml'}\n"
        f"  next: datawheel ingest {path} ~/docs/"
    )


def status(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Show what a workspace holds and its latest runs.

    Example: datawheel status -w kb/
    """
    with opened(workspace) as ws:
        info = ws.status()
    if json_:
        print_json(info)
        return
    out.print(f"[bold]{info['workspace']}[/]  ({info['store']})")
    for name, n in info["counts"].items():
        out.print(f"  {name:<18} {n:>10,}")
    out.print(f"  {'model version':<18} {info['version'] or 'baseline':>10}")
    out.print(f"  {'embedder':<18} {info['embedder']}", highlight=False)
    cpu = info["cpu"]
    out.print(
        f"  {'cpu features':<18} {' '.join(cpu['features']) or '(none of the vector extensions)'}"
    )
    if "llama_cpp" in cpu:
        out.print(f"  {'llama.cpp':<18} {cpu['llama_cpp']}", highlight=False)
    table = Table("run", "kind", "status", "started", "seconds", title="latest runs")
    for r in info["runs"]:
        dur = f"{r['duration_s']:.1f}" if r["duration_s"] is not None else ""
        table.add_row(str(r["id"]), r["kind"], r["status"], str(r["started_at"])[:19], dur)
    out.print(table)
