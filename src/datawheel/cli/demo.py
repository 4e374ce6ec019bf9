"""``datawheel demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, console, handled, out, print_json, progress_bar


def register(app: typer.Typer) -> None:
    app.command("demo", cls=Command)(demo)


def demo(
    path: Annotated[Path, typer.Option("--dir", help="Workspace for the demo.")] = Path("demo-kb"),
    json_: JsonOpt = False,
) -> None:
    """Run the whole job on a bundled sample company knowledge base, offline.

    Example: datawheel demo --dir demo-kb
    """
    from datawheel.demo import run_demo

    with handled(), progress_bar(not json_) as progress:
        result = run_demo(
            path,
            progress=progress,
            on_step=lambda s: None if json_ else console.print(f"[bold]>[/] {s}"),
        )
    if json_:
        print_json(
            {
                "ingest": result.ingest.to_dict(),
                "searches": [
                    {"query": q, "results": [h.to_dict() for h in hits]}
                    for q, hits in result.searches
                ],
                "evaluation": result.evaluation,
            }
        )
        return
    r = result.ingest
    out.print(
        f"ingested: {r.seen} seen, {r.added} added, {r.updated} updated, "
        f"{r.unchanged} unchanged, {r.removed} removed, {len(r.failed)} failed "
        f"({r.chunks_added} chunks) in {r.seconds:.1f}s"
    )
    for query, hits in result.searches:
        out.print(f"\n[bold]search:[/] {query}")
        for h in hits:
            out.print(
                f"  {h.rank}. [{h.score:.3f}] [bold]{h.title}[/]"
                f"{' > ' + h.heading if h.heading else ''}\n     {h.snippet(160)}",
                highlight=False,
            )
    table = Table(
        "mode",
        "questions",
        "nDCG@10",
        "recall@100",
        "MRR@10",
        title="retrieval quality on the sample questions",
    )
    for e in result.evaluation:
        table.add_row(
            e["mode"],
            str(e["queries"]),
            f"{e['ndcg@10']:.3f}",
            f"{e['recall@100']:.3f}",
            f"{e['mrr@10']:.3f}",
        )
    out.print(table)
    out.print(f"\nworkspace: {result.workspace}  (try: datawheel search 'gift cards' -w {path})")
