"""Notion markdown exports: ``Page Title <32-hex id>.md`` files in nested page folders.

A Notion page starts with ``# Title`` followed by its properties as ``Key: value`` lines;
those become metadata (author, date, topic, tags) instead of text.
"""

from __future__ import annotations

import re
from typing import Any

from datawheel.sources.base import SourceDocument
from datawheel.sources.dates import to_iso
from datawheel.sources.decode import decode_text
from datawheel.sources.entries import Entry, base_metadata
from datawheel.sources.markdown import read_blocks
from datawheel.sources.sections import SectionBuilder, squash

_HEX_NAME = re.compile(r"^(?P<title>.*?)\s*(?P<id>[0-9a-f]{32})$")
_TITLE_LINE = re.compile(r"^#[ \t]+(.+?)[ \t]*$")
_PROPERTY = re.compile(r"^(?P<key>[A-Za-z][\w ()/&'-]{0,40}?):[ \t]+(?P<value>\S.*)$")
_AUTHOR_KEYS = ("created by", "author", "owner", "last edited by")
_DATE_KEYS = ("last edited time", "last edited", "updated", "date", "created", "created time")
_TOPIC_KEYS = ("topic", "category", "area")
_TAG_KEYS = ("tags", "tag", "labels")
_RESERVED = frozenset({"kind", "author", "date", "topic", "tags", "groups", "title"})


def is_notion_name(stem: str) -> bool:
    """True for a file or folder name that ends with Notion's 32-hex page id."""
    return bool(_HEX_NAME.match(stem))


def strip_id(name: str) -> str:
    """``"Page Title 1a2b...6d"`` -> ``"Page Title"`` (other names are returned as they are)."""
    match = _HEX_NAME.match(name)
    return squash(match.group("title")) if match and match.group("title").strip() else name


def parse(data: bytes, entry: Entry) -> SourceDocument:
    """Parse one page of a Notion markdown export."""
    lines = decode_text(data).lstrip("\ufeff").split("\n")
    title = strip_id(entry.stem)
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start < len(lines) and (heading := _TITLE_LINE.match(lines[start])):
        title = squash(heading.group(1)) or title
        start += 1
    properties, body_start = _properties(lines, start)
    builder = SectionBuilder()
    read_blocks("\n".join(lines[body_start:]), builder)
    metadata = base_metadata(entry, "notion")
    if page_id := _HEX_NAME.match(entry.stem):
        metadata["notion_id"] = page_id.group("id")
    parent = entry.rel.rsplit("/", 2)[-2] if "/" in entry.rel else ""
    if parent and is_notion_name(parent):
        metadata["topic"] = strip_id(parent)
    metadata.update(property_metadata(properties))
    return SourceDocument(
        uri=entry.uri, title=title, sections=builder.build(title), metadata=metadata
    )


def _properties(lines: list[str], start: int) -> tuple[dict[str, str], int]:
    """Read the ``Key: value`` block after the title; it must end at a blank line or EOF."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    properties: dict[str, str] = {}
    while index < len(lines) and (match := _PROPERTY.match(lines[index].strip())):
        properties[match.group("key").strip()] = match.group("value").strip()
        index += 1
    if not properties or (index < len(lines) and lines[index].strip()):
        return {}, start  # not a property block: keep those lines as text
    return properties, index


def property_metadata(properties: dict[str, str]) -> dict[str, Any]:
    """Map Notion page properties onto metadata; unknown ones are kept in snake_case."""
    by_key = {key.lower(): value for key, value in properties.items()}
    meta: dict[str, Any] = {}
    for key, value in by_key.items():
        name = re.sub(r"\W+", "_", key).strip("_")
        meta[f"notion_{name}" if name in _RESERVED else name] = value
    if author := next((by_key[k] for k in _AUTHOR_KEYS if k in by_key), None):
        meta["author"] = author
    for key in _DATE_KEYS:
        if key in by_key and (iso := to_iso(by_key[key])):
            meta["date"] = iso
            break
    if topic := next((by_key[k] for k in _TOPIC_KEYS if k in by_key), None):
        meta["topic"] = topic
    if tags := next((by_key[k] for k in _TAG_KEYS if k in by_key), None):
        meta["tags"] = [tag.strip() for tag in tags.split(",") if tag.strip()]
    return meta
