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
