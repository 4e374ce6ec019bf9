"""Bad input never stops discovery: each problem is a failure or a SourceError with a reason."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from datawheel.errors import SourceError
from datawheel.sources import SourceSkipped, discover, entries

from .helpers import make_blank_pdf, run


def load_error(path: Path) -> str:
    (item,), failures = run(path)
    assert failures == []
    with pytest.raises(SourceError) as info:
        item.load()
    return str(info.value)


def test_corrupt_pdf(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"this is not a pdf \x00\x01\x02" * 50)
    reason = load_error(path)
    assert "not a readable PDF" in reason and "re-export" in reason


def test_pdf_without_a_text_layer(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_blank_pdf())
    assert "no text layer; scanned PDFs need OCR" in load_error(path)


def test_corrupt_docx(tmp_path: Path) -> None:
    path = tmp_path / "memo.docx"
    path.write_bytes(b"PK\x03\x04 garbage")
    assert "not a readable .docx" in load_error(path)


def test_binary_file_named_txt(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert "binary content" in load_error(path)


def test_undecodable_bytes_without_nul_named_txt(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(1, 32)) * 64 + bytes(range(128, 256)) * 16)
    assert "binary content" in load_error(path)


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1252", "Le café était crème brûlée, déjà vu — naïve façon “à la” Zürich."),
        ("latin-1", "Résumé des activités : l'équipe a amélioré la qualité à Genève."),
        ("cp1252", "Café"),
        ("shift_jis", "これは日本語のテキストです。東京の天気は晴れです。"),
        ("utf-16", "Grüße aus München"),
    ],
)
def test_non_utf8_text_is_detected_and_decoded(tmp_path: Path, encoding: str, text: str) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode(encoding))
    (item,), _ = run(path)
    assert item.load().text == text


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  \n"])
def test_empty_or_whitespace_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "blank.md"
    path.write_bytes(content)
    assert "empty" in load_error(path)


def test_html_with_no_text_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "app.html"
    path.write_text("<html><head><script>boot()</script></head><body></body></html>", "utf-8")
    assert load_error(path).startswith("empty")


def test_too_large_file_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: no 200 MB is written
    monkeypatch.setattr(entries, "_read_file", lambda p: pytest.fail("the file was read"))

    items, (failure,) = run(path, limit=50 * 1024 * 1024)

    assert items == []
    assert failure.uri == str(path)
    assert "200.0 MB" in failure.reason
    assert "limit of 50.0 MB" in failure.reason
    assert "ingest.max_file_mb" in failure.reason


def test_too_large_file_in_a_folder_does_not_stop_the_walk(tmp_path: Path) -> None:
    with (tmp_path / "a-huge.md").open("wb") as handle:
        handle.truncate(3 * 1024 * 1024)
    (tmp_path / "b.md").write_text("Small.", "utf-8")
    items, (failure,) = run(tmp_path, limit=1024 * 1024)
    assert [item.uri for item in items] == [str(tmp_path / "b.md")]
    assert failure.uri == str(tmp_path / "a-huge.md")


def test_file_without_read_permission(tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="dw-perm-"))  # world-traversable, unlike tmp_path
    folder.chmod(0o755)
    path = folder / "secret.txt"
    path.write_text("classified", "utf-8")
    (folder / "open.txt").write_text("public words", "utf-8")
    path.chmod(0)
    # Root reads files whatever their mode, so as root the walk runs in a child process
    # that has become user "nobody" (everything it needs is imported before the fork).
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            if os.geteuid() == 0:
                os.setuid(65534)
            lines = []
            for found in discover(folder, max_file_bytes=10**9):
                if isinstance(found, SourceSkipped):
                    continue
                text = getattr(found, "reason", None) or found.load().text
                lines.append(f"{found.uri} | {text}")
            os.write(write, "\n".join(lines).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    path.chmod(0o644)
    shutil.rmtree(folder)
    lines = dict(line.split(" | ", 1) for line in out.strip().splitlines())
    assert "permission denied" in lines[str(path)]
    assert lines[str(folder / "open.txt")] == "public words"


def test_permission_error_while_reading_is_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same path as a chmod 000 file, but it also runs as root (where chmod is ignored).
    (tmp_path / "a.txt").write_text("locked", "utf-8")
    (tmp_path / "b.txt").write_text("open", "utf-8")

    def read(path: Path) -> bytes:
        if path.name == "a.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_bytes()

    monkeypatch.setattr(entries, "_read_file", read)
    items, (failure,) = run(tmp_path)
    assert [item.uri for item in items] == [str(tmp_path / "b.txt")]
    assert failure.uri == str(tmp_path / "a.txt")
    assert "cannot read: permission denied" in failure.reason


def test_broken_symlink_in_a_folder_and_given_explicitly(tmp_path: Path) -> None:
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "missing-target.txt")
    (tmp_path / "ok.txt").write_text("fine", "utf-8")

    items, (failure,) = run(tmp_path)
    assert [item.uri for item in items] == [str(tmp_path / "ok.txt")]
    assert failure.uri == str(link) and "broken symbolic link" in failure.reason

    items, (failure,) = run(link)
    assert items == [] and "broken symbolic link" in failure.reason


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_pipe_named_txt_is_not_read(tmp_path: Path) -> None:
    pipe = tmp_path / "x.txt"
    os.mkfifo(pipe)
    items, (failure,) = run(pipe)  # reading a pipe would block forever
    assert items == [] and "not a regular file" in failure.reason
    items, (failure,) = run(tmp_path)
    assert items == [] and "not a regular file" in failure.reason


def test_file_deleted_between_discovery_and_load(tmp_path: Path) -> None:
    path = tmp_path / "short-lived.txt"
    path.write_text("here", "utf-8")
    (item,), _ = run(path)
    path.unlink()
    with pytest.raises(SourceError, match="cannot read"):
        item.load()


def test_unexpected_parser_crash_becomes_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datawheel.sources import discovery

    def crash(data: bytes, entry: object) -> None:
        raise ValueError("parser bug")

    monkeypatch.setitem(discovery._PARSERS, ".txt", crash)
    path = tmp_path / "a.txt"
    path.write_text("text", "utf-8")
    assert "could not parse (ValueError: parser bug)" in load_error(path)


def test_pypdf_warnings_go_to_the_log_not_the_terminal(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    import datawheel.sources.pdf  # noqa: F401  (installs the routing)

    logging.basicConfig(level=logging.WARNING)  # as the CLI does: warnings on stderr
    with caplog.at_level(logging.INFO, logger="datawheel.sources.pdf"):
        # what pypdf logs about a damaged file it still reads
        logging.getLogger("pypdf._reader").warning("Ignoring wrong pointing object 6 0")

    assert "Ignoring wrong pointing object" not in capsys.readouterr().err
    assert [r.getMessage() for r in caplog.records if r.name == "datawheel.sources.pdf"] == [
        "pypdf: Ignoring wrong pointing object 6 0"
    ]
