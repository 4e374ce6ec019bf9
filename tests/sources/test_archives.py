"""Zip archives: members read in memory, unsafe names refused, damage reported."""

from __future__ import annotations

import zipfile
from pathlib import Path

from .helpers import make_zip, run


def test_members_are_treated_like_files_in_a_folder(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "docs.zip",
        {
            "guide/intro.md": "# Intro\n\nHello from the zip.",
            "notes.txt": "Plain note.",
            "guide/logo.png": b"\x89PNG",
            ".hidden.md": "skip me",
            "__MACOSX/guide/._intro.md": "resource fork",
        },
    )
    items, failures = run(path)
    assert failures == []
    assert [item.uri for item in items] == [f"{path}!/guide/intro.md", f"{path}!/notes.txt"]
    doc = items[0].load()
    assert doc.title == "Intro"
    assert doc.text == "Hello from the zip."
    assert doc.metadata["date"] == "2024-01-02T03:04:06"
    assert doc.metadata["topic"] == "guide"
    assert items[1].load().metadata["topic"] == "docs"  # top-level member: the archive


def test_zip_inside_a_folder_is_walked(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Folder file.", "utf-8")
    make_zip(tmp_path / "b.zip", {"inner.txt": "Zipped file."})
    items, failures = run(tmp_path)
    assert failures == []
    assert [item.uri for item in items] == [str(tmp_path / "a.txt"), f"{tmp_path}/b.zip!/inner.txt"]


def test_unsafe_member_paths_are_refused_and_the_rest_still_yielded(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "evil.zip",
        {
            "../../escape.md": "# Escape",
            "/etc/absolute.md": "# Absolute",
            "C:\\windows\\drive.md": "# Drive",
            "good.md": "# Good\n\nSafe text.",
        },
    )
    with zipfile.ZipFile(path) as archive:  # the names really are stored as given
        assert "../../escape.md" in archive.namelist()
        assert "/etc/absolute.md" in archive.namelist()
    before = set(tmp_path.parent.rglob("*"))

    items, failures = run(path)

    assert [item.uri for item in items] == [f"{path}!/good.md"]
    assert items[0].load().text == "Safe text."
    assert len(failures) == 3
    assert all("unsafe path in archive" in f.reason for f in failures)
    assert {f.uri.split("!/", 1)[1] for f in failures} == {
        "../../escape.md",
        "/etc/absolute.md",
        "C:\\windows\\drive.md",
    }
    assert set(tmp_path.parent.rglob("*")) == before  # nothing was extracted anywhere


def test_corrupt_zip_is_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive" * 10)
    items, (failure,) = run(path)
    assert items == []
    assert failure.uri == str(path)
    assert "not a readable zip archive" in failure.reason


def test_truncated_zip_in_a_folder_is_a_failure_and_the_walk_goes_on(tmp_path: Path) -> None:
    whole = make_zip(tmp_path / "whole.zip", {"a.txt": "x" * 5000}).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "whole.zip").unlink()
    (tmp_path / "z.txt").write_text("After the broken archive.", "utf-8")
    items, failures = run(tmp_path)
    assert [item.uri for item in items] == [str(tmp_path / "z.txt")]
    assert len(failures) == 1 and failures[0].uri == str(tmp_path / "cut.zip")


def test_archive_inside_an_archive_is_read_one_level_deep(tmp_path: Path) -> None:
    """A large Notion export is a zip of Part-N.zip files; a third level is reported."""
    deepest = make_zip(tmp_path / "deepest.zip", {"x.txt": "too deep"}).read_bytes()
    notion = "Onboarding 0123456789abcdef0123456789abcdef.md"
    part = make_zip(
        tmp_path / "part.zip",
        {f"Team/{notion}": "# Onboarding\n\nLaptops on day one.", "deeper.zip": deepest},
    ).read_bytes()
    path = make_zip(tmp_path / "outer.zip", {"Part-1.zip": part, "b.txt": "outer"})
    items, (failure,) = run(path)
    inner = f"{path}!/Part-1.zip!/Team/{notion}"
    assert [item.uri for item in items] == [inner, f"{path}!/b.txt"]
    doc = items[0].load()
    assert doc.title == "Onboarding" and "Laptops on day one." in doc.text
    assert doc.metadata["topic"] == "Team" and doc.metadata["kind"] == "notion"
    assert failure.uri == f"{path}!/Part-1.zip!/deeper.zip"
    assert "three levels deep" in failure.reason
    # over the size limit the inner archive is refused by its header, nothing read
    (big,) = run(path, limit=len(part) - 1)[1][:1]
    assert big.uri == f"{path}!/Part-1.zip" and "over the limit" in big.reason


def test_member_over_the_size_limit_is_refused_by_its_header(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.zip", {"big.txt": "word " * 1000, "small.txt": "ok"})
    items, (failure,) = run(path, limit=1000)
    assert [item.uri for item in items] == [f"{path}!/small.txt"]
    assert "5,000 bytes" in failure.reason and "ingest.max_file_mb" in failure.reason
