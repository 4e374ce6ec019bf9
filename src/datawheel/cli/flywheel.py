"""``datawheel ask | feedback | report | improve | versions | rollback | export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datawheel.cli.common import (
    Command,
    JsonOpt,
    WorkspaceOpt,
    console,
    opened,
    out,
    print_json,
    progress_bar,
)
from datawheel.errors import ConfigError

UserOpt = Annotated[
    str, typer.Option("--user", "-u", help="Who is asking or voting.", envvar="DATAWHEEL_USER")
]


def register(app: typer.Typer) -> None:
    for name, fn in (
        ("ask", ask),
        ("feedback", feedback),
        ("report", report),
        ("improve", improve),
        ("versions", versions),
        ("rollback", rollback),
        ("export", export),
    ):
        app.command(name, cls=Command)(fn)


def ask(
    question: Annotated[str, typer.Argument(help="The question, in your own words.")],
    k: Annotated[
        int | None, typer.Option("--k", "-k", help="Sources to retrieve and show.")
    ] = None,
    groups: Annotated[
        str | None, typer.Option("--groups", help="Answer as a caller in these groups.")
    ] = None,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            "-c",
            help="A name for the conversation: a follow-up question is read with the "
            "earlier questions asked under the same name.",
        ),
    ] = None,
    user: UserOpt = "anonymous",
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Answer a question from the knowledge base, citing sources as [1], [2].

    Prints the answer, the numbered sources and an interaction id to vote on.

    Example: datawheel ask "What does the contract say about termination notice?"
    Follow-ups: datawheel ask -c returns "How long do I have to return a tent?" then
    datawheel ask -c returns "and for jackets?"
    """
    with opened(workspace) as ws:
        group_list = [g.strip() for g in groups.split(",")] if groups else None
        answer = ws.ask(question, user=user, groups=group_list, k=k, conversation=conversation)
    if json_:
        print_json(answer.to_dict())
        return
    for warning in answer.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if answer.memory_question:
        out.print(
            f"[dim]answered from a curated answer to a similar question: "
            f"{escape(answer.memory_question)}{escape(_curated_by(answer.curated_by))}[/]"
        )
    elif answer.helped_question:
        out.print(
            f"[dim]led by the sources marked helpful for a similar question: "
            f"{escape(answer.helped_question)}[/]"
        )
    if answer.asked_as:
        out.print(f"[dim]read as a follow-up: {escape(answer.asked_as)}[/]")
    out.print(escape(answer.text), highlight=False)
    out.print()
    if answer.sources:
        out.print(f"[bold]{'closest sources' if answer.declined else 'sources'}[/]")
    for s in answer.sources:
        mark = "" if s.cited else "[dim]"
        heading = f" > {escape(s.heading)}" if s.heading else ""
        out.print(f"  {mark}[{s.n}] {escape(s.title)}{heading}  [dim]{escape(s.uri)}[/]")
    out.print(
        f"\n[dim]interaction {answer.id[:12]}  confidence {answer.confidence:.0%}  "
        f"{answer.latency_ms:.0f} ms  version {answer.version or 'baseline'}[/]\n"
        f"[dim]vote: datawheel feedback {answer.id[:12]} up|down[/]"
    )


def feedback(
    interaction: Annotated[str, typer.Argument(help="The interaction id ask printed.")],
    vote: Annotated[str, typer.Argument(help="up or down.")],
    comment: Annotated[str | None, typer.Option("--comment", help="Free text.")] = None,
    correction: Annotated[
        str | None, typer.Option("--correction", help="The right answer, in your words.")
    ] = None,
    helpful: Annotated[
        list[str] | None,
        typer.Option("--helpful", help="A source that helped: chunk:ID (repeatable)."),
    ] = None,
    wrong_source: Annotated[
        bool, typer.Option("--wrong-source", help="The sources were wrong (retrieval failed).")
    ] = False,
    wrong_answer: Annotated[
        bool, typer.Option("--wrong-answer", help="The sources were right, the answer was not.")
    ] = False,
    not_in_sources: Annotated[
        bool,
        typer.Option(
            "--not-in-sources",
            help="The sources do not say this: it should have declined (teaches declining).",
        ),
    ] = False,
    user: UserOpt = "anonymous",
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Vote on an answer. One vote per user per answer; voting again replaces it.

    Example: datawheel feedback 7f3a9c01 down --comment "cites the old contract" --wrong-source
    """
    with opened(workspace) as ws:
        kinds = {
            "wrong_source": wrong_source,
            "wrong_answer": wrong_answer,
            "not_in_sources": not_in_sources,
        }
        chosen = [kind for kind, given in kinds.items() if given]
        if len(chosen) > 1:
            raise ConfigError(
                "pass at most one of --wrong-source, --wrong-answer and --not-in-sources"
            )
        failure = chosen[0] if chosen else None
        record = ws.feedback(
            interaction,
            vote,
            user=user,
            comment=comment,
            correction=correction,
            helpful=helpful or [],
            failure=failure,
        )
    if json_:
        print_json(record.__dict__)
        return
    out.print(f"recorded {record.vote} from {record.user} on {record.interaction_id[:12]}")


def report(
    week: Annotated[bool, typer.Option("--week", help="This week's report (the default).")] = True,
    weeks: Annotated[int, typer.Option("--weeks", help="Show this many weeks.")] = 1,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Weekly satisfaction, volume, answer rate, p95 latency and content gaps.

    Exit code 1 when satisfaction is below the configured threshold (for cron and CI).

    Example: datawheel report --week
    """
    with opened(workspace) as ws:
        result = ws.report(weeks=max(1, weeks))
    if json_:
        print_json(result.to_dict())
    else:
        table = Table("week", "questions", "answered", "👍", "👎", "satisfaction", "p95 ms")
        for w in result.weeks:
            table.add_row(
                w.week,
                str(w.questions),
                f"{w.answer_rate:.0%}" if w.answer_rate is not None else "-",
                str(w.up),
                str(w.down),
                f"{w.satisfaction:.0%}" if w.satisfaction is not None else "-",
                f"{w.p95_latency_ms:.0f}" if w.p95_latency_ms is not None else "-",
            )
        out.print(table)
        colour = "red" if result.below_threshold else "green"
        out.print(f"[{colour}]{escape(result.message)}[/]")
        if result.gaps:
            out.print("\n[bold]content gaps[/] (questions not served well, grouped)")
            for gap in result.gaps:
                out.print(
                    f"  {gap.size:>3} × {escape(gap.example or '')}  [dim]{', '.join(gap.terms)}[/]"
                )
        if result.improve:
            out.print(f"\nimprove ran: {escape(str(result.improve.get('candidates', [])[-1:]))}")
    if result.below_threshold:
        raise typer.Exit(1)


def improve(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Consider only these candidates: fusion, ranker, finetune, "
            "finetune+ranker, selector (repeatable).",
        ),
    ] = None,
    app_name: Annotated[
        str | None,
        typer.Option(
            "--app",
            help="Improve a predictive app instead: leads or forecast (retrain on new "
            "outcomes or decayed accuracy; see leads.improve / forecast.improve).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --app: retrain even if no trigger fired.")
    ] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Learn from feedback: build candidates, judge them on held-out feedback, promote a
    winner. The version in use changes only when a candidate wins.

    With --app leads|forecast: retrain when enough outcomes arrived or the live
    accuracy decayed (leads.improve / forecast.improve), judge the challenger and
    the version in use on the latest data, promote it only if it wins by the margin.

    Example: datawheel improve  |  datawheel improve --app leads --json
    """
    if app_name is not None:
        with opened(workspace) as ws:
            if only:
                raise ConfigError("--only picks knowledge-base candidates; drop it with --app")
            report = ws.improve_app(app_name, force=force)
        if json_:
            print_json(report.to_dict())
        else:
            out.print(escape(report.render()), highlight=False)
        return
    with opened(workspace) as ws, progress_bar(not json_) as progress:
        if force:
            raise ConfigError("--force applies to --app leads|forecast only")
        result = ws.improve(progress=progress, only=only or None)
    if json_:
        print_json(result.to_dict())
        return
    unjudged = result.examples - result.train - result.holdout
    out.print(
        f"{result.examples} answers with feedback: {result.train} to train, "
        f"{result.holdout} held out to judge"
        + (
            f", {unjudged} held out with no helpful source to judge by (👎 without a correct "
            "source shown)"
            if unjudged
            else ""
        )
    )
    table = Table("candidate", "held-out nDCG@10", "fusion weight")
    for c in result.candidates:
        if "holdout_ndcg@10" in c:
            table.add_row(
                c["name"] + (f" ({c['version'] or 'baseline'})" if "version" in c else ""),
                f"{c['holdout_ndcg@10']:.4f}",
                str(c.get("dense_weight", "")),
            )
    out.print(table)
    for c in result.candidates:  # what the answers learned: the selector, the memory
        if c.get("name") in ("selector", "answer memory") and c.get("note"):
            out.print(f"{c['name']}: {escape(c['note'])}")
    for note in result.skipped:
        out.print(f"[dim]{escape(note)}[/]")
    for warning in getattr(result, "warnings", []):
        out.print(f"[yellow]warning[/]: {escape(warning)}")
    note = escape(result.candidates[-1]["note"])
    if result.promoted:
        out.print(f"[green]promoted {result.promoted}[/]: {note}")
    elif result.challenger:
        out.print(
            f"[cyan]A/B test started[/]: {result.challenger} is the challenger ({note}); "
            "follow it with datawheel ab status"
        )
    else:
        out.print("[yellow]nothing promoted[/]; the version in use is unchanged")


AppOpt = Annotated[
    str, typer.Option("--app", help="Whose versions: rag (the knowledge base), leads, forecast.")
]
METRIC = {"rag": ("held-out nDCG@10", "holdout_ndcg@10"), "leads": ("AUC", "auc")}


def versions(
    app_name: AppOpt = "rag", workspace: WorkspaceOpt = None, json_: JsonOpt = False
) -> None:
    """List every model version with its metrics; * marks the one in use.

    Example: datawheel versions  |  datawheel versions --app leads
    """
    with opened(workspace) as ws:
        rows = ws.versions(app_name)
    if json_:
        print_json({"versions": rows})
        return
    if not rows:
        if app_name == "rag":
            out.print("no versions yet: the baseline is in use (run datawheel improve)")
        else:
            out.print(f"no {app_name} versions yet; train one with: datawheel {app_name} train")
        return
    label, key = METRIC.get(app_name, ("WAPE", "wape"))
    table = Table()
    for name in ("", "version", "status", "created", label):
        table.add_column(name, no_wrap=True)
    table.add_column("note", min_width=16)  # the note wraps; the columns before it never do
    for r in rows:
        table.add_row(
            "*" if r["current"] else "",
            r["id"],
            r["status"],
            r["created_at"][:16].replace("T", " "),
            _metric(r["metrics"].get(key)),
            escape(r["note"]),
        )
    out.print(table)


def _metric(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def rollback(
    to: Annotated[
        str | None, typer.Option("--to", help="Version to restore (default: the previous).")
    ] = None,
    app_name: AppOpt = "rag",
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Put an earlier version back in use (default: the one before the current).

    Example: datawheel rollback --to v2  |  datawheel rollback --app leads
    """
    with opened(workspace) as ws:
        restored = ws.rollback(to, app=app_name)
    if json_:
        print_json({"current": restored})
        return
    out.print(f"now in use: {restored or 'baseline (no learned parts)'}")


def export(
    path: Annotated[Path, typer.Argument(help="Where to write the JSONL file.")],
    fmt: Annotated[str, typer.Option("--format", help="openai (chat JSONL) or hf.")] = "openai",
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Export 👍 and corrected answers as a fine-tuning dataset (JSONL).

    Example: datawheel export pairs.jsonl --format openai
    """
    with opened(workspace) as ws:
        count = ws.export_feedback(path, fmt=fmt)
    if json_:
        print_json({"path": str(path), "format": fmt, "pairs": count})
        return
    out.print(f"wrote {count} question/answer pairs to {path} ({fmt} format)")


def _curated_by(who: dict[str, str | None] | None) -> str:
    if not who or not who.get("author"):
        return ""
    return f" (written by {who['author']}, approved by {who.get('approved_by') or 'nobody'})"
