"""Shared fixtures. Everything runs on real local parts: SQLite files, the real model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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
