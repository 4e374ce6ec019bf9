"""``datawheel demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
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
                "answers": [a.to_dict() for a in result.answers],
                "before": result.before,
                "votes": result.votes,
                "report": result.report.to_dict(),
                "improve": result.improve.to_dict(),
                "after": result.after,
                "seen_before": result.seen_before,
                "seen_after": result.seen_after,
                "asked_again": [a.to_dict() for a in result.asked_again],
            }
        )
        return
    r = result.ingest
    out.print(
        f"ingested: {r.seen} seen, {r.added} added, {r.updated} updated, "
        f"{r.unchanged} unchanged, {r.removed} removed, {len(r.failed)} failed "
        f"({r.chunks_added} chunks) in {r.seconds:.1f}s"
    )
    for answer in result.answers:
        out.print(f"\n[bold]ask:[/] {escape(answer.question)}")
        out.print(f"  {escape(answer.text)}", highlight=False)
        for s in answer.sources[:3]:
            mark = "" if s.cited else "[dim]"
            out.print(f"  {mark}[{s.n}] {escape(s.title)}  [dim]{escape(s.uri)}[/]")
        out.print(f"  [dim]confidence {answer.confidence:.0%}, {answer.latency_ms:.0f} ms[/]")
    w = result.report.weeks[-1]
    out.print(
        f"\nfeedback: {result.votes['up']} 👍 and {result.votes['down']} 👎 on "
        f"{w.questions} logged answers; satisfaction {w.satisfaction:.0%}"
    )
    imp = result.improve
    out.print(
        f"improve: {imp.examples} answers with feedback ({imp.train} to train, "
        f"{imp.holdout} held out); promoted: {imp.promoted or 'nothing'}"
    )
    out.print(f"  [dim]{escape(imp.candidates[-1]['note'])}[/]")
    table = Table(
        "",
        "nDCG@10",
        "MRR@10",
        "answered right",
        "declined",
        "p95 ms",
        title=f"{result.before['questions']} held-out questions and the week's "
        f"{result.seen_before['questions']}, before and after improve",
    )
    rows = (
        ("held out, before", result.before, False),
        ("after", result.after, True),
        ("the week, before", result.seen_before, False),
        ("after", result.seen_after, False),
    )
    for name, e, last in rows:
        table.add_row(
            name,
            f"{e['ndcg@10']:.3f}",
            f"{e['mrr@10']:.3f}",
            f"{e['answered_right']:.0%}",
            f"{e['answerable_declined']:.0%}",
            f"{e['latency_p95_ms']:.0f}",
            end_section=last,
        )
    out.print(table)
    for answer in result.asked_again:
        source = "a curated answer" if answer.answered_from == "memory" else "the generator"
        out.print(
            f"\n[bold]asked again after a colleague's correction:[/] {escape(answer.question)}"
        )
        out.print(f"  [dim](answered from {source})[/] {escape(answer.text)}", highlight=False)
    out.print(
        f"\nworkspace: {result.workspace}\ntry: {_program()} ask 'gift card expiration' -w {path}"
    )


def _program() -> str:
    """How to call datawheel from here: its name when the shell finds this one by it (an
    activated virtualenv), else its path (after ``make demo``, ``.venv/bin/datawheel``)."""
    import os
    import shutil
    import sys

    me = Path(sys.argv[0]).resolve()
    found = shutil.which("datawheel")
    if found and Path(found).resolve() == me or me.name != "datawheel":
        return "datawheel"
    return os.path.relpath(me) if me.is_relative_to(Path.cwd()) else str(me)
