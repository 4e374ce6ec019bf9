"""HTML pages: scripts, styles, navigation and the site header and footer dropped (only
``<main>`` read when the page marks one), ``h1``..``h6`` become sections."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from datawheel.sources.base import SourceDocument
from datawheel.sources.decode import decode_text
from datawheel.sources.entries import Entry, base_metadata
from datawheel.sources.sections import SectionBuilder, squash

DROPPED_TAGS = ["script", "style", "nav", "noscript", "template", "svg", "iframe", "head"]
_WHITESPACE = re.compile(r"\s+")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_CELLS = {"td", "th"}
_BLOCK_TAGS = (
    "address article aside blockquote body caption dd details dialog div dl dt fieldset "
    "figcaption figure footer form header hr li main ol p pre section summary table tbody "
    "tfoot thead tr ul"
)
_BLOCKS = frozenset(_BLOCK_TAGS.split())


def parse(data: bytes, entry: Entry) -> SourceDocument:
    """Parse an ``.html``/``.htm`` page; the title is ``<title>``, else the first ``h1``."""
    tree = LexborHTMLParser(decode_text(data))
    title_node = tree.css_first("title")
    h1 = tree.css_first("h1")
    title = squash(title_node.text() if title_node else "") or squash(h1.text() if h1 else "")
    tree.strip_tags(DROPPED_TAGS)
    builder = SectionBuilder()
    read_html(_content_root(tree), builder)
    return SourceDocument(
        uri=entry.uri,
        title=title or entry.stem,
        sections=builder.build(title or entry.stem),
        metadata=base_metadata(entry, "html"),
    )


def _content_root(tree: LexborHTMLParser) -> LexborNode | None:
    """The page's own content: its ``<main>`` when it marks one, else the body without the
    site header and footer around it (the same on every page of a site, so they would only
    add noise to every document)."""
    main = tree.css_first("main") or tree.css_first('[role="main"]')
    if main is not None:
        return main
    body = tree.body
    if body is not None:
        for chrome in body.css("body > header, body > footer"):
            chrome.decompose()
    return body or tree.root


def read_html(root: LexborNode | None, builder: SectionBuilder) -> None:
    """Feed the headings and paragraphs under ``root`` to ``builder``, in document order.

    Block elements end a paragraph, ``<br>`` breaks a line, table cells of a row are joined
    with `` | `` and ``<pre>`` keeps its line breaks.
    """
    if root is None:
        return
    buffer: list[str] = []

    def flush() -> None:
        text = "".join(buffer)
        buffer.clear()
        if text.strip():
            builder.paragraph("\n".join(squash(line) for line in text.split("\n")))

    # An explicit stack instead of recursion: exported pages can nest deeper than Python's
    # recursion limit. ``True`` marks the moment a block element is left.
    stack: list[tuple[LexborNode, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            flush()
            continue
        tag = node.tag or ""
        if tag == "-text":
            buffer.append(_WHITESPACE.sub(" ", node.text_content or ""))
            continue
        if tag.startswith("-") or tag in DROPPED_TAGS:
            continue
        if tag in _HEADINGS:
            flush()
            builder.heading(_HEADINGS[tag], node.text(separator=" "))
            continue
        if tag == "br":
            buffer.append("\n")
            continue
        if tag == "pre":
            flush()
            builder.paragraph(node.text())
            continue
        if tag in _CELLS and "".join(buffer).strip() and not "".join(buffer).endswith("\n"):
            buffer.append(" | ")
        if tag in _BLOCKS:
            flush()
            stack.append((node, True))
        children = list(node.iter(include_text=True))
        stack.extend((child, False) for child in reversed(children))
