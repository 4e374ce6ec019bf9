"""Confluence HTML space exports: ``index.html`` plus one page per file.

Each page has ``<title>Space : Page</title>``, its text in ``div#main-content``, a
``div.page-metadata`` line ("Created by NAME, last modified on DATE") and breadcrumbs in
``ol#breadcrumbs``. The ``attachments/``, ``images/`` and ``styles/`` folders are assets.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

from datawheel.sources.base import SourceDocument
from datawheel.sources.dates import to_iso
from datawheel.sources.decode import decode_text
from datawheel.sources.entries import READ_ERRORS, Entry, base_metadata
from datawheel.sources.html import DROPPED_TAGS, read_html
from datawheel.sources.sections import SectionBuilder, squash

ASSET_FOLDERS = frozenset({"attachments", "images", "styles"})
_SNIFF_BYTES = 1 << 20
_MARKERS = (b"confluence", b'id="main-content"', b"id='main-content'")
_CREATED = re.compile(
    r"Created by (?P<author>.+?)"
    r"(?:, last (?:modified|updated)(?: by (?P<editor>.+?))? on (?P<modified>.+?)"
    r"| on (?P<created>.+?))?\s*$",
    re.IGNORECASE,
)


def find_roots(entries: list[Entry], max_file_bytes: int) -> set[str]:
    """Export folders (relative, "" for the top) whose ``index.html`` is Confluence's."""
    roots = set()
    for entry in entries:
        if entry.name != "index.html" or entry.size > max_file_bytes:
            continue
        try:
            head = entry.read()[:_SNIFF_BYTES].lower()
        except READ_ERRORS:
            continue  # an unreadable index is just not an export marker
        if any(marker in head for marker in _MARKERS):
            roots.add(entry.rel.rpartition("/")[0])
    return roots


def is_page(rel_in_root: str) -> bool:
    """True for a page of the export (an HTML file that is not the index or an asset)."""
    return rel_in_root.lower().endswith((".html", ".htm")) and not is_asset(rel_in_root)


def is_asset(rel_in_root: str) -> bool:
    """True for the space index and the files under attachments/, images/ and styles/."""
    return rel_in_root == "index.html" or rel_in_root.split("/")[0] in ASSET_FOLDERS


def parse(data: bytes, entry: Entry) -> SourceDocument:
    """Parse one page of a Confluence HTML export."""
    tree = LexborHTMLParser(decode_text(data))
    title_node = tree.css_first("#title-text") or tree.css_first("title")
    space, page = _split_title(squash(title_node.text() if title_node else ""))
    crumbs = [squash(node.text()) for node in tree.css("#breadcrumbs li")]
    crumbs = [crumb for crumb in crumbs if crumb]
    metadata = base_metadata(entry, "confluence")
    metadata["topic"] = space or (crumbs[0] if crumbs else entry.topic)
    metadata["breadcrumbs"] = crumbs
    info = tree.css_first(".page-metadata")
    if info is not None and (match := _CREATED.search(squash(info.text(separator=" ")))):
        metadata["author"] = squash(match.group("author"))
        if match.group("editor"):
            metadata["last_modified_by"] = squash(match.group("editor"))
        stated = match.group("modified") or match.group("created")
        if stated and (iso := to_iso(stated)):
            metadata["date"] = iso
    main = tree.css_first("#main-content") or tree.body
    if main is not None:
        main.strip_tags(DROPPED_TAGS)
    builder = SectionBuilder()
    read_html(main, builder)
    return SourceDocument(
        uri=entry.uri, title=page or entry.stem, sections=builder.build(page), metadata=metadata
    )


def _split_title(title: str) -> tuple[str | None, str]:
    space, sep, page = title.partition(" : ")
    return (squash(space), squash(page)) if sep else (None, title)
