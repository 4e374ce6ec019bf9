"""Split a parsed document into chunks that follow its structure.

Sections are chunked on their own; inside a section whole paragraphs are packed greedily up
to ``target_chars``, and a paragraph too long for one chunk is packed sentence by sentence (a
sentence longer than a chunk is split between words). Consecutive chunks of a section
overlap by whole trailing sentences of at most ``overlap_chars``. Small neighbouring sections
under the same parent heading share one chunk.

Offsets, not copies, are moved around while packing, so chunk text is always a verbatim
slice of the normalised paragraphs: no word is ever cut, and the output is deterministic.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from datawheel.clean.text import normalise_text, sentence_spans, word_spans
from datawheel.sources.base import SourceDocument

_PARAGRAPH_BREAK = "\n\n"

Piece = tuple[int, int, int]  # (paragraph index, start, end) inside one section's paragraphs


@dataclass(frozen=True)
class Chunk:
    """One piece of a document, numbered from 0 in reading order."""

    ord: int
    text: str
    heading_path: tuple[str, ...]


def chunk_document(
    doc: SourceDocument, target_chars: int = 1000, overlap_chars: int = 150
) -> list[Chunk]:
    """Chunk ``doc`` into pieces of about ``target_chars`` characters.

    Chunks are at most ``target_chars`` long, except one made of a single word longer than
    that. Empty documents give no chunks.

    Raises:
        ValueError: ``target_chars`` is not positive or ``overlap_chars`` is negative.

    Example:
        >>> from datawheel.sources.base import Section
        >>> doc = SourceDocument("a.md", "A", [Section(("Refunds",), "Within 30 days.")])
        >>> chunk_document(doc)
        [Chunk(ord=0, text='Within 30 days.', heading_path=('Refunds',))]
    """
    if target_chars < 1:
        raise ValueError(f"target_chars must be at least 1, got {target_chars}; try 1000")
    if overlap_chars < 0:
        raise ValueError(f"overlap_chars must be 0 or more, got {overlap_chars}; try 150")
    chunks: list[Chunk] = []
    for path, paragraphs in _merge_small(_sections(doc), target_chars):
        for text in _pack(paragraphs, target_chars, overlap_chars):
            chunks.append(Chunk(len(chunks), text, path))
    return chunks


def _sections(doc: SourceDocument) -> list[tuple[tuple[str, ...], list[str]]]:
    found = []
    for section in doc.sections:
        paragraphs = [p for p in normalise_text(section.text).split(_PARAGRAPH_BREAK) if p]
        if paragraphs:
            found.append((section.heading_path, paragraphs))
    return found


def _merge_small(
    sections: list[tuple[tuple[str, ...], list[str]]], target: int
) -> list[tuple[tuple[str, ...], list[str]]]:
    """Join neighbouring sections that fit one chunk together and share a parent heading.

    A joined section keeps the first one's heading path; the headings of the others
    (relative to it, e.g. "Windows" or "Windows > Holidays") are kept as a line of text,
    so the chunk still says what each part is about.
    """
    groups: list[tuple[tuple[str, ...], list[str]]] = []
    size = 0
    for path, paragraphs in sections:
        length = _joined_length(paragraphs)
        if groups:
            first_path, joined = groups[-1]
            heading = _relative_heading(first_path, path)
            extra = len(_PARAGRAPH_BREAK) + length
            extra += len(heading) + len(_PARAGRAPH_BREAK) if heading else 0
            if size + extra <= target and _related(first_path, path):
                joined.extend([heading, *paragraphs] if heading else paragraphs)
                size += extra
                continue
        groups.append((path, list(paragraphs)))
        size = length
    return groups


def _related(first: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """``path`` is under ``first`` or a sibling of it (same parent heading)."""
    return path[: len(first)] == first or path[:-1] == first[:-1]


def _relative_heading(first: tuple[str, ...], path: tuple[str, ...]) -> str:
    common = 0
    while common < min(len(first), len(path)) and first[common] == path[common]:
        common += 1
    return " > ".join(path[common:])


def _joined_length(paragraphs: list[str]) -> int:
    return sum(len(p) for p in paragraphs) + len(_PARAGRAPH_BREAK) * (len(paragraphs) - 1)


class _Packer:
    """Greedy packing of pieces of one section into chunk texts, with sentence overlap."""

    def __init__(self, paragraphs: list[str], target: int, overlap: int) -> None:
        self.paragraphs = paragraphs
        self.target = target
        self.overlap = overlap
        self.chunks: list[str] = []
        self.current: list[Piece] = []
        self.length = 0
        self.repeated = 0  # leading pieces of ``current`` copied from the previous chunk
        self._sentences: dict[int, list[tuple[int, int]]] = {}

    def fits(self, piece: Piece) -> bool:
        return self.length + self._growth(piece) <= self.target

    def add(self, piece: Piece) -> None:
        self.length += self._growth(piece)
        self.current.append(piece)

    def place(self, piece: Piece) -> None:
        """Add ``piece``, first closing the chunk (and trimming its overlap) if it is full."""
        if self.current and not self.fits(piece):
            if len(self.current) > self.repeated:
                self.close()
            while self.current and not self.fits(piece):
                self._drop_first()
        self.add(piece)

    def close(self) -> None:
        """Emit the current chunk and start the next with its trailing sentences."""
        if len(self.current) > self.repeated:
            self.chunks.append(self._render(self.current))
        self.current = self._tail() if self.overlap else []
        self.repeated = len(self.current)
        self.length = self._measure(self.current)

    def _drop_first(self) -> None:
        self.current.pop(0)
        self.repeated = max(0, self.repeated - 1)
        self.length = self._measure(self.current)

    def _tail(self) -> list[Piece]:
        """The last whole sentences of the current chunk totalling at most ``overlap``.

        Never the whole chunk (its first sentence is left out) and never part of a
        sentence (a long sentence split between words gives no overlap).
        """
        sentences = self._whole_sentences(self.current)
        tail: list[Piece] = []
        for piece in reversed(sentences[1:]):
            if piece is None:
                break
            candidate = [piece, *tail]
            if self._measure(candidate) > self.overlap:
                break
            tail = candidate
        return tail

    def _whole_sentences(self, pieces: list[Piece]) -> list[Piece | None]:
        """``pieces`` cut into their sentences; ``None`` for a piece of a long sentence."""
        out: list[Piece | None] = []
        for index, start, end in pieces:
            spans = self.sentences(index)
            first, last = bisect_left(spans, (start, 0)), bisect_left(spans, (end, 0))
            inside = [(index, s, e) for s, e in spans[first:last] if e <= end]
            out.extend(inside or [None])
        return out

    def sentences(self, index: int) -> list[tuple[int, int]]:
        """Sentence spans of paragraph ``index`` (computed once, sorted by start)."""
        if index not in self._sentences:
            self._sentences[index] = sentence_spans(self.paragraphs[index])
        return self._sentences[index]

    def _growth(self, piece: Piece) -> int:
        index, start, end = piece
        if not self.current:
            return end - start
        last_index, _, last_end = self.current[-1]
        if last_index == index and start >= last_end:
            return end - last_end  # continues the same paragraph, gap included
        return len(_PARAGRAPH_BREAK) + end - start

    def _measure(self, pieces: list[Piece]) -> int:
        runs = self._runs(pieces)
        return sum(end - start for _, start, end in runs) + len(_PARAGRAPH_BREAK) * max(
            0, len(runs) - 1
        )

    def _render(self, pieces: list[Piece]) -> str:
        return _PARAGRAPH_BREAK.join(
            self.paragraphs[index][start:end] for index, start, end in self._runs(pieces)
        )

    @staticmethod
    def _runs(pieces: list[Piece]) -> list[Piece]:
        """Merge consecutive pieces of the same paragraph into one slice."""
        runs: list[Piece] = []
        for index, start, end in pieces:
            if runs and runs[-1][0] == index and start >= runs[-1][2]:
                runs[-1] = (index, runs[-1][1], end)
            else:
                runs.append((index, start, end))
        return runs


def _pack(paragraphs: list[str], target: int, overlap: int) -> list[str]:
    packer = _Packer(paragraphs, target, overlap)
    for index, paragraph in enumerate(paragraphs):
        if len(paragraph) <= target:
            packer.place((index, 0, len(paragraph)))
            continue
        for start, end in packer.sentences(index):
            if end - start <= target:
                packer.place((index, start, end))
            else:
                for piece_start, piece_end in word_spans(paragraph, start, end, target):
                    packer.place((index, piece_start, piece_end))
    packer.close()
    return packer.chunks
