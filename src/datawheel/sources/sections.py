"""Build ``Section`` lists from a stream of headings and paragraphs.

Every structured parser (markdown, HTML, docx, Notion, Confluence, PDF outlines) reports what
it reads in document order; the builder keeps the heading stack and groups paragraphs.
"""

from __future__ import annotations

import re

from datawheel.sources.base import Section

_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")
_INLINE_SPACE = re.compile(r"[ \t\u00a0]+")
_TITLE_SEPARATORS = (" - ", " | ", " : ", " \u2013 ", " \u2014 ")


class SectionBuilder:
    """Collect headings and paragraphs; ``build()`` returns the sections in order.

    Example:
        >>> b = SectionBuilder()
        >>> b.heading(1, "Handbook"); b.paragraph("Intro."); b.heading(2, "Refunds")
        >>> b.paragraph("Within 30 days.")
        >>> [s.heading_path for s in b.build()]
        [('Handbook',), ('Handbook', 'Refunds')]
        >>> [s.heading_path for s in b.build(title="Handbook")]
        [(), ('Refunds',)]
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self._paragraphs: list[str] = []
        self._sections: list[Section] = []

    def heading(self, level: int, text: str) -> None:
        """Start a section; ``level`` 1 is the outermost. Empty headings are ignored."""
        text = squash(text)
        if not text:
            return
        self._close()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))

    def paragraph(self, text: str) -> None:
        """Add a paragraph (blank lines inside it split it into several)."""
        for part in split_paragraphs(text):
            self._paragraphs.append(part)

    def build(self, title: str | None = None) -> list[Section]:
        """The sections collected so far; sections without text are dropped.

        A heading path that starts with the document ``title`` (or with the part of it
        before " - ", " | " or " : ", as in "Shipping - Acme") loses that first element:
        consumers show the title next to the heading path, so it would appear twice.
        """
        self._close()
        key = squash(title or "").casefold()
        if not key:
            return list(self._sections)
        return [
            Section(section.heading_path[1:], section.text)
            if section.heading_path and _names_title(section.heading_path[0], key)
            else section
            for section in self._sections
        ]

    def _close(self) -> None:
        if self._paragraphs:
            path = tuple(text for _, text in self._stack)
            self._sections.append(Section(heading_path=path, text="\n\n".join(self._paragraphs)))
        self._paragraphs = []


def _names_title(heading: str, title_key: str) -> bool:
    heading = heading.casefold()
    return title_key == heading or any(
        title_key.startswith(heading + sep) for sep in _TITLE_SEPARATORS
    )


def split_paragraphs(text: str) -> list[str]:
    """Split on blank lines; trim each paragraph and tidy spaces inside its lines."""
    parts = []
    for block in _BLANK_LINES.split(text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [_INLINE_SPACE.sub(" ", line).strip() for line in block.split("\n")]
        block = "\n".join(line for line in lines if line)
        if block:
            parts.append(block)
    return parts


def squash(text: str) -> str:
    """All whitespace runs to one space, trimmed (for titles and headings)."""
    return " ".join(text.split())


def plain_sections(text: str) -> list[Section]:
    """One untitled section holding the paragraphs of ``text`` (none when it is blank)."""
    paragraphs = split_paragraphs(text)
    return [Section(heading_path=(), text="\n\n".join(paragraphs))] if paragraphs else []
