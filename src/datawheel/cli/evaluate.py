"""``datawheel evaluate``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from datawheel.cli.common import (
    Command,
    JsonOpt,
    WorkspaceOpt,
    find_workspace,
    handled,
    out,
    print_json,
    progress_bar,
)
from datawheel.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("evaluate", cls=Command)(evaluate)
    app.command("simulate", cls=Command)(simulate)


def scratch_workspace(beir: Path) -> Path:
    """A reusable workspace per dataset under the cache, so a re-run skips the ingest."""
    cache = Path(os.environ.get("DATAWHEEL_CACHE", Path.home() / ".cache" / "datawheel"))
    tag = hashlib.sha256(str(beir.resolve()).encode()).hexdigest()[:12]
    return cache / "eval" / f"{beir.resolve().name}-{tag}"


def evaluate(
    beir: Annotated[
        Path | None,
        typer.Option("--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/."),
    ] = None,
    questions: Annotated[
        Path | None,
        typer.Option(
            "--questions",
            help='JSON lines {"question", "answers": [texts], "relevant": [paths], '
            '"unanswerable": bool} scored against what the workspace holds.',
        ),
    ] = None,
    squad: Annotated[
        Path | None,
        typer.Option(
            "--squad",
            help="SQuAD 1.1/2.0 JSON: paragraphs ingested as documents, every question asked.",
        ),
    ] = None,
    max_chars: Annotated[
        int,
        typer.Option(
            "--max-chars", min=1, help="Longest answer (citations aside) that counts as right."
        ),
    ] = 300,
    split: Annotated[
        str, typer.Option("--split", help="Which qrels/<split>.tsv to score.")
    ] = "test",
    mode: Annotated[str | None, typer.Option("--mode", help="bm25, dense or hybrid.")] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Measure retrieval (nDCG@10, recall@100, MRR@10) and answers. Answers are judged by
    their text: right when not declined, at most --max-chars long (citations aside) and
    holding an acceptable answer. --beir and --squad load their corpus into a scratch
    workspace under ~/.cache/datawheel unless --workspace is given; --questions asks the
    workspace as it is.

    Example: datawheel evaluate --squad ../shared/datasets/squad2_sample/dev-v2.0-sample.json
    """
    from datawheel.workspace import Workspace

    with handled():
        given = [s for s in (beir, questions, squad) if s is not None]
        if len(given) != 1:
            raise ConfigError("pass exactly one of --beir DIR, --questions FILE or --squad FILE")
        source = given[0]
        if questions is not None:
            ws = Workspace.open(find_workspace(workspace))
        else:
            ws = Workspace.init(workspace or scratch_workspace(source))
        try:
            with progress_bar(not json_) as progress:
                result = ws.evaluate(
                    source,
                    split=split,
                    mode=mode,
                    squad=squad is not None,
                    max_chars=max_chars,
                    progress=progress,
                )
        finally:
            ws.close()
    if json_:
        print_json(result)
        return
    table = Table("dataset", "split", "mode", "queries", "nDCG@10", "recall@100", "MRR@10")
    table.add_row(
        result["dataset"],
        result.get("split", "squad" if squad else "questions"),
        result["mode"],
        str(result["queries"]),
        f"{result['ndcg@10']:.4f}",
        f"{result['recall@100']:.4f}",
        f"{result['mrr@10']:.4f}",
    )
    out.print(table)
    if "answered_right" in result:
        print_answer_metrics(result)


def print_answer_metrics(result: dict[str, Any]) -> None:
    def pct(key: str) -> str:
        return "n/a" if result.get(key) is None else f"{result[key]:.0%}"

    table = Table("answers", "value", title=f"{result['questions']} questions asked")
    rows = (
        (f"answered right (≤ {result['max_chars']} chars, text holds an answer)", "answered_right"),
        ("answerable questions declined", "answerable_declined"),
        ("unanswerable questions declined", "unanswerable_declined"),
        ("a relevant source cited (not counted as right)", "cited_relevant"),
    )
    for label, key in rows:
        table.add_row(label, pct(key))
    f1 = result.get("token_f1")
    table.add_row("token F1", "n/a" if f1 is None else f"{f1:.3f}")
    table.add_row("median answer length", f"{result['median_answer_chars']} chars")
    table.add_row(
        "latency p50 / p95",
        f"{result['latency_p50_ms']:.0f} / {result['latency_p95_ms']:.0f} ms",
    )
    out.print(table)


def simulate(
    beir: Annotated[
        Path, typer.Option("--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")
    ],
    train_split: Annotated[
        str, typer.Option("--train-split", help="Queries replayed as users with feedback.")
    ] = "train",
    test_split: Annotated[
        str, typer.Option("--test-split", help="Queries measured before and after.")
    ] = "test",
    shown: Annotated[int, typer.Option("--shown", help="Sources each simulated user sees.")] = 10,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Share of feedback held out to judge candidates.")
    ] = 0.2,
    margin: Annotated[
        float, typer.Option("--margin", help="nDCG@10 a candidate must win by to be promoted.")
    ] = 0.005,
    finetune: Annotated[
        bool,
        typer.Option("--finetune/--no-finetune", help="Also try fine-tuning the embedder."),
    ] = True,
    min_finetune_pairs: Annotated[
        int, typer.Option("--min-finetune-pairs", help="Fine-tune from this many pairs on.")
    ] = 500,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Prove the flywheel: measure the test split, replay the train split as users who vote
    from the relevance judgements, run improve, and measure the test split again. Test
    queries are never asked, so they cannot leak into training. Without --workspace a
    scratch workspace under ~/.cache/datawheel is used and its feedback reset each run.

    Example: datawheel simulate --beir ../shared/datasets/beir_scifact --json
    """
    from datawheel.evaluate.simulate import reset_flywheel
    from datawheel.workspace import Workspace

    with handled():
        ws = Workspace.init(workspace or scratch_workspace(beir))
        try:
            if workspace is None:
                reset_flywheel(ws)
            with progress_bar(not json_) as progress:
                result = ws.simulate(
                    beir,
                    train_split=train_split,
                    test_split=test_split,
                    progress=progress,
                    shown=shown,
                    holdout=holdout,
                    margin=margin,
                    finetune=finetune,
                    min_finetune_pairs=min_finetune_pairs,
                )
        finally:
            ws.close()
    if json_:
        print_json(result)
        return
    out.print(f"settings: {result['settings']}")
    out.print(
        f"{result['train_queries']} simulated users: {result['votes']['up']} 👍, "
        f"{result['votes']['down']} 👎; {result['test_queries']} test queries"
    )
    table = Table("", "nDCG@10", "recall@100", "MRR@10", "version")
    for name in ("before", "after"):
        m = result[name]
        table.add_row(
            name,
            f"{m['ndcg@10']:.4f}",
            f"{m['recall@100']:.4f}",
            f"{m['mrr@10']:.4f}",
            m["promoted"] or ("baseline" if name == "before" else "unchanged"),
        )
    out.print(table)
    out.print(f"seconds per step: {result['seconds']}")
