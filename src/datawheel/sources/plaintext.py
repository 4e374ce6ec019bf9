"""Plain text files: the title is the file name, paragraphs are separated by blank lines."""

from __future__ import annotations

from datawheel.sources.base import SourceDocument
from datawheel.sources.decode import decode_text
from datawheel.sources.entries import Entry, base_metadata
from datawheel.sources.sections import plain_sections


def parse(data: bytes, entry: Entry) -> SourceDocument:
    """Parse a ``.txt`` file (any encoding charset-normalizer can detect)."""
    return SourceDocument(
        uri=entry.uri,
        title=entry.stem,
        sections=plain_sections(decode_text(data)),
        metadata=base_metadata(entry, "txt"),
    )
