"""Markdown files: YAML front matter becomes metadata, ``#`` headings become sections."""

from __future__ import annotations

import re
from typing import Any

import yaml

from datawheel.errors import SourceError
from datawheel.sources.base import SourceDocument
from datawheel.sources.dates import to_iso
from datawheel.sources.decode import decode_text
from datawheel.sources.entries import Entry, base_metadata
from datawheel.sources.sections import SectionBuilder, squash

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# documentation-site markup that is layout, not text: MkDocs/Material admonition fences
# (/// tip, !!! note), include directives ({!> file !}, {% include %}), lines that are only
# an HTML tag (<div class="...">), and attribute lists on headings ({ #anchor .class })
_LAYOUT_LINE = re.compile(
    r"^\s*(?:///.*|!!!.*|\?\?\?\+?.*|\{!.*!\}|\{%.*%\}|</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>)\s*$"
)
_ATTR_LIST = re.compile(r"\s*\{\s*[#.:][^{}]*\}\s*$")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_DATE_KEYS = ("date", "updated", "last_modified", "modified", "created")
_KNOWN_KEYS = frozenset(
    {"title", "author", "authors", "topic", "category", "tags", "tag", "groups", *_DATE_KEYS}
)


def parse(data: bytes, entry: Entry) -> SourceDocument:
    """Parse a ``.md``/``.markdown`` file."""
    front, body = split_front_matter(decode_text(data))
    builder = SectionBuilder()
    first_h1 = read_blocks(body, builder)
    metadata = base_metadata(entry, "md")
    metadata.update(front_matter_metadata(front))
    title = squash(str(front.get("title") or "")) or first_h1 or entry.stem
    return SourceDocument(
        uri=entry.uri, title=title, sections=builder.build(title), metadata=metadata
    )


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split a leading ``---`` YAML block from the body.

    Raises:
        SourceError: the block is not valid YAML (the message gives the line to fix).
    """
    text = text.lstrip("\ufeff")
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise SourceError(
            f"invalid YAML front matter{where} ({getattr(exc, 'problem', exc)}); "
            "fix the block between the '---' lines or remove it"
        ) from exc
    if not isinstance(data, dict):
        return {}, text  # a '---' rule, not front matter
    return data, text[match.end() :]


def front_matter_metadata(front: dict[str, Any]) -> dict[str, Any]:
    """Map front-matter keys onto document metadata (author, date, topic, tags, groups).

    ``date`` is taken from the first of date/updated/modified/created that is set; keys
    datawheel does not know are kept as they are (dates as ISO strings).
    """
    keys = {str(key).strip().lower(): value for key, value in front.items() if value is not None}
    meta: dict[str, Any] = {}
    for key, value in keys.items():
        if key in _KNOWN_KEYS:
            continue
        meta[key] = _json_safe(value)
    if "author" in keys or "authors" in keys:
        meta["author"] = ", ".join(_as_list(keys.get("author") or keys.get("authors")))
    date = next((keys[key] for key in _DATE_KEYS if key in keys), None)
    if date is not None:
        iso = to_iso(date)
        if iso:
            meta["date"] = iso
        else:
            meta["date_text"] = str(date)
    topic = keys.get("topic") or keys.get("category")
    if topic:
        meta["topic"] = squash(str(topic))
    for key in ("tags", "groups"):
        value = keys.get(key) or (keys.get("tag") if key == "tags" else None)
        if value:
            meta[key] = _as_list(value)
    return meta


def _json_safe(value: Any) -> Any:
    """Front matter may hold dates and nested values; metadata must serialise as JSON."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    return to_iso(value) or str(value)


def _as_list(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [squash(str(item)) for item in items if squash(str(item))]


def read_blocks(body: str, builder: SectionBuilder) -> str | None:
    """Feed headings and paragraphs of a markdown body to ``builder``.

    Returns:
        The text of the first level-1 heading, if any (a natural title).
    """
    first_h1: str | None = None
    paragraph: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if paragraph:
            builder.paragraph(inline("\n".join(paragraph)))
            paragraph.clear()

    for line in _COMMENT.sub("", body).split("\n"):
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
                flush()
            else:
                paragraph.append(line)
            continue
        if _LAYOUT_LINE.match(line):
            flush()
            continue
        if opening := _FENCE.match(line):
            flush()
            fence = opening.group(1)[0] * 3
            continue
        if atx := _ATX.match(line):
            flush()
            level, text = len(atx.group(1)), inline(_ATTR_LIST.sub("", atx.group(2) or ""))
            builder.heading(level, text)
            if level == 1 and first_h1 is None and squash(text):
                first_h1 = squash(text)
            continue
        if (setext := _SETEXT.match(line)) and paragraph:
            level, text = (1 if setext.group(1)[0] == "=" else 2), inline(" ".join(paragraph))
            paragraph.clear()
            builder.heading(level, text)
            if level == 1 and first_h1 is None and squash(text):
                first_h1 = squash(text)
            continue
        if not line.strip():
            flush()
        else:
            paragraph.append(line)
    flush()
    return first_h1


def inline(text: str) -> str:
    """Links and images become their text; the rest of the markup is kept."""
    return _LINK.sub(r"\1", _IMAGE.sub(r"\1", text))
