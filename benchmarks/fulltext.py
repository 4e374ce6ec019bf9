"""Keyword search on PostgreSQL: bm25s per worker vs PostgreSQL full-text search.

SciFact (5,183 abstracts, 300 test queries). bm25s: the workspace's BM25Index (English
stemming, stop words). PostgreSQL: a ``tsvector`` column (``english`` configuration) with a
GIN index, queries as the OR of their lexemes (AND finds almost nothing for questions),
ranked by ``ts_rank_cd`` — the usual setup. Reports nDCG@10 and p95 latency of each.

Usage: python benchmarks/fulltext.py [--json] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import os
import time

from _common import SCIFACT, emit, load_corpus, percentile
from backends import postgres
from sqlalchemy import create_engine, text

from datawheel.evaluate.beir import load_qrels, load_queries
from datawheel.evaluate.metrics import ndcg_at
from datawheel.store.keyword import BM25Index
from datawheel.store.postgres import engine_url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--postgres-url", default=os.environ.get("DATAWHEEL_BENCH_POSTGRES_URL"))
    args = ap.parse_args()
    corpus = load_corpus()
    qrels = load_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = load_queries(SCIFACT / "queries.jsonl", set(qrels))
    texts = [f"{d.get('title', '')}\n{d['text']}" for d in corpus]
    ids = [d["_id"] for d in corpus]

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        bm25 = BM25Index(Path(tmp) / "bm25.pkl")
        bm25.upsert(ids, texts, [{}] * len(ids), [["everyone"]] * len(ids))
        bm25.search("warm up", 10)
        times, scores = [], []
        for qid, q in queries.items():
            t0 = time.perf_counter()
            ranked = [cid for cid, _ in bm25.search(q, 10)]
            times.append((time.perf_counter() - t0) * 1000)
            scores.append(ndcg_at(ranked, qrels[qid], 10))
    result = {
        "bm25s_ndcg@10": round(sum(scores) / len(scores), 4),
        "bm25s_p95_ms": round(percentile(times, 95), 2),
    }
    print(result, flush=True)

    with postgres(args.postgres_url) as url:
        engine = create_engine(engine_url(url))
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE docs (id text PRIMARY KEY, body text, tsv tsvector)"))
            conn.execute(
                text("INSERT INTO docs (id, body) VALUES (:i, :b)"),
                [{"i": i, "b": b} for i, b in zip(ids, texts, strict=True)],
            )
            conn.execute(text("UPDATE docs SET tsv = to_tsvector('english', body)"))
            conn.execute(text("CREATE INDEX docs_tsv ON docs USING gin (tsv)"))
            conn.execute(text("ANALYZE docs"))
        sql = text(
            "WITH q AS (SELECT replace(plainto_tsquery('english', :q)::text, '&', '|')::tsquery "
            "AS q) SELECT id FROM docs, q WHERE tsv @@ q.q "
            "ORDER BY ts_rank_cd(tsv, q.q) DESC LIMIT 10"
        )
        times, scores = [], []
        with engine.connect() as conn:
            for qid, q in queries.items():
                t0 = time.perf_counter()
                ranked = list(conn.execute(sql, {"q": q}).scalars())
                times.append((time.perf_counter() - t0) * 1000)
                scores.append(ndcg_at(ranked, qrels[qid], 10))
        engine.dispose()
    result["postgres_fts_ndcg@10"] = round(sum(scores) / len(scores), 4)
    result["postgres_fts_p95_ms"] = round(percentile(times, 95), 2)
    print(result, flush=True)
    emit(result, args.json)


if __name__ == "__main__":
    main()
