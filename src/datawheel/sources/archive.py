"""Zip archives read in memory: members become entries, nothing is extracted to disk.

A zip inside a zip (a large Notion export is a zip of ``Part-N.zip`` files) is read one
level deep, in memory, within the file size limit; deeper archives are reported.

Members whose names could escape a folder (``../x``, ``/etc/x``, ``C:\\x``) are reported as
unsafe and skipped; the other members are still read.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath

from datawheel.sources.base import SourceFailure
from datawheel.sources.entries import Entry, is_hidden, os_reason

_DRIVE = re.compile(r"^[A-Za-z]:")


def walk_zip(path: Path) -> Iterator[Entry | SourceFailure]:
    """Every non-hidden member of the zip at ``path``, sorted by name.

    A corrupt archive yields one ``SourceFailure``; an unsafe or encrypted member yields a
    failure for that member only.
    """
    uri = os.path.abspath(path)
    try:
        archive = _open(path)
    except OSError as exc:
        yield SourceFailure(uri, f"cannot read archive: {os_reason(exc)}")
        return
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        yield SourceFailure(uri, _unreadable(exc))
        return
    yield from _members(archive, uri, "", path.stem, partial(_read_member, path))


def walk_inner_zip(entry: Entry) -> Iterator[Entry | SourceFailure]:
    """The members of a zip that is itself a member of a zip on disk (a large Notion export
    is a zip of ``Part-N.zip`` files): read into memory, so only within the size limit the
    caller checked. Their uris are ``outer.zip!/inner.zip!/member``."""
    outer, _, name = entry.uri.partition("!/")
    try:
        stat = os.stat(outer)
        archive = _open_inner(outer, stat.st_mtime_ns, stat.st_size, name)
    except OSError as exc:
        yield SourceFailure(entry.uri, f"cannot read archive: {os_reason(exc)}")
        return
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, KeyError) as exc:
        yield SourceFailure(entry.uri, _unreadable(exc))
        return
    yield from _members(
        archive, entry.uri, entry.rel + "/", entry.stem, partial(_read_inner, outer, name)
    )


def _members(
    archive: zipfile.ZipFile,
    uri: str,
    prefix: str,
    topic: str,
    read: Callable[[str], bytes],
) -> Iterator[Entry | SourceFailure]:
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        name = info.filename
        member_uri = f"{uri}!/{name}"
        if is_unsafe(name):
            yield SourceFailure(
                member_uri,
                "unsafe path in archive (it points outside the archive folder); "
                "the member was skipped - re-create the archive with relative paths",
            )
            continue
        if info.is_dir() or any(is_hidden(part) for part in name.split("/")):
            continue
        if info.flag_bits & 0x1:
            yield SourceFailure(
                member_uri, "encrypted archive member; re-create the archive without a password"
            )
            continue
        parent = PurePosixPath(name).parent.name
        yield Entry(
            uri=member_uri,
            rel=prefix + name,
            size=info.file_size,
            mtime=_zip_time(info.date_time),
            topic=parent or topic,
            read=partial(read, name),
        )


def _unreadable(exc: BaseException) -> str:
    return f"not a readable zip archive ({exc}); re-create or re-download the export"


def is_unsafe(name: str) -> bool:
    """True for member names that are absolute or climb out with ``..``."""
    normal = name.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal) or "\x00" in normal:
        return True
    return any(part == ".." for part in normal.split("/"))


def _read_member(path: Path, name: str) -> bytes:
    return _open(path).read(name)


def _read_inner(outer: str, inner: str, name: str) -> bytes:
    stat = os.stat(outer)
    return _open_inner(outer, stat.st_mtime_ns, stat.st_size, inner).read(name)


@lru_cache(maxsize=2)
def _open_inner(outer: str, mtime_ns: int, size: int, inner: str) -> zipfile.ZipFile:
    # the inner archive's bytes stay in memory while its members are read (two at most)
    return zipfile.ZipFile(io.BytesIO(_open_cached(outer, mtime_ns, size).read(inner)))


def _open(path: Path) -> zipfile.ZipFile:
    stat = path.stat()
    return _open_cached(os.path.abspath(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _open_cached(path: str, mtime_ns: int, size: int) -> zipfile.ZipFile:
    # Kept open so that loading many members does not re-read the central directory each
    # time; the key changes (and a fresh handle is opened) when the archive changes.
    return zipfile.ZipFile(path)


def _zip_time(date_time: tuple[int, int, int, int, int, int]) -> str | None:
    try:
        return dt.datetime(*date_time).isoformat()
    except ValueError:
        return None
