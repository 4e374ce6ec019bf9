"""What every command shares: finding the workspace, output modes, errors, progress."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperCommand

try:  # typer >= 0.20 vendors click
    from typer._click.exceptions import NoSuchOption
except ImportError:  # pragma: no cover
    from click.exceptions import NoSuchOption  # type: ignore[assignment]

from datawheel.config import CONFIG_FILE
from datawheel.errors import DatawheelError, WorkspaceError

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

console = Console(stderr=True)
out = Console()

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: $DATAWHEEL_WORKSPACE, the current folder, or the "
        "only workspace inside it).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="With --engine spark: local[N], spark://host:7077, yarn, ... (default local[2]).",
    ),
]


class Command(TyperCommand):
    """A command whose unknown-option error lists the valid options."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[no-any-return]
        except NoSuchOption as exc:
            valid = sorted({o for p in self.get_params(ctx) for o in p.opts if o.startswith("--")})
            exc.message = f"{exc.message.rstrip('.')}. Valid options: {', '.join(valid)}"
            raise


def find_workspace(path: Path | None) -> Path:
    if path is not None:
        return path
    env = os.environ.get("DATAWHEEL_WORKSPACE")
    if env:
        return Path(env)
    cwd = Path.cwd()
    if (cwd / CONFIG_FILE).exists():
        return cwd
    found = [p for p in sorted(cwd.iterdir()) if p.is_dir() and (p / CONFIG_FILE).exists()]
    if len(found) == 1:
        return found[0]
    where = f" (found several: {', '.join(p.name for p in found)})" if found else ""
    raise WorkspaceError(
        f"no workspace given{where}; pass --workspace DIR, set DATAWHEEL_WORKSPACE, or create "
        "one with: datawheel init kb/"
    )


@contextmanager
def handled() -> Iterator[None]:
    """Turn DatawheelError into one clear message and its exit code."""
    try:
        yield
    except DatawheelError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: work committed so far is kept; re-run to finish")
        raise typer.Exit(130) from None


@contextmanager
def opened(path: Path | None) -> Iterator[Workspace]:
    from datawheel.workspace import Workspace  # not at import: --help stays quick

    with handled():
        ws = Workspace.open(find_workspace(path))
        try:
            yield ws
        finally:
            ws.close()


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled or not sys.stderr.isatty() and not os.environ.get("DATAWHEEL_PROGRESS"):
        yield None
        return
    bars = Progress(
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),  # from the rate so far: embedding a large file takes minutes
        console=console,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total or None)
        bars.update(tasks[stage], completed=done, total=total or None)

    with bars:
        yield update


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")


def short_path(path: str, width: int = 40) -> str:
    """``path`` cut from the left to about ``width`` characters, keeping whole trailing
    parts: ``…/tutorial/cors.md``. The file name is the useful end: it is never cut."""
    if len(path) <= width:
        return path
    parts = path.split("/")
    kept = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + 1 + len(kept) + 2 > width:
            break
        kept = f"{part}/{kept}"
    return "…/" + kept  # the file name stays whole, even when it alone is wider
