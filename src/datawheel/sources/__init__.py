"""Sources: find documents in files, folders, archives and exports; parse them on demand.

    >>> from datawheel.sources import discover, SourceItem
    >>> for found in discover(Path("handbook"), max_file_bytes=50 * 1024 * 1024):
    ...     print(found.uri)

Formats: txt, md, html, pdf, docx, BEIR ``.jsonl`` corpora and ``.zip`` archives, plus the
Notion (markdown), Confluence (HTML) and Slack (JSON) exports found inside folders or zips.
"""

from datawheel.sources.base import (
    Section,
    SourceDocument,
    SourceFailure,
    SourceItem,
    SourceSkipped,
    fingerprint,
)
from datawheel.sources.discovery import SUPPORTED_EXTENSIONS, discover

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Section",
    "SourceDocument",
    "SourceFailure",
    "SourceItem",
    "SourceSkipped",
    "discover",
    "fingerprint",
]
