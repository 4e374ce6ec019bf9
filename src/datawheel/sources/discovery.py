"""Find documents under a path: files, folders, zip archives and the exports inside them.

Discovery reads each file once to fingerprint it and parses nothing: ``SourceItem.load``
parses on demand. Problems never stop the walk; each becomes a ``SourceFailure`` (found
now) or a ``SourceError`` from ``load`` (found while parsing).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from functools import partial
from pathlib import Path

from datawheel.errors import SourceError
from datawheel.sources import (
    beir,
    confluence,
    docx,
    html,
    markdown,
    notion,
    pdf,
    plaintext,
    slack,
)
from datawheel.sources.archive import walk_inner_zip, walk_zip
from datawheel.sources.base import (
    SourceDocument,
    SourceFailure,
    SourceItem,
    SourceSkipped,
    fingerprint,
)
from datawheel.sources.entries import (
    READ_ERRORS,
    Entry,
    file_entry,
    os_reason,
    read_reason,
    too_big_reason,
    walk_folder,
)

logger = logging.getLogger(__name__)

Parser = Callable[[bytes, Entry], SourceDocument]
Found = Iterator[SourceItem | SourceFailure | SourceSkipped]

_PARSERS: dict[str, Parser] = {
    ".txt": plaintext.parse,
    ".md": markdown.parse,
    ".markdown": markdown.parse,
    ".html": html.parse,
    ".htm": html.parse,
    ".pdf": pdf.parse,
    ".docx": docx.parse,
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(sorted([*_PARSERS, ".jsonl", ".zip"]))


def discover(path: Path | str, *, max_file_bytes: int) -> Found:
    """Yield an item for every document under ``path`` and a failure for every problem.

    ``path`` may be a supported file, a folder (walked recursively, names sorted, hidden
    entries skipped, other file types passed over as ``SourceSkipped``) or a ``.zip``
    archive (members read in memory). Notion, Confluence and Slack exports inside a folder
    or archive are recognised. Files larger than ``max_file_bytes`` are reported before they
    are read (for an archive the limit applies to each member's uncompressed size).

    Example:
        >>> for found in discover(Path("docs"), max_file_bytes=50 * 1024 * 1024):
        ...     if isinstance(found, SourceItem):
        ...         doc = found.load()
    """
    path = Path(path)
    uri = os.path.abspath(path)
    if path.is_symlink() and not path.exists():
        yield SourceFailure(uri, "cannot read: broken symbolic link; fix the link or the path")
        return
    if not path.exists():
        yield SourceFailure(uri, "no such file or folder; check the path")
        return
    if path.is_dir():
        yield from _discover_all(walk_folder(path), max_file_bytes, in_archive=False)
        return
    if not path.is_file():
        yield SourceFailure(uri, "not a regular file (a pipe, socket or device); remove it")
        return
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        yield SourceFailure(
            uri,
            f"unsupported file type {suffix or '(no extension)'!r}; supported: "
            f"{', '.join(SUPPORTED_EXTENSIONS)}",
        )
        return
    if suffix == ".zip":
        yield from _discover_all(walk_zip(path), max_file_bytes, in_archive=True)
        return
    try:
        entry = file_entry(path)
    except OSError as exc:
        yield SourceFailure(uri, f"cannot read: {os_reason(exc)}")
        return
    yield from _discover_all([entry], max_file_bytes, in_archive=False)


def _discover_all(
    found: Iterable[Entry | SourceFailure], max_file_bytes: int, *, in_archive: bool
) -> Found:
    found = list(found)
    entries = [item for item in found if isinstance(item, Entry)]
    slack_roots = slack.find_roots(entries, max_file_bytes)
    confluence_roots = confluence.find_roots(entries, max_file_bytes)
    for item in found:
        if isinstance(item, SourceFailure):
            yield item
            continue
        # Inside an export, its own files are read its way; anything else (a stray
        # handbook.md next to users.json) is still read as an ordinary file.
        root = _root_of(item.rel, slack_roots)
        if root is not None and slack.is_day_file(_inside(item.rel, root)):
            users = slack_roots[root]
            parser = partial(slack.parse, users=users.names)
            yield from _one(item, parser, max_file_bytes, salt=users.fingerprint)
            continue
        root = _root_of(item.rel, confluence_roots)
        if root is not None and confluence.is_page(_inside(item.rel, root)):
            yield from _one(item, confluence.parse, max_file_bytes)
            continue
        if root is not None and confluence.is_asset(_inside(item.rel, root)):
            continue
        yield from _discover_file(item, max_file_bytes, in_archive=in_archive)


def _discover_file(entry: Entry, max_file_bytes: int, *, in_archive: bool) -> Found:
    suffix = entry.suffix
    if suffix == ".zip":
        if entry.path is not None:
            yield from _discover_all(walk_zip(entry.path), max_file_bytes, in_archive=True)
        elif entry.uri.count("!/") > 1:
            yield SourceFailure(
                entry.uri,
                "archive three levels deep is not read; extract the outer ones first",
            )
        elif entry.size > max_file_bytes:
            yield SourceFailure(
                entry.uri,
                f"archive inside an archive: {too_big_reason(entry.size, max_file_bytes)}; "
                "or extract the outer one first",
            )
        else:
            yield from _discover_all(walk_inner_zip(entry), max_file_bytes, in_archive=True)
        return
    if suffix == ".jsonl":
        data = yield from _read(entry, max_file_bytes)
        if data is not None:
            yield from beir.items(entry, data)
        return
    if suffix in (".md", ".markdown") and notion.is_notion_name(entry.stem):
        yield from _one(entry, notion.parse, max_file_bytes)
        return
    parser = _PARSERS.get(suffix)
    if parser is not None:
        yield from _one(entry, parser, max_file_bytes)
    else:  # not a document: passed over, but counted for the report
        yield SourceSkipped(entry.uri, suffix or "(no extension)")


def _one(entry: Entry, parser: Parser, max_file_bytes: int, *, salt: str = "") -> Found:
    data = yield from _read(entry, max_file_bytes)
    if data is None:
        return
    yield SourceItem(
        uri=entry.uri,
        fingerprint=fingerprint(data + salt.encode()) if salt else fingerprint(data),
        load=partial(_load, entry, parser),
        size=len(data),
    )


def _read(entry: Entry, max_file_bytes: int) -> Generator[SourceFailure, None, bytes | None]:
    """Read an entry's bytes (returned) after the size check, or yield why it cannot be."""
    if entry.size > max_file_bytes:
        yield SourceFailure(entry.uri, too_big_reason(entry.size, max_file_bytes))
        return None
    try:
        return entry.read()
    except READ_ERRORS as exc:
        yield SourceFailure(entry.uri, read_reason(exc))
    return None


def _load(entry: Entry, parser: Parser) -> SourceDocument:
    try:
        data = entry.read()
    except READ_ERRORS as exc:
        raise SourceError(read_reason(exc)) from exc
    try:
        document = parser(data, entry)
    except SourceError:
        raise
    except Exception as exc:  # a parser library failed in a way it does not document
        logger.debug("parser failed on %s", entry.uri, exc_info=True)
        raise SourceError(
            f"could not parse ({type(exc).__name__}: {exc}); check that the file is valid"
        ) from exc
    if not document.text.strip():
        raise SourceError("empty: no text found in the document; add content or remove it")
    return document


def _root_of(rel: str, roots: Iterable[str]) -> str | None:
    best = None
    for root in roots:
        if (root == "" or rel.startswith(f"{root}/")) and (best is None or len(root) > len(best)):
            best = root
    return best


def _inside(rel: str, root: str) -> str:
    return rel[len(root) + 1 :] if root else rel
