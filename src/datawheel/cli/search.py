"""``datawheel search``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json, short_path
from datawheel.config import MODES
from datawheel.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("search", cls=Command)(search)


def parse_filters(items: list[str] | None) -> dict[str, str]:
    filters = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--filter {item!r} must look like key=value, e.g. topic=billing")
        filters[key.strip()] = value.strip()
    return filters


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many chunks to return.")] = 10,
    mode: Annotated[
        str | None, typer.Option("--mode", help=f"One of {', '.join(MODES)} (default: config).")
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="key=value metadata filter; repeat to AND them."),
    ] = None,
    groups: Annotated[
        str | None, typer.Option("--groups", help="Search as a caller in these groups.")
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Search the workspace: ranked chunks with score, title, source and snippet.

    Example: datawheel search "refund policy for enterprise customers" --k 5 --mode hybrid
    """
    with opened(workspace) as ws:
        group_list = [g.strip() for g in groups.split(",")] if groups else None
        hits = ws.search(query, k=k, mode=mode, filters=parse_filters(filter_), groups=group_list)
        empty = not hits and ws.store.counts().get("documents", 0) == 0
        hidden = 0 if hits else ws.hidden_matches(query, group_list, parse_filters(filter_))
    if json_:
        print_json(
            {
                "query": query,
                "mode": mode or ws.config.search.mode,
                "results": [h.to_dict() for h in hits],
                "hidden": hidden,
            }
        )
        return
    if not hits:
        hint = f": the workspace holds no documents yet; datawheel ingest -w {ws.path} DOCS/"
        if hidden:
            many = hidden > 1
            hint = (
                f": {hidden} passage{'s' if many else ''} match{'' if many else 'es'} but "
                f"{'are' if many else 'is'} shared only with groups other than "
                f"{', '.join(group_list or [])} and everyone; an admin can share "
                f"{'them' if many else 'it'} (datawheel ingest --groups) or add the caller to "
                "a group (datawheel users set NAME --groups ...)"
            )
        out.print("no results" + (hint if empty or hidden else ""), highlight=False)
        return
    table = Table(show_lines=True)
    table.add_column("#", no_wrap=True)
    table.add_column("score", no_wrap=True)
    table.add_column("title / source", overflow="fold")  # a long file name wraps, never cut
    table.add_column("snippet")
    for h in hits:
        uri = short_path(h.uri, max(20, out.width // 3))
        where = f"[bold]{h.title}[/]\n[dim]{uri}[/]" + (f"\n{h.heading}" if h.heading else "")
        table.add_row(str(h.rank), f"{h.score:.3f}", where, h.snippet())
    out.print(table)
