"""Files found in a folder walk, before they are read.

An ``Entry`` looks the same whether it lives on disk or inside a zip archive (see
``archive.py``), so every format parser and export detector works on both.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from datawheel.sources.base import SourceFailure
from datawheel.sources.dates import from_timestamp


@dataclass(frozen=True)
class Entry:
    """One file in a folder or archive: where it is and how to read it (not read yet).

    ``rel`` is the POSIX path relative to the walked root; ``topic`` the name of the folder
    holding it; ``mtime`` its modification time as an ISO 8601 string.
    """

    uri: str
    rel: str
    size: int
    mtime: str | None
    topic: str | None
    read: Callable[[], bytes]
    path: Path | None = None  # set for files on disk, None for archive members

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        """The lower-case extension with its dot, e.g. ``.md``; empty when there is none."""
        stem, dot, ext = self.name.rpartition(".")
        return f".{ext.lower()}" if dot and stem else ""

    @property
    def stem(self) -> str:
        stem, dot, _ = self.name.rpartition(".")
        return stem if dot and stem else self.name


def base_metadata(entry: Entry, kind: str) -> dict[str, Any]:
    """The metadata every document starts with; parsers overwrite what the source states."""
    return {"kind": kind, "author": None, "date": entry.mtime, "topic": entry.topic}


def is_hidden(name: str) -> bool:
    """Hidden files and folders, macOS archive debris and Office lock files are skipped."""
    return name.startswith((".", "~$")) or name == "__MACOSX"


def file_entry(path: Path, rel: str | None = None) -> Entry:
    """An entry for one file on disk (``stat`` errors propagate as ``OSError``)."""
    stat = path.stat()
    return Entry(
        uri=os.path.abspath(path),
        rel=rel if rel is not None else path.name,
        size=stat.st_size,
        mtime=from_timestamp(stat.st_mtime),
        topic=path.absolute().parent.name or None,
        read=partial(_read_file, path),
        path=path,
    )


def walk_folder(root: Path) -> Iterator[Entry | SourceFailure]:
    """Every non-hidden file under ``root``, sorted by relative path.

    Symbolic links are followed, a linked folder once: a link back to a folder already
    being read (a loop) or read before is reported and skipped. A file or folder that
    cannot be inspected becomes a ``SourceFailure``.
    """
    yield from _walk(root, "", {os.path.realpath(root)})


def _walk(folder: Path, prefix: str, walked: set[str]) -> Iterator[Entry | SourceFailure]:
    try:
        with os.scandir(folder) as it:
            # Sorting a folder as "name/" gives the order of full paths, as in a zip.
            children = sorted(it, key=lambda e: f"{e.name}/" if _is_folder(e) else e.name)
    except OSError as exc:
        yield SourceFailure(os.path.abspath(folder), f"cannot list folder: {os_reason(exc)}")
        return
    for child in children:
        if is_hidden(child.name):
            continue
        rel = f"{prefix}{child.name}"
        path = Path(child.path)
        try:
            if child.is_dir(follow_symlinks=False):
                walked.add(os.path.realpath(path))
                yield from _walk(path, f"{rel}/", walked)
                continue
            if child.is_symlink() and path.is_dir():
                target = os.path.realpath(path)
                if _overlaps(target, walked):
                    yield SourceFailure(
                        os.path.abspath(path),
                        f"symbolic link to a folder read already ({target}): skipped so that "
                        "nothing is read twice or forever (a loop)",
                    )
                    continue
                walked.add(target)
                yield from _walk(path, f"{rel}/", walked)
                continue
            if child.is_symlink() and not path.exists():
                yield SourceFailure(
                    os.path.abspath(path),
                    "cannot read: broken symbolic link (its target is missing); "
                    "fix or remove the link",
                )
                continue
            if child.is_file():
                yield file_entry(path, rel)
            else:
                yield SourceFailure(
                    os.path.abspath(path),
                    "not a regular file (a pipe, socket or device); remove it from the folder",
                )
        except OSError as exc:
            yield SourceFailure(os.path.abspath(path), f"cannot read: {os_reason(exc)}")


def _overlaps(target: str, walked: set[str]) -> bool:
    """Whether a linked folder is, holds or lies inside a folder of this walk."""

    def inside(a: str, b: str) -> bool:
        return a == b or a.startswith(b.rstrip(os.sep) + os.sep)

    return any(inside(target, w) or inside(w, target) for w in walked)


def _is_folder(entry: os.DirEntry[str]) -> bool:
    return entry.is_dir(follow_symlinks=False)


def _read_file(path: Path) -> bytes:
    return path.read_bytes()


_MB = 1024 * 1024
# What reading an entry can raise: OS errors for files, zip/zlib errors for damaged members.
READ_ERRORS = (OSError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


def read_reason(exc: BaseException) -> str:
    """Why an entry could not be read (one of ``READ_ERRORS``), with what to do."""
    if isinstance(exc, OSError):
        return f"cannot read: {os_reason(exc)}"
    return f"damaged archive member ({exc}); re-create or re-download the archive"


def too_big_reason(size: int, limit: int) -> str:
    """The failure reason for a file over the size limit (says how to raise it)."""
    return (
        f"file is {_size(size)}, over the limit of {_size(limit)}; "
        "raise ingest.max_file_mb in datawheel.yaml to read it"
    )


def _size(count: int) -> str:
    return f"{count / _MB:.1f} MB" if count >= _MB // 10 else f"{count:,} bytes"


def os_reason(exc: OSError) -> str:
    """A short reason for an OS error, with what to do about it."""
    if isinstance(exc, PermissionError):
        return "permission denied; give the ingesting user read access or remove the file"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(exc, FileNotFoundError):
        return "the file disappeared or is a broken link; check the path"
    return f"{exc.strerror or exc}; check the file and try again"
