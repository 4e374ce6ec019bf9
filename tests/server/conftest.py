"""A small knowledge base split across groups, its users, and a real server over it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _kb import DOCS, Keys, running

from datawheel.server.app import create_app
from datawheel.workspace import Workspace


@pytest.fixture(scope="session")
def grouped_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Documents in groups hr, sales and both; ingested once, copied by each test."""
    root = tmp_path_factory.mktemp("grouped")
    path = root / "kb"
    with Workspace.init(path) as ws:
        for groups, files in DOCS.items():
            folder = root / "docs" / groups.replace(",", "+")
            folder.mkdir(parents=True)
            for name, text in files.items():
                (folder / name).write_text(text, encoding="utf-8")
            report = ws.ingest([folder], groups=groups.split(","))
            assert report.failed == []
    return path


@pytest.fixture()
def kb(grouped_kb: Path, tmp_path: Path) -> Iterator[tuple[Workspace, Keys]]:
    path = tmp_path / "kb"
    shutil.copytree(grouped_kb, path)
    with Workspace.open(path) as ws:
        keys = Keys(
            admin=ws.add_user("root", role="admin", groups=["*"], password="correct horse"),
            alice=ws.add_user("alice", role="editor", groups=["sales"], password="alice-pass"),
            bob=ws.add_user("bob", role="viewer", groups=["hr"], password="bob-pass1"),
            carol=ws.add_user("carol", role="viewer", groups=["hr", "sales"]),
        )
        yield ws, keys


@pytest.fixture()
def live(kb: tuple[Workspace, Keys]) -> Iterator[tuple[str, Workspace, Keys]]:
    """A real uvicorn on 127.0.0.1 serving the workspace; yields its base URL."""
    ws, keys = kb
    with running(create_app(ws)) as url:
        yield url, ws, keys
