"""Word ``.docx`` files, read with python-docx; "Heading N" paragraph styles make sections."""

from __future__ import annotations

import io
import re

import docx  # python-docx (absolute import: not this module)
from docx.table import Table
from docx.text.paragraph import Paragraph

from datawheel.errors import SourceError
from datawheel.sources.base import SourceDocument
from datawheel.sources.dates import to_iso
from datawheel.sources.entries import Entry, base_metadata
from datawheel.sources.sections import SectionBuilder, squash

_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def parse(data: bytes, entry: Entry) -> SourceDocument:
    """Parse a ``.docx`` file: paragraphs, headings and tables (one row per paragraph).

    Raises:
        SourceError: the file is not a readable Word document.
    """
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zip, XML and key errors for damaged files
        raise SourceError(
            f"not a readable .docx ({type(exc).__name__}: {exc}); re-save it from Word as .docx"
        ) from exc
    builder = SectionBuilder()
    title = ""
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style = block.style.name if block.style is not None else ""
            if style == "Title" and not title:
                title = squash(block.text)
            elif heading := _HEADING_STYLE.match(style or ""):
                builder.heading(int(heading.group(1)), block.text)
            else:
                builder.paragraph(block.text)
        elif isinstance(block, Table):
            for row in _rows(block):
                builder.paragraph(row)
    core = document.core_properties
    metadata = base_metadata(entry, "docx")
    if core.author:
        metadata["author"] = squash(core.author)
    stated = core.modified or core.created
    if stated is not None and (iso := to_iso(stated)):
        metadata["date"] = iso
    if core.category or core.subject:
        metadata["topic"] = squash(core.category or core.subject)
    if core.keywords:
        metadata["tags"] = [tag.strip() for tag in re.split(r"[,;]", core.keywords) if tag.strip()]
    title = squash(core.title or "") or title or entry.stem
    return SourceDocument(
        uri=entry.uri,
        title=title,
        sections=builder.build(title),
        metadata=metadata,
    )


def _rows(table: Table) -> list[str]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = squash(cell.text)
            if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return rows
