"""Evaluate retrieval on a BEIR-format dataset: corpus.jsonl, queries.jsonl, qrels/*.tsv."""

from __future__ import annotations

import csv
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datawheel.apps.rag.rank import rank
from datawheel.errors import ConfigError, SourceError
from datawheel.evaluate.metrics import Qrels, score_run
from datawheel.store.catalog import Filter

if TYPE_CHECKING:
    from datawheel.improve.model import RagModel
    from datawheel.ingest import Progress
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)

DOC_DEPTH = 100  # documents ranked per query (recall@100)


def load_qrels(path: Path) -> Qrels:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row in reader:
            if not row or row[0] in ("query-id", "query_id", "qid"):
                continue
            if len(row) < 3:
                raise SourceError(f"{path}: malformed qrels row {row!r}; expected 3 columns")
            qrels[row[0]][row[1]] = int(float(row[2]))
    return dict(qrels)


def load_queries(path: Path, ids: set[str] | None = None) -> dict[str, str]:
    out = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{path}:{n}: not JSON ({exc})") from exc
            qid = str(row["_id"])
            if ids is None or qid in ids:
                out[qid] = row["text"]
    return out


def beir_paths(root: Path, split: str) -> tuple[Path, Path, Path]:
    corpus, queries, qrels = (
        root / "corpus.jsonl",
        root / "queries.jsonl",
        root / "qrels" / f"{split}.tsv",
    )
    for p in (corpus, queries):
        if not p.exists():
            raise ConfigError(
                f"{p} not found: a BEIR folder holds corpus.jsonl, queries.jsonl "
                "and qrels/<split>.tsv"
            )
    if not qrels.exists():
        splits = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise ConfigError(
            f"no split {split!r} in {root / 'qrels'}; valid splits: {', '.join(splits) or 'none'}"
        )
    return corpus, queries, qrels


def rank_documents(
    ws: Workspace,
    corpus: Path,
    queries: dict[str, str],
    mode: str,
    progress: Progress | None = None,
    model: RagModel | None = None,
) -> dict[str, list[str]]:
    """Top documents per query: chunk hits folded to their BEIR doc id (best chunk wins).

    A document whose id is the query's own id is left out, as BEIR's evaluation does by
    default (``ignore_identical_ids``): in ArguAna and Quora the query is itself a corpus
    document, which would otherwise rank first and count as a miss.
    """
    flt = Filter.build({"kind": "beir", "corpus": str(corpus.resolve())})
    qids = list(queries)
    vectors = ws.embedder.embed([queries[q] for q in qids]) if mode != "bm25" else None
    run: dict[str, list[str]] = {}
    beir_ids: dict[str, str] = {}
    for i, qid in enumerate(qids):
        qvec = None if vectors is None else vectors[i]
        ranking = rank(ws, queries[qid], DOC_DEPTH * 3, mode, flt, qvec, model)
        missing = [cid for cid, _ in ranking.hits if cid not in beir_ids]
        for view in ws.store.chunks(missing):
            beir_ids[view.id] = view.fields.get("beir_id", view.doc_id)
        docs: list[str] = []
        seen: set[str] = {qid}
        for cid, _ in ranking.hits:
            doc = beir_ids.get(cid)
            if doc is not None and doc not in seen:
                seen.add(doc)
                docs.append(doc)
        run[qid] = docs[:DOC_DEPTH]
        if progress and (i % 20 == 0 or i == len(qids) - 1):
            progress("queries", i + 1, len(qids))
    return run


def evaluate_beir(
    ws: Workspace, root: Path, *, split: str, mode: str, progress: Progress | None = None
) -> dict[str, Any]:
    corpus, queries_path, qrels_path = beir_paths(root, split)
    qrels = load_qrels(qrels_path)
    queries = load_queries(queries_path, set(qrels))
    run_id = ws.store.start_run("evaluate", {"dataset": str(root), "split": split, "mode": mode})
    try:
        report = ws.ingest([corpus], progress=progress)
        if report.failed:
            log.warning("%d corpus lines could not be ingested", len(report.failed))
        run = rank_documents(ws, corpus, queries, mode, progress)
        metrics = score_run(run, {q: qrels[q] for q in queries})
    except BaseException:
        ws.store.finish_run(run_id, "failed", {})
        raise
    result = {**metrics, "mode": mode, "split": split, "dataset": root.name}
    versions = ws.provenance()
    ws.store.record_evaluation(
        run_id,
        {
            "dataset": str(root),
            "split": split,
            "mode": mode,
            "metrics": metrics,
            "versions": versions,
        },
    )
    ws.store.finish_run(run_id, "finished", metrics)
    return result
