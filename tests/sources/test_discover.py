"""Folder walks, single files, fingerprints and lazy loading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datawheel.errors import SourceError
from datawheel.sources import SUPPORTED_EXTENSIONS, SourceItem, discover, fingerprint

from .helpers import passed_over, run


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_walk_is_recursive_sorted_and_skips_hidden_and_unknown(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "Bee notes.")
    write(tmp_path / "a" / "z.md", "# Zed\n\nZed text.")
    write(tmp_path / "a" / "y.html", "<title>Why</title><p>Why text.</p>")
    write(tmp_path / ".git" / "config.txt", "hidden folder")
    write(tmp_path / ".secret.md", "hidden file")
    write(tmp_path / "photo.png", "not a document")
    write(tmp_path / "data.csv", "a,b")

    items, failures = run(tmp_path)

    assert failures == []
    rels = [Path(item.uri).relative_to(tmp_path).as_posix() for item in items]
    assert rels == ["a/y.html", "a/z.md", "b.txt"]
    assert all(os.path.isabs(item.uri) for item in items)
    assert sorted(s.suffix for s in passed_over(tmp_path)) == [".csv", ".png"]  # counted


def test_discover_accepts_a_single_file_and_a_str_path(tmp_path: Path) -> None:
    path = write(tmp_path / "one.txt", "Only one.")
    items, failures = run(path)
    assert [item.uri for item in items] == [str(path)]
    assert list(discover(str(path), max_file_bytes=1000))[0].uri == str(path)
    assert failures == []


def test_fingerprint_is_of_the_raw_bytes_and_changes_with_them(tmp_path: Path) -> None:
    path = write(tmp_path / "doc.txt", "Version one.")
    (first,), _ = run(path)
    assert first.fingerprint == fingerprint(b"Version one.")
    assert first.size == len(b"Version one.")
    (again,), _ = run(path)
    assert again.fingerprint == first.fingerprint
    write(path, "Version two.")
    (changed,), _ = run(path)
    assert changed.fingerprint != first.fingerprint


def test_discovery_does_not_parse_load_does(tmp_path: Path) -> None:
    write(tmp_path / "bad.md", "---\ntitle: [unclosed\n---\n\nBody.")
    (item,), failures = run(tmp_path)
    assert failures == []
    with pytest.raises(SourceError, match=r"invalid YAML front matter at line \d+ .*fix the block"):
        item.load()


def test_unsupported_file_given_explicitly_names_the_supported_extensions(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "sheet.xlsx", "x")
    items, (failure,) = run(path)
    assert items == []
    assert failure.uri == str(path)
    assert "unsupported file type '.xlsx'" in failure.reason
    for ext in SUPPORTED_EXTENSIONS:
        assert ext in failure.reason


def test_missing_path_is_a_failure(tmp_path: Path) -> None:
    items, (failure,) = run(tmp_path / "nope")
    assert items == [] and "no such file or folder" in failure.reason


def test_every_document_has_kind_author_date_topic(tmp_path: Path) -> None:
    path = write(tmp_path / "notes" / "standup.txt", "First point.\n\nSecond point.")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    (item,), _ = run(tmp_path)
    doc = item.load()
    assert doc.title == "standup"
    assert doc.metadata == {
        "kind": "txt",
        "author": None,
        "date": "2023-11-14T22:13:20+00:00",
        "topic": "notes",
    }
    assert "groups" not in doc.metadata
    assert doc.sections[0].text == "First point.\n\nSecond point."


def test_load_can_be_called_again(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "# A\n\nText.")
    (item,), _ = run(tmp_path)
    assert isinstance(item, SourceItem)
    assert item.load() == item.load()
