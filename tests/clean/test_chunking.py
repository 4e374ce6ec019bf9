"""Structure-following chunking: sizes, overlap, headings, whole words, determinism."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import pytest

from datawheel.clean.chunking import Chunk, chunk_document
from datawheel.clean.text import normalise_text, sentence_spans
from datawheel.sources import Section, SourceDocument

VOCABULARY = (
    "river stone maple lantern copper harbor velvet meadow signal orbit cedar willow "
    "granite falcon ember thistle quartz marble canyon prairie glacier tundra"
)
WORDS = VOCABULARY.split()


def prose(seed: int, sentences: int) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 22))]
        out.append(" ".join(words).capitalize() + rng.choice([".", ".", ".", "!", "?"]))
    return " ".join(out)


def doc_of(*sections: Section) -> SourceDocument:
    return SourceDocument(uri="mem://doc", title="Doc", sections=list(sections))


LONG = doc_of(
    Section(("Guide",), prose(1, 30)),
    Section(("Guide", "Setup"), prose(2, 3) + "\n\n" + prose(3, 40) + "\n\n" + prose(4, 5)),
    Section(("Guide", "Usage"), prose(5, 60)),
)


def assert_whole_words(chunk: Chunk, source: str) -> None:
    """The chunk is a verbatim slice of the source that starts and ends at word edges."""
    at = source.find(chunk.text)
    assert at >= 0, chunk.text[:80]
    end = at + len(chunk.text)
    assert at == 0 or source[at - 1].isspace()
    assert end == len(source) or source[end].isspace()


def test_words_are_never_cut() -> None:
    chunks = chunk_document(LONG, target_chars=300, overlap_chars=80)
    sources = {s.heading_path: normalise_text(s.text) for s in LONG.sections}
    for chunk in chunks:
        assert_whole_words(chunk, sources[chunk.heading_path])
        first, last = chunk.text.split()[0], chunk.text.split()[-1]
        assert first in sources[chunk.heading_path].split()
        assert last in sources[chunk.heading_path].split()


@pytest.mark.parametrize(("target", "overlap"), [(200, 50), (500, 100), (1000, 150)])
def test_sizes_stay_within_the_target_and_are_not_tiny(target: int, overlap: int) -> None:
    chunks = chunk_document(LONG, target_chars=target, overlap_chars=overlap)
    sizes = [len(c.text) for c in chunks]
    assert max(sizes) <= target
    assert all(c.text.strip() == c.text and c.text for c in chunks)  # never empty
    assert sum(sizes) / len(sizes) >= target * 0.6  # packed, not one sentence each


def test_consecutive_chunks_overlap_by_whole_trailing_sentences() -> None:
    doc = doc_of(Section(("Notes",), prose(7, 80)))
    chunks = chunk_document(doc, target_chars=400, overlap_chars=120)
    overlaps = 0
    for before, after in zip(chunks, chunks[1:], strict=False):
        sentences = [before.text[s:e] for s, e in sentence_spans(before.text)]
        shared = ""
        for count in range(1, len(sentences)):
            candidate = " ".join(sentences[-count:])
            if after.text.startswith(candidate):
                shared = candidate
        if shared:
            overlaps += 1
            assert len(shared) <= 120
            assert shared != before.text  # never a copy of the whole previous chunk
    assert overlaps >= len(chunks) - 1 - len(chunks) // 4  # nearly every boundary overlaps


def test_no_overlap_across_sections_or_when_disabled() -> None:
    doc = doc_of(Section(("A",), prose(8, 30)), Section(("B",), prose(9, 30)))
    chunks = chunk_document(doc, target_chars=300, overlap_chars=0)
    text = " ".join(c.text for c in chunks)
    assert (
        text.split() == (normalise_text(doc.sections[0].text) + " " + doc.sections[1].text).split()
    )
    crossing = [c for c in chunks if c.heading_path == ("B",)][0]
    assert crossing.text.startswith(normalise_text(doc.sections[1].text)[:20])


def test_heading_paths_are_kept_and_ords_count_up() -> None:
    chunks = chunk_document(LONG, target_chars=300, overlap_chars=60)
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    paths = [c.heading_path for c in chunks]
    assert paths == sorted(paths, key=[s.heading_path for s in LONG.sections].index)
    assert set(paths) == {s.heading_path for s in LONG.sections}


def test_small_sibling_sections_merge_under_the_first_heading() -> None:
    doc = doc_of(
        Section(("Policy", "Fees"), "A fee of ten dollars applies."),
        Section(("Policy", "Windows"), "Returns within 30 days."),
        Section(("Policy", "Windows", "Holidays"), "Until January 31."),
        Section(("Other",), "Different parent."),
    )
    chunks = chunk_document(doc, target_chars=1000, overlap_chars=150)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Policy", "Fees"), "A fee of ten dollars applies.\n\nWindows\n\nReturns within 30 days."),
        (("Policy", "Windows", "Holidays"), "Until January 31."),
        (("Other",), "Different parent."),
    ]


def test_parent_intro_merges_with_its_small_children() -> None:
    doc = doc_of(
        Section((), "Preamble."),
        Section(("Intro",), "Intro text."),
        Section(("Intro", "Detail"), "Detail text."),
    )
    (chunk,) = chunk_document(doc)
    assert chunk.heading_path == ()
    assert chunk.text == "Preamble.\n\nIntro\n\nIntro text.\n\nIntro > Detail\n\nDetail text."


def test_sections_too_big_to_share_are_not_merged() -> None:
    doc = doc_of(Section(("A",), "x " * 300), Section(("B",), "y " * 300))
    chunks = chunk_document(doc, target_chars=1000)
    assert [c.heading_path for c in chunks] == [("A",), ("B",)]


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    paragraphs = [prose(i, 4) for i in range(12)]
    doc = doc_of(Section((), "\n\n".join(paragraphs)))
    for chunk in chunk_document(doc, target_chars=800, overlap_chars=0):
        for part in chunk.text.split("\n\n"):
            assert part in paragraphs or len(part) > 800 // 2


def test_output_is_deterministic() -> None:
    first = chunk_document(LONG, 400, 100)
    assert chunk_document(copy.deepcopy(LONG), 400, 100) == first
    assert chunk_document(LONG, 400, 100) == first


def test_long_document_without_any_punctuation() -> None:
    rng = random.Random(3)
    text = " ".join(rng.choice(WORDS) for _ in range(4000))
    chunks = chunk_document(doc_of(Section((), text)), target_chars=500, overlap_chars=100)
    assert len(chunks) > 40
    assert all(len(c.text) <= 500 for c in chunks)
    for chunk in chunks:
        assert_whole_words(chunk, text)
    # no sentence to repeat, so the chunks tile the text exactly
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_a_word_longer_than_the_target_is_kept_whole() -> None:
    word = "x" * 120
    chunks = chunk_document(doc_of(Section((), f"short start {word} short end")), 50, 10)
    assert word in [c.text for c in chunks]
    assert " ".join(c.text for c in chunks).split() == ["short", "start", word, "short", "end"]


def test_whitespace_is_normalised_in_chunks() -> None:
    doc = doc_of(Section(("H",), "  Messy\t\ttext\u00a0here. \r\n\r\n\r\n Next\x00 para. "))
    (chunk,) = chunk_document(doc)
    assert chunk.text == "Messy text here.\n\nNext para."


def test_empty_documents_give_no_chunks() -> None:
    assert chunk_document(doc_of()) == []
    assert chunk_document(doc_of(Section(("A",), " \n\n \t"))) == []


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="target_chars must be at least 1"):
        chunk_document(LONG, target_chars=0)
    with pytest.raises(ValueError, match="overlap_chars must be 0 or more"):
        chunk_document(LONG, overlap_chars=-1)


@pytest.mark.slow
def test_scifact_corpus_chunks_cleanly(scifact: Path) -> None:
    docs = []
    for line in (scifact / "corpus.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        docs.append(SourceDocument(row["_id"], row["title"], [Section((), row["text"])]))
    chunks = [c for doc in docs for c in chunk_document(doc)]
    assert len(docs) == 5183
    assert all(0 < len(c.text) <= 1000 for c in chunks)
    assert not any(re.search(r"\s{2,}", c.text.replace("\n\n", "\n")) for c in chunks)
