"""BEIR corpora: a ``.jsonl`` file with one ``{"_id", "title", "text"}`` object per line.

Each line is its own item (uri ``/abs/corpus.jsonl#<_id>``); a malformed line becomes a
failure naming its line number and the other lines are still yielded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

from datawheel.sources.base import (
    Section,
    SourceDocument,
    SourceFailure,
    SourceItem,
    fingerprint,
)
from datawheel.sources.entries import Entry, base_metadata
from datawheel.sources.sections import split_paragraphs, squash


def items(entry: Entry, data: bytes) -> Iterator[SourceItem | SourceFailure]:
    """One item per line of a BEIR corpus file (failures for lines that cannot be used)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield SourceFailure(entry.uri, f"not UTF-8 ({exc.reason}); BEIR corpora are UTF-8")
        return
    lines = text.split("\n")
    if not _looks_like_beir(lines):
        yield SourceFailure(
            entry.uri,
            'not a BEIR corpus: .jsonl files are read as BEIR corpora, one {"_id", "title", '
            '"text"} object per line; convert it or move it out of the source folder',
        )
        return
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, problem = _record(line)
        if record is not None and record["_id"] in seen:
            problem = f"duplicate _id {record['_id']!r}"
            record = None
        if record is None:
            yield SourceFailure(
                f"{entry.uri}#line-{number}", f"line {number}: {problem}; fix or remove the line"
            )
            continue
        seen.add(record["_id"])
        yield SourceItem(
            uri=f"{entry.uri}#{record['_id']}",
            fingerprint=fingerprint(line.encode("utf-8")),
            load=partial(_document, entry, record),
            size=len(line.encode("utf-8")),
        )


def _looks_like_beir(lines: list[str]) -> bool:
    """Any of the first few non-blank lines is a BEIR record (one bad line is not enough)."""
    first = [line for line in lines[:50] if line.strip()][:5]
    return any(_record(line)[0] is not None for line in first)


def _record(line: str) -> tuple[dict[str, Any] | None, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    if not isinstance(record.get("_id"), str | int) or str(record["_id"]).strip() == "":
        return None, 'no "_id"'
    if not isinstance(record.get("text"), str):
        return None, 'no "text" string'
    if not record["text"].strip() and not str(record.get("title") or "").strip():
        return None, "empty text and title"
    record["_id"] = str(record["_id"])
    return record, ""


def _document(entry: Entry, record: dict[str, Any]) -> SourceDocument:
    title = squash(str(record.get("title") or ""))
    body = record["text"] if record["text"].strip() else title
    metadata = base_metadata(entry, "beir")
    metadata["beir_id"] = record["_id"]
    metadata["corpus"] = entry.uri  # which corpus file, so evaluation can stay inside it
    extra = record.get("metadata")
    if isinstance(extra, dict):
        for key, value in extra.items():
            metadata.setdefault(str(key), value)
    return SourceDocument(
        uri=f"{entry.uri}#{record['_id']}",
        title=title or record["_id"],
        sections=[Section(heading_path=(), text="\n\n".join(split_paragraphs(body)))],
        metadata=metadata,
    )
