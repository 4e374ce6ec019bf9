"""What every source yields: items found cheaply, documents parsed on demand.

Discovery is cheap (a path and a fingerprint of the raw bytes), so an unchanged file is
recognised without parsing it; ``SourceItem.load()`` parses only what changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path, e.g. ("Handbook", "Refunds")."""

    heading_path: tuple[str, ...]
    text: str  # paragraphs separated by blank lines


@dataclass
class SourceDocument:
    """A parsed document, ready to chunk.

    ``metadata`` holds ``author``, ``date`` (ISO 8601 string), ``topic``, ``kind`` (the
    parser that read it: txt, md, html, pdf, docx, notion, confluence, slack, beir) and
    ``groups`` when the source itself names who may read it; any other keys are kept.
    """

    uri: str
    title: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections if s.text)


@dataclass
class SourceItem:
    """One document found by discovery, not parsed yet.

    ``uri`` is the stable identity (absolute path, ``/abs/export.zip!/inner/page.md`` for an
    archive member, ``/abs/corpus.jsonl#doc-id`` for a line). ``fingerprint`` changes when
    the raw content changes. ``load`` parses it and raises ``SourceError`` with a reason.
    """

    uri: str
    fingerprint: str
    load: Callable[[], SourceDocument]
    size: int = 0


@dataclass(frozen=True)
class SourceFailure:
    """Something found during discovery that cannot become an item (with the reason)."""

    uri: str
    reason: str


@dataclass(frozen=True)
class SourceSkipped:
    """A file in a walked folder or archive of a type that is not a document (``.csv``,
    ``.png``...): not read, but counted, so the report says what was passed over."""

    uri: str
    suffix: str


def fingerprint(data: bytes) -> str:
    """A short, stable content hash."""
    return hashlib.sha256(data).hexdigest()[:32]
