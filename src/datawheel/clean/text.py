"""Text normalisation applied before chunking.

Unicode is composed (NFC), control and invisible formatting characters are removed, runs of
spaces collapse to one, and line structure is kept: single line breaks stay, blank lines
(paragraph breaks) become exactly one empty line.
"""

from __future__ import annotations

import re
import unicodedata

_LINE_BREAKS = str.maketrans(
    {"\r": "\n", "\x0b": "\n", "\x0c": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n"}
)
_ODD_BREAKS = "\r\x0b\x0c\x85\u2028\u2029"
# C0/C1 controls except tab and newline, plus zero-width space, soft hyphen and BOM.
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u200b\ufeff]")
# Only runs that change: an unusual space (tab, no-break, ...) or two or more spaces.
_ODD_SPACE = "\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_SPACES = re.compile(rf"[{_ODD_SPACE}][ {_ODD_SPACE}]*| [ {_ODD_SPACE}]+")
_AROUND_NEWLINE = re.compile(r" \n ?|\n ")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise_text(text: str) -> str:
    """Return ``text`` cleaned for indexing, with its paragraph breaks kept.

    Each step is skipped when a cheap check shows it would change nothing: this runs on
    every section of every document.

    Example:
        >>> normalise_text("Cafe\\u0301  menu\\x00\\r\\n\\r\\n\\r\\n  Open\\tdaily ")
        'Café menu\\n\\nOpen daily'
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if any(ch in text for ch in _ODD_BREAKS):  # str.translate is slow on long non-ASCII text
        text = text.translate(_LINE_BREAKS)
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = _AROUND_NEWLINE.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def paragraphs(text: str) -> list[str]:
    """The non-empty paragraphs of normalised ``text``."""
    return [part for part in normalise_text(text).split("\n\n") if part]


# A sentence ends at . ! ? or … (plus closing quotes/brackets) followed by whitespace, or at
# CJK full-width end punctuation; the regex finds candidates, sentence_spans() vets them.
_CLOSERS = "\"'\u2019\u201d)\\]\u300d\u300f"
_CJK_ENDS = "\u3002\uff01\uff1f"
# One leading character class keeps the scan fast (re then searches for that class only).
_SENTENCE_END = re.compile(rf"[.!?\u2026{_CJK_ENDS}][.!?\u2026{_CJK_ENDS}{_CLOSERS}]*\s*")
_ABBREVIATION_WORDS = (
    "al approx ca cf dept dr e.g eq eqs fig figs i.e inc jr ltd mr mrs ms no nos "
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    "prof ref refs resp sr st vol vols vs viz"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
_OPENERS = "([{\"'\u2018\u201c"


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the sentences of ``text``, whitespace excluded.

    Does not split after common abbreviations (e.g., i.e., Dr., Fig., et al.), initials,
    numbered-list markers or inside decimals, nor before a lower-case word.

    Example:
        >>> text = "Dr. Lee saw 3.5 cases, e.g. mild ones. Fig. 2 shows it. Done!"
        >>> [text[s:e] for s, e in sentence_spans(text)]
        ['Dr. Lee saw 3.5 cases, e.g. mild ones.', 'Fig. 2 shows it.', 'Done!']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text) and text[start].isspace():
        start += 1
    length = len(text)
    for match in _SENTENCE_END.finditer(text, start):
        following = match.end()
        if following >= length or text[following].islower():
            continue
        if not text[following - 1].isspace() and text[match.start()] not in _CJK_ENDS:
            continue  # "3.5", "e.g.," or "x.y": no space after the mark
        if not _ends_sentence(text, match):
            continue
        end = following
        while text[end - 1].isspace():
            end -= 1
        spans.append((start, end))
        start = following
    end = length
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
    return spans


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Rule out a full stop that ends an abbreviation, an initial or a list number."""
    mark = match.start()
    if text[mark] != "." or text[mark + 1 : mark + 2] == ".":
        return True
    word_start = max(text.rfind(" ", 0, mark), text.rfind("\n", 0, mark)) + 1
    word = text[word_start:mark].lstrip(_OPENERS).lower()
    if word in _ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. Smith"
    if "." in word and all(len(part) <= 2 for part in word.split(".")):
        return False  # "U.S.", "a.m."
    # "1." at the start of a line is a list marker, not a sentence
    return not (word.isdigit() and (word_start == 0 or text[word_start - 1] == "\n"))


def word_spans(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` at spaces into pieces of at most ``limit`` characters.

    A single word longer than ``limit`` is kept whole (words are never cut).
    """
    pieces: list[tuple[int, int]] = []
    piece_start = piece_end = -1
    for match in _WORD.finditer(text, start, end):
        if piece_start < 0:
            piece_start, piece_end = match.start(), match.end()
        elif match.end() - piece_start <= limit:
            piece_end = match.end()
        else:
            pieces.append((piece_start, piece_end))
            piece_start, piece_end = match.start(), match.end()
    if piece_start >= 0:
        pieces.append((piece_start, piece_end))
    return pieces


_WORD = re.compile(r"\S+")
