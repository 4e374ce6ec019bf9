"""PostgreSQL as the store: bad URLs and servers, concurrent writers, a workspace on it."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, make_url, select, text

from datawheel.errors import MissingExtraError, WorkspaceError
from datawheel.feedback.log import Interaction, InteractionLog
from datawheel.store import migrate as m
from datawheel.store import postgres as pg
from datawheel.store import schema as t
from datawheel.store.base import ChunkRecord, DocumentRecord, DocumentWrite
from datawheel.store.pgvector import PgVectorIndex
from datawheel.store.sql import SQLStore

pytestmark = pytest.mark.postgres


# -- bad input --------------------------------------------------------------------------


def test_unreachable_server_names_the_url_without_password() -> None:
    with pytest.raises(WorkspaceError) as err:
        SQLStore("postgresql://datawheel:s3cret@127.0.0.1:1/datawheel?connect_timeout=3")
    message = str(err.value)
    assert "cannot connect to PostgreSQL at postgresql+psycopg://datawheel:***@127.0.0.1:1" in (
        message
    )
    assert "s3cret" not in message and "no PostgreSQL server answers there" in message


def test_wrong_credentials(pg_url: str) -> None:
    url = make_url(pg_url).set(username="nobody_here", password="pw123")
    with pytest.raises(WorkspaceError) as err:
        SQLStore(url.render_as_string(hide_password=False))
    assert "refused the user name or password" in str(err.value)
    assert "pw123" not in str(err.value) and "nobody_here:***@" in str(err.value)


def test_missing_database(pg_url: str) -> None:
    url = make_url(pg_url).set(database="no_such_db_here")
    with pytest.raises(WorkspaceError, match="create the database first"):
        SQLStore(url.render_as_string(hide_password=False))


def test_missing_pgvector_says_how_to_install(pg_url: str) -> None:
    store = SQLStore(pg_url)
    with store.engine.begin() as conn, pytest.raises(WorkspaceError) as err:
        pg.ensure_pgvector(conn, store.engine.url, extension="vector_not_installed")
    store.close()
    assert "has no pgvector extension" in str(err.value)
    assert "postgresql-<version>-pgvector" in str(err.value)
    assert "CREATE EXTENSION vector" in str(err.value)


def test_pgvector_present_but_user_may_not_enable_it(pg_url: str) -> None:
    store = SQLStore(pg_url)
    name = make_url(pg_url).database
    with store.engine.begin() as conn:
        conn.execute(text("DROP EXTENSION vector"))
        conn.execute(text("CREATE ROLE plain_user LOGIN"))
        conn.execute(text(f'GRANT ALL ON DATABASE "{name}" TO plain_user'))
        conn.execute(text("GRANT ALL ON SCHEMA public TO plain_user"))
    store.close()
    url = make_url(pg_url).set(username="plain_user").render_as_string(hide_password=False)
    try:
        with pytest.raises(WorkspaceError, match="ask a superuser to run CREATE EXTENSION"):
            SQLStore(url)
    finally:
        admin = SQLStore(pg_url)  # a superuser puts it back (and drops the role)
        with admin.engine.begin() as conn:
            conn.execute(text("DROP OWNED BY plain_user"))
            conn.execute(text("DROP ROLE plain_user"))
        admin.close()


def test_postgres_url_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_psycopg(name: str, *args: object, **kwargs: object) -> object:
        if name == "psycopg":
            raise ImportError(name)
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(MissingExtraError, match=r"pip install 'datawheel\[postgres\]'"):
        SQLStore("postgresql://db.internal/datawheel")


# -- concurrency ------------------------------------------------------------------------


def _doc(i: int, round_: int, n_chunks: int) -> DocumentWrite:
    doc_id = f"doc{i:02d}"
    doc = DocumentRecord(doc_id, f"/kb/{doc_id}.md", f"fp{round_}", "T", "md", ["everyone"])
    chunks = [
        ChunkRecord(f"{doc_id}-{k}", doc_id, k, "", f"r{round_} k{k}", f"h{round_}-{k}")
        for k in range(n_chunks)
    ]
    return DocumentWrite(doc, chunks)


def _run_all(workers: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(w,)) for w in workers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a writer hung (deadlock?)"
    return errors


def test_parallel_ingest_and_votes_lose_nothing(pg_url: str) -> None:
    setup = SQLStore(pg_url)
    log = InteractionLog(setup.engine)
    now = datetime.now(UTC)
    ids = [f"{i:032x}" for i in range(12)]
    for ident in ids:
        log.record(Interaction(ident, "q", "a", "u", now, 1.0, 0.5, False, "generator", [], {}))
    rng = np.random.default_rng(0)

    def ingest(worker: int) -> Callable[[], None]:
        def run() -> None:
            store = SQLStore(pg_url)  # each worker its own engine, as separate processes
            index = PgVectorIndex(store.engine, dim=8, table="vectors_conc", ann_min=10)
            for round_ in range(15):
                # every worker rewrites the same documents, in a different order
                order = np.random.default_rng(worker * 100 + round_).permutation(10)
                writes = [_doc(int(i), round_, 1 + (round_ + int(i)) % 4) for i in order]
                vecs = {
                    c.text_hash: rng.random(8).astype(np.float32) for w in writes for c in w.chunks
                }
                with store.writing():  # as ingest commits a batch: store, then vectors
                    old = store.chunk_ids_of([w.document.id for w in writes])
                    store.write_documents(writes, vecs, "m")
                    index.delete(old)
                    ids_ = [c.id for w in writes for c in w.chunks]
                    mat = np.vstack([vecs[c.text_hash] for w in writes for c in w.chunks])
                    index.upsert(ids_, mat, [{}] * len(ids_), [["everyone"]] * len(ids_))
                index.save()
            store.close()

        return run

    votes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def voter(worker: int) -> Callable[[], None]:
        def run() -> None:
            store = SQLStore(pg_url)
            mine = InteractionLog(store.engine)
            for k in range(40):
                ident, user = ids[(worker + k) % len(ids)], f"user{k % 5}"  # users shared
                mine.vote(ident, "up" if k % 2 else "down", user=user, comment=f"w{worker}")
                with lock:
                    votes.append((ident, user))
            store.close()

        return run

    errors = _run_all([ingest(w) for w in range(3)] + [voter(w) for w in range(3)])
    assert errors == []
    with setup.engine.connect() as conn:
        n_votes = conn.execute(select(func.count()).select_from(t.feedback)).scalar()
        docs = conn.execute(select(t.documents.c.id, t.documents.c.chunk_count)).all()
        per_doc = dict(
            conn.execute(select(t.chunks.c.doc_id, func.count()).group_by(t.chunks.c.doc_id)).all()
        )
    assert n_votes == len(set(votes))  # one vote per (interaction, user): none lost
    assert len(docs) == 10 and all(per_doc[d] == n for d, n in docs)  # no duplicate chunks
    index = PgVectorIndex(setup.engine, dim=8, table="vectors_conc")
    assert index.ids() == setup.chunk_ids()
    setup.close()


# -- a workspace on PostgreSQL ----------------------------------------------------------


def test_migrated_workspace_searches_the_same(
    sample: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datawheel.workspace import Workspace

    kb = tmp_path / "kb"
    shutil.copytree(sample, kb)
    monkeypatch.delenv("DATAWHEEL_DATABASE_URL", raising=False)
    with Workspace.open(kb) as ws:
        before = [(h.chunk_id, round(h.score, 4)) for h in ws.search("refund policy", k=5)]
        dense = [h.chunk_id for h in ws.search("how long do refunds take", k=5, mode="dense")]
        chunks = ws.store.counts()["chunks"]
    m.copy_store(m.resolve(str(kb)), pg_url)
    assert m.build_indexes(kb, pg_url) == chunks
    monkeypatch.setenv("DATAWHEEL_DATABASE_URL", pg_url)
    with Workspace.open(kb) as ws:
        assert ws.status()["store"].startswith("postgresql+psycopg://")
        assert type(ws.indexes.vectors).__name__ == "PgVectorIndex"
        assert [(h.chunk_id, round(h.score, 4)) for h in ws.search("refund policy", k=5)] == (
            before
        )
        assert [h.chunk_id for h in ws.search("how long do refunds take", k=5, mode="dense")] == (
            dense
        )
