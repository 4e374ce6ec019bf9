"""datawheel migrate: SQLite to PostgreSQL and back, resumable, verified, refusing to mix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    func,
    insert,
    select,
)
from typer.testing import CliRunner

from datawheel.cli.main import app
from datawheel.errors import WorkspaceError
from datawheel.store import migrate as m
from datawheel.store import schema as t
from datawheel.store.sql import SQLStore

pytestmark = pytest.mark.postgres
BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _value(table: Table, col: Any, i: int, salt: str) -> Any:
    """A value for row i of any column: FK and key columns line up across tables."""
    kind = col.type
    if isinstance(kind, Boolean):
        return i % 2 == 0
    if isinstance(kind, Integer):
        return i + 1
    if isinstance(kind, Float):
        return i / 4
    if isinstance(kind, DateTime):
        return BASE + timedelta(hours=i)
    if isinstance(kind, JSON):
        return {"i": i, "salt": salt, "list": [salt, i]}
    if isinstance(kind, LargeBinary):
        return np.full(4, i + 0.25, np.float32).tobytes()
    value = f"{i:06d}" if col.primary_key or col.foreign_keys or col.unique else f"{salt}{i}"
    length = getattr(kind, "length", None) if isinstance(kind, String) else None
    return value[-length:] if length else value


def fill(url: str, n: int, salt: str = "a") -> SQLStore:
    """n rows in every table the copy moves (and n embeddings of model m)."""
    store = SQLStore(url)
    with store.engine.begin() as conn:
        for table in m.tables():
            rows = [{c.name: _value(table, c, i, salt) for c in table.columns} for i in range(n)]
            conn.execute(insert(table), rows)
    return store


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, datetimes in UTC: comparable across databases."""
    store = SQLStore(url)
    out = {}
    with store.engine.connect() as conn:
        for table in m.tables():
            rows = []
            for r in conn.execute(select(table)):
                rows.append(tuple(_norm(v) for v in r))
            out[table.name] = sorted(rows, key=repr)
    store.close()
    return out


def _norm(v: Any) -> Any:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(v, memoryview):
        return bytes(v)
    return repr(v) if isinstance(v, dict | list) else v


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'src.db'}"


def test_every_table_round_trips_sqlite_postgres_sqlite(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    fill(sqlite_url, 23).close()
    report = m.copy_store(sqlite_url, pg_url, batch_size=10)
    assert not report.resumed
    assert {name: (r.source, r.target, r.skipped) for name, r in report.tables.items()} == {
        tbl.name: (23, 23, 0) for tbl in m.tables()
    }
    assert report.vectors["000000"]["count"] == 1  # (text_hash, model_id) pairs line up
    assert snapshot(pg_url) == snapshot(sqlite_url)
    # the sequences moved past the copied ids: new rows get fresh ones
    target = SQLStore(pg_url)
    assert target.start_run("ingest", {}) == 24
    target.close()
    back = f"sqlite:///{tmp_path / 'back.db'}"
    m.copy_store(pg_url, back, batch_size=7)
    original, returned = snapshot(sqlite_url), snapshot(back)
    assert [r for r in returned["runs"] if r[0] <= 23] == original["runs"]
    assert {k: v for k, v in returned.items() if k != "runs"} == {
        k: v for k, v in original.items() if k != "runs"
    }


def test_rerun_changes_nothing_and_non_empty_target_needs_merge(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    fill(sqlite_url, 12).close()
    first = m.copy_store(sqlite_url, pg_url)
    again = m.copy_store(sqlite_url, pg_url)  # same source: finished, nothing to do
    assert again.resumed and again.tables == first.tables
    other = f"sqlite:///{tmp_path / 'other.db'}"
    fill(other, 15, salt="b").close()
    with pytest.raises(WorkspaceError, match="already holds data .*--merge"):
        m.copy_store(other, pg_url)
    merged = m.copy_store(other, pg_url, merge=True)
    # natural keys the target has keep its rows; integer ids are appended after its own
    assert (merged.tables["documents"].inserted, merged.tables["documents"].skipped) == (3, 12)
    assert (merged.tables["runs"].inserted, merged.tables["runs"].target) == (15, 27)
    store = SQLStore(pg_url)
    with store.engine.connect() as conn:
        runs = conn.execute(select(t.runs.c.id, t.runs.c.kind).order_by(t.runs.c.id)).all()
        evals = conn.execute(select(func.max(t.evaluations.c.run_id))).scalar()
        doc = conn.execute(select(t.documents.c.title).where(t.documents.c.id == "000001")).scalar()
    store.close()
    assert [r.id for r in runs] == list(range(1, 28))
    assert runs[12].kind == "b0" and evals == 12 + 15  # run_id references moved with the runs
    assert doc == "a1"  # the target's version of a shared key is kept


def test_a_failed_run_resumes_without_duplicates(sqlite_url: str, pg_url: str) -> None:
    fill(sqlite_url, 40).close()
    seen = []

    def crash(table: str, done: int, total: int) -> None:
        seen.append((table, done))
        if table == "chunks" and done >= 20:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        m.copy_store(sqlite_url, pg_url, batch_size=10, progress=crash)
    store = SQLStore(pg_url)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.chunks)).scalar() == 20
    store.close()
    report = m.copy_store(sqlite_url, pg_url, batch_size=10)
    assert report.resumed and report.tables["chunks"].inserted == 40
    assert snapshot(pg_url) == snapshot(sqlite_url)


def test_cli_killed_midway_then_rerun(sqlite_url: str, pg_url: str, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "datawheel.yaml").write_text(f"store:\n  url: {sqlite_url}\n", encoding="utf-8")
    fill(sqlite_url, 1500).close()
    cmd = [sys.executable, "-m", "datawheel.cli.main", "migrate", "--from", str(kb)]
    cmd += ["--to", pg_url, "--batch-size", "20", "--no-index"]
    env = {**os.environ, "DATAWHEEL_DATABASE_URL": pg_url}  # the README's setup: ignored
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    target = SQLStore(pg_url)
    copied = 0
    deadline = time.monotonic() + 120
    while copied < 400 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        with target.engine.connect() as conn:
            copied = conn.execute(select(func.sum(t.copy_checkpoints.c.rows_read))).scalar() or 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the copy finished before it could be killed"
    with target.engine.connect() as conn:
        done = conn.execute(select(func.sum(t.copy_checkpoints.c.rows_read))).scalar()
    target.close()
    assert 400 <= done < 1500 * len(m.tables())
    result = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert '"resumed": true' in result.stdout
    assert snapshot(pg_url) == snapshot(sqlite_url)


def test_cli_messages(sqlite_url: str, pg_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["migrate", "--from", str(tmp_path / "nope"), "--to", pg_url])
    assert missing.exit_code == 2 and "no workspace at" in missing.output
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "datawheel.yaml").write_text(f"store:\n  url: {sqlite_url}\n", encoding="utf-8")
    fill(sqlite_url, 3).close()
    same = runner.invoke(app, ["migrate", "--from", str(kb), "--to", sqlite_url])
    assert same.exit_code == 2 and "the same store" in same.output
    ok = runner.invoke(app, ["migrate", "--from", str(kb), "--to", pg_url, "--no-index"])
    assert ok.exit_code == 0, ok.output
    assert "verified: row counts and vector checksums match" in ok.output
    other = tmp_path / "other"
    other.mkdir()
    (other / "datawheel.yaml").write_text(
        f"store:\n  url: sqlite:///{other / 'o.db'}\n", encoding="utf-8"
    )
    fill(f"sqlite:///{other / 'o.db'}", 2, salt="z").close()
    refused = runner.invoke(app, ["migrate", "--from", str(other), "--to", pg_url])
    assert refused.exit_code == 2
    assert "already holds data" in refused.output and "--merge" in refused.output
    # and back into a new workspace folder, made on the way
    back = runner.invoke(
        app, ["migrate", "--from", pg_url, "--to", str(tmp_path / "back"), "--no-index"]
    )
    assert back.exit_code == 0, back.output
    assert (tmp_path / "back" / "datawheel.yaml").exists()
    assert snapshot(f"sqlite:///{tmp_path / 'back' / 'datawheel.db'}") == snapshot(sqlite_url)
