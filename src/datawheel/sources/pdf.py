"""PDF files, read with pypdf: the text layer page by page, the outline as headings."""

from __future__ import annotations

import io
import logging
import re
import warnings
from typing import Any

from pypdf import PdfReader

from datawheel.errors import SourceError
from datawheel.sources.base import SourceDocument
from datawheel.sources.dates import to_iso
from datawheel.sources.entries import Entry, base_metadata
from datawheel.sources.sections import SectionBuilder, squash

logger = logging.getLogger(__name__)


class _ToOurLog(logging.Handler):
    """pypdf's own warnings about damaged files ("Ignoring wrong pointing object", ...) go
    to datawheel's log at INFO (shown with --verbose), not to the user's terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.info("pypdf: %s", record.getMessage())


_pypdf_log = logging.getLogger("pypdf")
_pypdf_log.addHandler(_ToOurLog())
_pypdf_log.propagate = False

_HYPHENATED = re.compile(r"(\w)-\n(?=[a-z])")
_SENTENCE_END = (".", "!", "?", ":", '."', ".)")


def parse(data: bytes, entry: Entry) -> SourceDocument:
    """Parse a ``.pdf`` file that has a text layer.

    Raises:
        SourceError: the file is not a readable PDF, is encrypted, or has no text layer.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader = _open(data)
        pages = [_page_text(reader, number) for number in range(len(reader.pages))]
    for warning in caught:
        logger.info("pypdf: %s (%s)", warning.message, entry.uri)
    if not any(text.strip() for text in pages):
        raise SourceError(
            "no text layer; scanned PDFs need OCR - run it through OCR (e.g. ocrmypdf) "
            "and ingest the result"
        )
    outline = _outline(reader)
    builder = SectionBuilder()
    for number, text in enumerate(pages):
        for level, heading in outline.get(number, []):
            builder.heading(level, heading)
        for paragraph in _paragraphs(text):
            builder.paragraph(paragraph)
    info: Any = _safe(lambda: reader.metadata) or {}
    metadata = base_metadata(entry, "pdf")
    metadata["pages"] = len(pages)
    author = squash(str(_safe(lambda: info.author) or ""))
    if author:
        metadata["author"] = author
    stated = _safe(lambda: info.modification_date) or _safe(lambda: info.creation_date)
    if stated is not None and (iso := to_iso(stated)):
        metadata["date"] = iso
    title = squash(str(_safe(lambda: info.title) or "")) or entry.stem
    return SourceDocument(
        uri=entry.uri, title=title, sections=builder.build(title), metadata=metadata
    )


def _open(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError("encrypted PDF; remove the password and ingest it again")
        len(reader.pages)  # forces the page tree to be read, where most damage shows
    except SourceError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise SourceError(
            f"not a readable PDF ({type(exc).__name__}: {exc}); the file is damaged or not a "
            "PDF - re-export or re-download it"
        ) from exc
    return reader


def _page_text(reader: PdfReader, number: int) -> str:
    try:
        return reader.pages[number].extract_text() or ""
    except Exception as exc:  # one bad page should not lose the whole document
        logger.warning("page %d: no text extracted (%s)", number + 1, exc)
        return ""


def _paragraphs(text: str) -> list[str]:
    """Rebuild paragraphs from extracted lines: a short line ending a sentence ends one."""
    text = _HYPHENATED.sub(r"\1", text.replace("\r\n", "\n"))
    lines = [squash(line) for line in text.split("\n")]
    longest = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        if current and (not line or (line.endswith(_SENTENCE_END) and len(line) < 0.7 * longest)):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def _outline(reader: PdfReader) -> dict[int, list[tuple[int, str]]]:
    """Bookmarks by the page they point to: ``{page: [(level, title), ...]}``."""
    found: dict[int, list[tuple[int, str]]] = {}

    def visit(items: list[Any], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                visit(item, level + 1)
                continue
            page = _safe(lambda item=item: reader.get_destination_page_number(item))
            title = squash(str(getattr(item, "title", "") or ""))
            if page is not None and page >= 0 and title:
                found.setdefault(page, []).append((level, title))

    visit(_safe(lambda: reader.outline) or [], 1)
    return found


def _safe(get: Any) -> Any:
    try:
        return get()
    except Exception:  # damaged metadata or outline is optional: read the text anyway
        return None
