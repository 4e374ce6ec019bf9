"""The contract every Store and VectorIndex backend must meet.

Each test runs against every backend: SQLite and PostgreSQL for the store; exact numpy,
the embedded HNSW graph and pgvector for vectors. PostgreSQL tests are marked
``postgres`` and run on the session's embedded server (or DATAWHEEL_TEST_POSTGRES_URL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from datawheel.store import schema as t
from datawheel.store.base import ChunkRecord, DocumentRecord, DocumentWrite
from datawheel.store.catalog import Filter
from datawheel.store.keyword import BM25Index
from datawheel.store.pgvector import PgVectorIndex
from datawheel.store.sql import SQLStore
from datawheel.store.vectors import NumpyVectorIndex, VectorIndex

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(params=["sqlite", POSTGRES])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    s = SQLStore(store_url)
    yield s
    s.close()


def _write(doc_id: str, uri: str, fp: str, texts: list[str], groups=("everyone",)) -> DocumentWrite:
    doc = DocumentRecord(
        id=doc_id,
        uri=uri,
        fingerprint=fp,
        title=f"T {doc_id}",
        kind="md",
        groups=list(groups),
        topic="billing",
        meta={"lang": "en"},
    )
    chunks = [
        ChunkRecord(f"{doc_id}-{i}", doc_id, i, "H", t, f"h-{t}") for i, t in enumerate(texts)
    ]
    return DocumentWrite(doc, chunks)


def test_write_replace_delete(store: SQLStore) -> None:
    vec = {"h-a": np.ones(4, np.float32)}
    store.write_documents([_write("d1", "/x/a.md", "fp1", ["a", "b"])], vec, "m")
    assert store.document_states() == {"/x/a.md": ("d1", "fp1")}
    assert store.chunk_ids() == {"d1-0", "d1-1"}
    assert store.chunk_text_hashes() == {"d1-0": "h-a", "d1-1": "h-b"}
    # replacing a document replaces all its chunks
    store.write_documents([_write("d1", "/x/a.md", "fp2", ["c"])], {}, "m")
    assert store.document_states()["/x/a.md"] == ("d1", "fp2")
    assert store.chunk_ids() == {"d1-0"}
    assert [v.text for v in store.chunks()] == ["c"]
    assert store.delete_documents(["d1"]) == 1
    assert store.chunk_ids() == set()
    assert store.counts()["documents"] == 0


def test_states_by_prefix_and_chunk_views(store: SQLStore) -> None:
    store.write_documents(
        [
            _write("d1", "/x/a.md", "1", ["a"]),
            _write("d2", "/y/b.md", "2", ["b"], groups=("sales",)),
        ],
        {},
        "m",
    )
    assert set(store.document_states("/x/")) == {"/x/a.md"}
    views = {v.id: v for v in store.chunks(["d2-0"])}
    assert views["d2-0"].groups == ["sales"]
    assert views["d2-0"].fields["topic"] == "billing"
    assert views["d2-0"].fields["lang"] == "en"
    assert store.chunk_ids_of(["d2"]) == ["d2-0"]


def test_embedding_cache_is_keyed_by_model(store: SQLStore) -> None:
    v = np.arange(4, dtype=np.float32)
    store.write_documents([_write("d1", "/a", "1", ["a"])], {"h-a": v}, "model-1")
    got = store.cached_vectors(["h-a", "h-zzz"], "model-1")
    assert list(got) == ["h-a"] and np.array_equal(got["h-a"], v)
    assert store.cached_vectors(["h-a"], "model-2") == {}
    # writing the same vector again is a no-op, not an error
    store.write_documents([_write("d1", "/a", "2", ["a"])], {"h-a": v}, "model-1")


def test_failed_write_leaves_nothing(store: SQLStore) -> None:
    good = _write("d1", "/a", "1", ["a"])
    clash = _write("d2", "/b", "1", ["b"])
    clash.chunks.append(ChunkRecord("d1-0", "d2", 9, "", "dup id", "h"))  # primary key clash
    with pytest.raises(IntegrityError):
        store.write_documents([good, clash], {}, "m")
    assert store.counts()["documents"] == 0 and store.chunk_ids() == set()


def test_runs_failures_evaluations(store: SQLStore) -> None:
    run = store.start_run("ingest", {"paths": ["/x"]})
    store.record_failures(run, [("/x/bad.pdf", "corrupt PDF", None)])
    store.finish_run(run, "finished", {"added": 1})
    [row] = store.list_runs("ingest")
    assert row["status"] == "finished" and row["counts"] == {"added": 1}
    assert row["duration_s"] is not None and row["duration_s"] >= 0
    assert store.failures()[0]["reason"] == "corrupt PDF"
    store.clear_failures(["/x/bad.pdf"])
    assert store.failures() == []
    store.record_evaluation(
        run,
        {
            "dataset": "d",
            "split": "test",
            "mode": "bm25",
            "metrics": {"ndcg@10": 0.5},
            "versions": {"e": "m"},
        },
    )
    assert store.evaluations()[0]["metrics"]["ndcg@10"] == 0.5


def test_reopen_keeps_data_and_migrations_run_once(store_url: str) -> None:
    s = SQLStore(store_url)
    s.write_documents([_write("d1", "/a", "1", ["a"])], {}, "m")
    s.close()
    s2 = SQLStore(store_url)
    assert s2.counts()["documents"] == 1
    with s2.engine.connect() as conn:
        versions = list(conn.execute(select(t.schema_migrations.c.version)).scalars())
    assert sorted(versions) == sorted(t.MIGRATIONS)
    s2.close()


def test_bulk_write_and_every_table_accepts_rows(store: SQLStore) -> None:
    # big enough for the PostgreSQL COPY paths (documents, chunks, embedding cache)
    writes = [_write(f"d{i}", f"/bulk/{i}", str(i), [f"t{i}", f"u{i}"]) for i in range(700)]
    vecs = {f"h-t{i}": np.full(4, i, np.float32) for i in range(1500)}
    store.write_documents(writes, vecs, "m")
    counts = store.counts()
    assert (counts["documents"], counts["chunks"], counts["embeddings_cached"]) == (
        700,
        1400,
        1500,
    )
    assert np.array_equal(store.cached_vectors(["h-t7"], "m")["h-t7"], np.full(4, 7, np.float32))
    view = next(store.chunks(["d3-1"]))
    assert (view.text, view.groups, view.fields["lang"]) == ("u3", ["everyone"], "en")
    store.set_state("k", "v1")
    store.set_state("k", "v2")
    assert store.get_state("k") == "v2"


# -- vector index contract --------------------------------------------------------------


@pytest.fixture(params=["exact", "hnsw", POSTGRES])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], VectorIndex]]:
    """Opens the index under test (again): same file, or same table."""
    if request.param == "postgres":
        store = SQLStore(request.getfixturevalue("pg_url"))
        # ann_min 0: the HNSW index is built at the first save(), as at 50k rows in use
        yield lambda: PgVectorIndex(store.engine, dim=8, table="vectors_test", ann_min=0)
        store.close()
        return
    # "hnsw": the same index with the graph switched on from the first row
    ann_min = 0 if request.param == "hnsw" else 10**9
    yield lambda: NumpyVectorIndex(tmp_path / "v.npz", dim=8, ann_min=ann_min)


@pytest.fixture
def vindex(reopen: Callable[[], VectorIndex]) -> VectorIndex:
    return reopen()


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    m = rng.normal(size=(n, 8)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_vector_exact_search_matches_brute_force(vindex: VectorIndex) -> None:
    rng = np.random.default_rng(0)
    m = _unit(rng, 300)
    ids = [f"c{i}" for i in range(300)]
    vindex.upsert(
        ids, m, [{"topic": "a" if i % 2 else "b"} for i in range(300)], [["everyone"]] * 300
    )
    vindex.save()
    q = _unit(rng, 1)[0]
    order = np.argsort(-(m @ q))[:10]
    hits = vindex.search(q, 10)
    assert [cid for cid, _ in hits] == [ids[i] for i in order]
    assert np.allclose([s for _, s in hits], (m @ q)[order], atol=1e-5)
    assert np.allclose(vindex.scores(q, [ids[order[0]], "nope"]), [(m @ q)[order[0]], -1])
    assert len(vindex) == 300


def test_vector_filters_apply_inside_retrieval(vindex: VectorIndex) -> None:
    rng = np.random.default_rng(1)
    m = _unit(rng, 200)
    ids = [f"c{i}" for i in range(200)]
    groups = [["sales"] if i < 5 else ["support"] for i in range(200)]
    vindex.upsert(ids, m, [{"topic": "x"}] * 200, groups)
    vindex.save()
    hits = vindex.search(m[150], 10, Filter.build(groups=["sales"]))
    # all five sales chunks come back even though none is near the query
    assert sorted(cid for cid, _ in hits) == [f"c{i}" for i in range(5)]
    assert vindex.search(m[0], 10, Filter.build({"topic": "nope"})) == []
    both = Filter.build({"topic": "x"}, groups=["sales", "hr"])
    assert len(vindex.search(m[0], 10, both)) == 5


def test_vector_update_delete_persist(
    vindex: VectorIndex, reopen: Callable[[], VectorIndex]
) -> None:
    rng = np.random.default_rng(2)
    m = _unit(rng, 3)
    vindex.upsert(["a", "b", "c"], m, [{}] * 3, [["g"]] * 3)
    vindex.upsert(["a"], m[2:3], [{}], [["g"]])  # update moves a onto c's vector
    assert {cid for cid, _ in vindex.search(m[2], 2)} == {"a", "c"}
    assert vindex.delete(["c", "missing"]) == 1
    vindex.save()
    again = reopen()
    assert again.ids() == {"a", "b"}
    assert again.search(m[2], 1)[0][0] == "a"
    assert np.allclose(again.vectors(["a", "zz"]), np.vstack([m[2], np.zeros(8)]))  # type: ignore[attr-defined]


def test_bm25_incremental_and_filters(tmp_path: Path) -> None:
    idx = BM25Index(tmp_path / "bm25.pkl")
    idx.upsert(
        ["a", "b"],
        ["refund policy for enterprise customers", "holiday schedule"],
        [{"topic": "billing"}, {"topic": "hr"}],
        [["sales"], ["everyone"]],
    )
    assert idx.search("refunds", 5)[0][0] == "a"  # stemming: refunds -> refund
    assert idx.search("refund", 5, Filter.build(groups=["everyone"])) == []
    idx.upsert(["c"], ["a new refund rule"], [{"topic": "billing"}], [["everyone"]])
    assert {cid for cid, _ in idx.search("refund", 5)} == {"a", "c"}
    idx.delete(["a"])
    idx.save()
    again = BM25Index(tmp_path / "bm25.pkl")
    assert [cid for cid, _ in again.search("refund", 5)] == ["c"]
    assert again.search("zzzunknown", 5) == []


def test_hnsw_recall_and_filters_on_clustered_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(20, 32)).astype(np.float32)
    m = centres[rng.integers(0, 20, 3000)] + 0.4 * rng.normal(size=(3000, 32)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    ids = [f"c{i}" for i in range(3000)]
    fields = [{"half": str(i % 2)} for i in range(3000)]
    exact = NumpyVectorIndex(tmp_path / "e.npz", dim=32, ann_min=10**9)
    ann = NumpyVectorIndex(tmp_path / "a.npz", dim=32, ann_min=1000)
    for index in (exact, ann):
        index.upsert(ids, m, fields, [["g"]] * 3000)
    queries = m[:50] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    hits = [
        len({c for c, _ in exact.search(q, 10)} & {c for c, _ in ann.search(q, 10)})
        for q in queries
    ]
    assert sum(hits) / 500 >= 0.95
    flt = Filter.build({"half": "1"})
    assert all(int(c[1:]) % 2 == 1 for c, _ in ann.search(queries[0], 10, flt))
    ann.delete(ids[:1500])
    assert all(int(c[1:]) >= 1500 for c, _ in ann.search(queries[0], 10))
