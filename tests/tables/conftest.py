from __future__ import annotations

from pathlib import Path

import pytest

from datawheel.tables import TableSource


@pytest.fixture
def write(tmp_path: Path):
    """Write text (or bytes) to a file in tmp_path and return a TableSource for it."""

    def _write(name: str, content: str | bytes, **kw: object) -> TableSource:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return TableSource(name=kw.pop("source", "t"), path=str(path), **kw)  # type: ignore[arg-type]

    return _write


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "cleaned"
