"""Turn raw bytes into text: refuse binary or empty content, detect legacy encodings.

UTF-8 is tried first (it is strict, so a successful decode is almost never wrong); other
encodings are guessed with charset-normalizer. Short Western-European texts are ambiguous
between the single-byte code pages, so cp1252 (a superset of latin-1's printable range and the
most common legacy encoding) wins whenever it is as plausible as the best guess.
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer
from charset_normalizer.utils import is_multi_byte_encoding

from datawheel.errors import SourceError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHAOS_TOLERANCE = 0.1  # how much "messier" cp1252 may look than the best guess and still win
# how much less "coherent" (language-like) it may look: on a few lines the scores are noise,
# and an old DOS code page (cp775, cp850) outscored cp1252 on "Zoë ... Süd" by 0.03
_COHERENCE_TOLERANCE = 0.05
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")
_HIGH = re.compile(rb"[\x80-\xff]")
_HIGH_PAIR = re.compile(rb"[\x80-\xff]{2}")


def decode_text(data: bytes) -> str:
    """Decode text bytes, guessing the encoding when they are not UTF-8.

    Raises:
        SourceError: "empty" for empty or whitespace-only content, "binary content" for bytes
            that are not text in any encoding.

    Example:
        >>> decode_text("Café".encode("cp1252"))
        'Café'
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _non_empty(_strict(data, encoding))
    if not data.strip():
        raise SourceError("empty file: it has no text; add content or remove it from the source")
    if b"\x00" in data:
        raise _binary()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _guess(data)
    if _mostly_controls(text):
        raise _binary()
    return _non_empty(text)


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"not valid {encoding} text despite its byte-order mark ({exc.reason}); "
            "re-save the file as UTF-8"
        ) from exc


def _guess(data: bytes) -> str:
    encoding = guess_encoding(data)
    if encoding is None:
        raise _binary()
    return data.decode(encoding)


def guess_encoding(data: bytes) -> str | None:
    """The most plausible encoding of bytes that are not UTF-8 (None: not text at all).

    A byte-order mark decides.
    cp1252 wins over the best guess whenever it is as plausible: charset-normalizer reads a
    short Western-European text as cp1250 or another code page as readily (and "Åsa" then
    comes out as "Ĺsa").
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    if is_multi_byte_encoding(best.encoding):
        if _looks_western(data):
            try:
                data.decode("cp1252")
                return "cp1252"
            except UnicodeDecodeError:
                pass
        return best.encoding
    for match in matches:
        if (
            "cp1252" in match.could_be_from_charset
            and match.chaos <= best.chaos + _CHAOS_TOLERANCE
            and match.coherence >= best.coherence - _COHERENCE_TOLERANCE
        ):
            return "cp1252"
    return best.encoding


def _looks_western(data: bytes) -> bool:
    """Few non-ASCII bytes, rarely side by side: accented letters, not CJK double bytes.

    charset-normalizer may read a short "Caf\\xe9" as a two-byte Asian encoding; in real
    CJK text nearly every non-ASCII byte has a non-ASCII neighbour.
    """
    sample = data[:65536]
    high = len(_HIGH.findall(sample))
    pairs = len(_HIGH_PAIR.findall(sample))
    return high > 0 and pairs * 5 <= high


def _mostly_controls(text: str) -> bool:
    sample = text[:4096]
    controls = sum(1 for ch in sample if ch < " " and ch not in _ALLOWED_CONTROLS)
    return controls > max(2, len(sample) // 50)


def _non_empty(text: str) -> str:
    if not text.strip():
        raise SourceError("empty file: it has no text; add content or remove it from the source")
    return text


def _binary() -> SourceError:
    return SourceError(
        "binary content: the file is not text in any known encoding; "
        "give it the extension of its real format or remove it from the source"
    )
