"""Text normalisation and the sentence splitter."""

from __future__ import annotations

import pytest

from datawheel.clean.text import normalise_text, paragraphs, sentence_spans, word_spans


def test_normalise_composes_unicode_and_strips_controls() -> None:
    assert normalise_text("Cafe\u0301\x00 \u200bbar\x07") == "Café bar"


def test_normalise_collapses_spaces_and_keeps_paragraph_breaks() -> None:
    text = "  One\t\ttwo\u00a0 three  \r\nsame paragraph \r\n\r\n\r\n\n  Next   one.  "
    assert normalise_text(text) == "One two three\nsame paragraph\n\nNext one."


def test_paragraphs_drop_blank_ones() -> None:
    assert paragraphs("a\n\n \n\n\nb\u2029c") == ["a", "b", "c"]


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("It rose 3.5 times. Then fell.", ["It rose 3.5 times.", "Then fell."]),
        (
            "Use tools, e.g. hammers. Or i.e. Nails here.",
            ["Use tools, e.g. hammers.", "Or i.e. Nails here."],
        ),
        (
            "Dr. Smith et al. Found it. See Fig. 2 for more.",
            ["Dr. Smith et al. Found it.", "See Fig. 2 for more."],
        ),
        ("Prepared by J. R. Tolkien. Done.", ["Prepared by J. R. Tolkien.", "Done."]),
        ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
        ("Lower case. after a stop stays.", ["Lower case. after a stop stays."]),
        ("Steps:\n1. Open it.\n2. Close it.", ["Steps:\n1. Open it.", "2. Close it."]),
        ("最初の文。次の文！", ["最初の文。", "次の文！"]),
        ("   ", []),
    ],
)
def test_sentence_spans(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_word_spans_never_cut_a_word() -> None:
    text = "alpha beta gamma delta epsilon " + "x" * 30 + " zeta"
    pieces = [text[s:e] for s, e in word_spans(text, 0, len(text), 12)]
    assert pieces == ["alpha beta", "gamma delta", "epsilon", "x" * 30, "zeta"]
