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
