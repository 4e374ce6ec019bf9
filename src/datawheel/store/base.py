"""The records the store keeps and the Protocols every backend implements."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass
class DocumentRecord:
    id: str
    uri: str
    fingerprint: str
    title: str
    kind: str
    groups: list[str]
    author: str | None = None
    date: str | None = None
    topic: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChunkRecord:
    id: str
    doc_id: str
    ord: int
    heading: str
    text: str
    text_hash: str


@dataclass
class ChunkView(ChunkRecord):
    """A chunk with the fields of its document that search shows and filters on."""

    title: str
    uri: str
    groups: list[str]
    fields: dict[str, str]  # filterable: kind, author, date, topic, title, uri + scalar meta


@dataclass
class DocumentWrite:
    """One document with all its chunks: written, or not, as a unit."""

    document: DocumentRecord
    chunks: list[ChunkRecord]


_SCALAR = (str, int, float)


def document_fields(doc: DocumentRecord) -> dict[str, str]:
    """The filterable fields of a document's chunks: its columns plus scalar metadata."""
    fields = {
        k: str(v) for k, v in doc.meta.items() if isinstance(v, _SCALAR) and not isinstance(v, bool)
    }
    for key in ("kind", "author", "date", "topic", "title", "uri"):
        value = getattr(doc, key)
        if value is not None:
            fields[key] = str(value)
    fields["doc_id"] = doc.id
    return fields


class Store(Protocol):
    """Documents, chunks and the embedding cache."""

    def document_states(self, uri_prefix: str | None = None) -> dict[str, tuple[str, str]]:
        """uri → (document id, fingerprint), optionally only under a uri prefix."""
        ...

    def write_documents(
        self, writes: list[DocumentWrite], vectors: Mapping[str, np.ndarray], model_id: str
    ) -> None:
        """Replace each document and its chunks, and cache vectors, in one transaction."""
        ...

    def delete_documents(self, doc_ids: Iterable[str]) -> int: ...

    def chunks(self, ids: Iterable[str] | None = None) -> Iterator[ChunkView]: ...

    def chunk_ids(self) -> set[str]: ...

    def chunk_text_hashes(self) -> dict[str, str]:
        """Every chunk id with the hash of its indexed text (the same wherever it lives)."""
        ...

    def chunk_ids_of(self, doc_ids: Iterable[str]) -> list[str]: ...

    def cached_vectors(
        self, text_hashes: Iterable[str], model_id: str
    ) -> dict[str, np.ndarray]: ...

    def counts(self) -> dict[str, int]: ...


class RunLog(Protocol):
    """Job runs (ingest, evaluate, ...), ingest failures and evaluation results."""

    def start_run(self, kind: str, params: dict[str, Any]) -> int: ...

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any]) -> None: ...

    def record_failures(self, run_id: int, failures: list[tuple[str, str, str | None]]) -> None:
        """(uri, reason, fingerprint) for each item that could not be ingested."""
        ...

    def clear_failures(self, uris: Iterable[str]) -> None: ...

    def record_evaluation(self, run_id: int | None, row: dict[str, Any]) -> int: ...

    def list_runs(self, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]: ...
