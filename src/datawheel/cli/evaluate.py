"""``datawheel evaluate``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated

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
from datawheel.workspace import Workspace


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
            help='JSON lines {"question", "relevant": [paths]} scored '
            "against what the workspace holds.",
        ),
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="Which qrels/<split>.tsv to score.")
    ] = "test",
    mode: Annotated[str | None, typer.Option("--mode", help="bm25, dense or hybrid.")] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Measure retrieval: nDCG@10, recall@100 and MRR@10 on a BEIR dataset. Without
    --workspace the corpus goes into a scratch workspace kept under ~/.cache/datawheel.

    Example: datawheel evaluate --beir ../shared/datasets/beir_scifact --split test --json
    """
    with handled():
        if (beir is None) == (questions is None):
            raise ConfigError("pass exactly one of --beir DIR or --questions FILE")
        if questions is not None:
            ws = Workspace.open(find_workspace(workspace))
        else:
            ws = Workspace.init(workspace or scratch_workspace(beir))  # type: ignore[arg-type]
        try:
            with progress_bar(not json_) as progress:
                source: Path = beir or questions  # type: ignore[assignment]
                result = ws.evaluate(source, split=split, mode=mode, progress=progress)
        finally:
            ws.close()
    if json_:
        print_json(result)
        return
    table = Table("dataset", "split", "mode", "queries", "nDCG@10", "recall@100", "MRR@10")
    table.add_row(
        result["dataset"],
        result.get("split", "questions"),
        result["mode"],
        str(result["queries"]),
        f"{result['ndcg@10']:.4f}",
        f"{result['recall@100']:.4f}",
        f"{result['mrr@10']:.4f}",
    )
    out.print(table)
    if "answered_correctly" in result:
        out.print(
            f"answers: {result['answered_correctly']:.0%} correct, "
            f"{result['declined']:.0%} declined; latency p50 {result['latency_p50_ms']:.0f} ms, "
            f"p95 {result['latency_p95_ms']:.0f} ms"
        )


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
