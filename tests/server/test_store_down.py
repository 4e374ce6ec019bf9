"""A store that stops answering: every request gets a 503 that says so, not a bare 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from _kb import admin_workspace, bearer, running
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from datawheel.server.app import create_app
from datawheel.workspace import Workspace


@pytest.mark.postgres
def test_lost_database_is_a_503_with_what_to_do(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAWHEEL_DATABASE_URL", pg_url)
    key = admin_workspace(tmp_path / "kb")
    ws = Workspace.open(tmp_path / "kb")
    url = make_url(pg_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with running(create_app(ws, warm=False)) as base:
            assert httpx.get(f"{base}/api/me", headers=bearer(key)).status_code == 200
            with admin.connect() as conn:  # the database goes away under the running service
                conn.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
            lost = httpx.get(f"{base}/api/me", headers=bearer(key))
            health = httpx.get(f"{base}/api/health")
    finally:
        admin.dispose()
    with pytest.raises(OperationalError):  # closing says so too (the BM25 file is saved first)
        ws.close()
    assert lost.status_code == 503 and lost.headers["retry-after"] == "5", lost.text
    assert "the store (database) did not answer" in lost.json()["error"]
    assert health.status_code == 503
