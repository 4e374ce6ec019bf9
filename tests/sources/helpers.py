"""Test helpers: run discovery, build PDFs, Word files and zips in memory (none committed)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx

from datawheel.sources import SourceFailure, SourceItem, SourceSkipped, discover

LIMIT = 50 * 1024 * 1024


def run(path: Path, limit: int = LIMIT) -> tuple[list[SourceItem], list[SourceFailure]]:
    """Discover ``path``; return (items, failures) in the order they were found (files of
    other types, passed over, are in :func:`passed_over`)."""
    found = list(discover(path, max_file_bytes=limit))
    items = [f for f in found if isinstance(f, SourceItem)]
    failures = [f for f in found if isinstance(f, SourceFailure)]
    assert len(items) + len(failures) + len(passed_over(path, limit)) == len(found)
    return items, failures


def passed_over(path: Path, limit: int = LIMIT) -> list[SourceSkipped]:
    """The files discovery passed over as not documents."""
    return [f for f in discover(path, max_file_bytes=limit) if isinstance(f, SourceSkipped)]


def make_pdf(pages: list[list[str]], *, title: str = "", author: str = "") -> bytes:
    """A minimal valid PDF: one Helvetica text line per string, one page per list."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in once the page numbers are known
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    page_ids = []
    for lines in pages:
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_id
        )
        page_ids.append(len(objects))
    kids = b" ".join(b"%d 0 R" % page for page in page_ids)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    objects.append(
        b"<< /Title (%s) /Author (%s) >>" % (title.encode("latin-1"), author.encode("latin-1"))
    )
    info_id = len(objects)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, info_id, xref)
    )
    return out.getvalue()


def make_blank_pdf() -> bytes:
    """A PDF whose only page has no text (what a scan without OCR looks like)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(path: Path) -> Path:
    """A Word file with a title, two heading levels, paragraphs and a table."""
    document = docx.Document()
    document.core_properties.author = "Grace Hopper"
    document.core_properties.keywords = "compilers, navy"
    document.add_heading("Compiler Notes", level=0)
    document.add_paragraph("An opening paragraph before any heading.")
    document.add_heading("Design", level=1)
    document.add_paragraph("The design keeps passes small.")
    document.add_heading("Parser", level=2)
    document.add_paragraph("The parser is hand written.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Pass"
    table.cell(0, 1).text = "Time"
    table.cell(1, 0).text = "Lexing"
    table.cell(1, 1).text = "12 ms"
    document.add_heading("Testing", level=1)
    document.add_paragraph("Every pass has golden tests.")
    document.save(str(path))
    return path


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    """A zip archive with exactly the member names given (unsafe ones included)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), content)
    return path
