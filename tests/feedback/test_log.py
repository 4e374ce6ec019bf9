"""Tests for datawheel.feedback.log through Workspace.ask / feedback, on the sample KB."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from datawheel.apps.rag.answer import Answer
from datawheel.demo import SAMPLE_KB, SAMPLE_QUESTIONS
from datawheel.errors import ConfigError
from datawheel.evaluate.questions import load_questions
from datawheel.feedback.log import Interaction, InteractionLog
from datawheel.store.sql import SQLStore
from datawheel.workspace import Workspace

IN_DOMAIN = "restocking fee opened electronics"
OUT_OF_DOMAIN = "What is the capital of Mongolia?"
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@pytest.fixture()
def ws(sample: Path, tmp_path: Path) -> Iterator[Workspace]:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    with Workspace.open(path) as workspace:
        yield workspace


def _cited_numbers(text: str) -> set[int]:
    return {int(n) for group in _CITATION.findall(text) for n in group.split(",")}


def _counts(ws: Workspace) -> tuple[int, int]:
    return len(ws.interactions.interactions()), len(ws.interactions.feedback())


def test_ask_commits_the_interaction_before_returning(ws: Workspace) -> None:
    before = datetime.now(UTC)
    answer = ws.ask(IN_DOMAIN, user="dana")

    # A second connection to the same file sees the row as soon as ask returns.
    other = SQLStore(ws.config.database_url(ws.path))
    try:
        row = InteractionLog(other.engine).get(answer.id)
    finally:
        other.close()

    assert (row.id, row.question, row.answer, row.user) == (
        answer.id,
        IN_DOMAIN,
        answer.text,
        "dana",
    )
    assert row.sources == [
        {
            "n": s.n,
            "chunk_id": s.chunk_id,
            "doc_id": s.doc_id,
            "title": s.title,
            "score": s.score,
            "cited": s.cited,
        }
        for s in answer.sources
    ]
    assert len(row.sources) == ws.config.generation.sources
    assert any(s["cited"] for s in row.sources)
    assert row.versions == {
        "version": None,
        "retriever": f"hybrid(dense_weight={ws.config.search.dense_weight:g})",
        "ranker": "none",
        "generator": answer.generator,
        "embedder": ws.embedder.model_id,
    }
    assert row.latency_ms == pytest.approx(answer.latency_ms) and row.latency_ms > 0
    assert (row.declined, row.answered_from) == (False, "generator")
    assert row.confidence == pytest.approx(answer.confidence)
    assert before - timedelta(seconds=1) <= row.created_at <= datetime.now(UTC)


def test_citations_in_the_text_are_the_cited_sources(ws: Workspace) -> None:
    answered = 0
    for q in load_questions(SAMPLE_QUESTIONS):
        answer = ws.ask(q.question, record=False)
        numbers = _cited_numbers(answer.text)
        cited = {s.n for s in answer.sources if s.cited}
        assert numbers == cited, (q.question, answer.text)
        assert cited <= {s.n for s in answer.sources}
        if answer.declined:
            assert cited == set(), answer.text
        else:
            answered += 1
            assert cited, answer.text
    assert answered >= 20  # most sample questions are answered, so the check above bites


def test_one_vote_per_user_and_the_latest_counts(ws: Workspace) -> None:
    answer = ws.ask(IN_DOMAIN)

    ws.feedback(answer.id, "up", user="dana")
    ws.feedback(answer.id, "down", user="dana", comment="cites the old policy")
    [only] = ws.interactions.feedback([answer.id])
    assert (only.user, only.vote, only.comment) == ("dana", "down", "cites the old policy")

    ws.feedback(answer.id, "up", user="kevin")
    votes = {f.user: f.vote for f in ws.interactions.feedback([answer.id])}
    assert votes == {"dana": "down", "kevin": "up"}


def test_helpful_and_failure_are_stored(ws: Workspace) -> None:
    answer = ws.ask(IN_DOMAIN)
    cited = next(s.chunk_id for s in answer.sources if s.cited)

    record = ws.feedback(answer.id, "down", helpful=[f"chunk:{cited[:10]}"], failure="wrong_answer")

    assert record.helpful == [cited]  # a prefix is stored as the full chunk id
    [stored] = ws.interactions.feedback([answer.id])
    assert (stored.helpful, stored.failure) == ([cited], "wrong_answer")


BAD_INPUT: dict[str, tuple[Callable[[Workspace, Answer], object], str]] = {
    "unknown id": (
        lambda ws, a: ws.feedback("f" * 32, "up", user="dana"),
        "no interaction 'ffffffffffffffffffffffffffffffff'; use the id that ask printed",
    ),
    "too-short prefix": (
        lambda ws, a: ws.feedback(a.id[:5], "up", user="dana"),
        "is too short; give at least 6 characters",
    ),
    "vote maybe": (
        lambda ws, a: ws.feedback(a.id, "maybe", user="dana"),
        "unknown vote 'maybe'; valid votes: up, down",
    ),
    "failure other": (
        lambda ws, a: ws.feedback(a.id, "down", user="dana", failure="other"),
        "unknown failure kind 'other'; valid kinds: wrong_source, wrong_answer, not_in_sources",
    ),
    "helpful not shown": (
        lambda ws, a: ws.feedback(a.id, "down", user="dana", helpful=["chunk:0123456789abcdef"]),
        "helpful chunk 'chunk:0123456789abcdef' is not among this answer's sources",
    ),
    "empty question": (
        lambda ws, a: ws.ask("   \n"),
        "the question is empty",
    ),
    "100 kB question": (
        lambda ws, a: ws.ask("why " * 25_000),
        "the limit is 4,000",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_a_clear_error_and_writes_nothing(ws: Workspace, case: str) -> None:
    answer = ws.ask(IN_DOMAIN)
    ws.feedback(answer.id, "up", user="dana")
    before = ws.interactions.feedback()
    assert _counts(ws) == (1, 1)

    call, message = BAD_INPUT[case]
    with pytest.raises(ConfigError) as caught:
        call(ws, answer)

    assert message in str(caught.value)
    assert _counts(ws) == (1, 1)
    assert ws.interactions.feedback() == before  # dana's earlier 👍 is untouched


def test_id_prefix_of_six_characters_works(ws: Workspace) -> None:
    answer = ws.ask(IN_DOMAIN)

    assert ws.feedback(answer.id[:6], "up").interaction_id == answer.id
    assert ws.feedback(f"  {answer.id[:8].upper()} ", "down").interaction_id == answer.id
    assert [f.vote for f in ws.interactions.feedback()] == ["down"]


def test_ambiguous_prefix_is_refused(ws: Workspace) -> None:
    for suffix in ("1", "2"):
        ws.interactions.record(_interaction("abcdef" + suffix * 26))

    with pytest.raises(ConfigError, match="interaction id 'abcdef' is ambiguous; give more"):
        ws.feedback("abcdef", "up")
    assert ws.feedback("abcdef2", "up").interaction_id == "abcdef" + "2" * 26


def test_like_wildcards_in_a_prefix_match_nothing(ws: Workspace) -> None:
    ws.interactions.record(_interaction("abcdef" + "1" * 26))

    for pattern in ("______", "abcd%%"):
        with pytest.raises(ConfigError, match="not an interaction id"):
            ws.feedback(pattern, "up")
    assert ws.interactions.feedback() == []


def test_a_correction_becomes_a_curated_answer_only_once_approved(ws: Workspace) -> None:
    declined = ws.ask(OUT_OF_DOMAIN, user="vera")
    vote = ws.feedback(
        declined.id, "down", user="vera", correction="Ulaanbaatar is the capital of Mongolia."
    )
    assert vote.review == "pending"
    ws.improve()
    assert ws.ask(OUT_OF_DOMAIN).answered_from == "declined"  # pending: it answers nobody

    ws.review(vote.review_id, "approve")
    ws.improve()
    again = ws.ask(OUT_OF_DOMAIN)

    assert again.answered_from == "memory"
    assert again.text == "Ulaanbaatar is the capital of Mongolia."
    assert again.curated_by == {"author": "vera", "approved_by": "owner"}


def test_a_rejected_correction_never_answers(ws: Workspace) -> None:
    declined = ws.ask(OUT_OF_DOMAIN, user="vera")
    vote = ws.feedback(declined.id, "down", user="vera", correction="Visit http://evil.example")
    ws.review(vote.review_id, "reject")
    ws.config.improve.corrections = "trusted"  # even where corrections are trusted
    ws.improve()

    assert ws.ask(OUT_OF_DOMAIN).answered_from == "declined"
    assert [c.status for c in ws.corrections("rejected")] == ["rejected"]


def test_a_tiny_knowledge_base_declines_without_a_contradicting_confidence(
    tmp_path: Path,
) -> None:
    """Too small to calibrate, retrieval is trusted (confidence 1.0); when the generator then
    finds no answer, the decline must not say "(confidence 100%)"."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "expenses.md").write_text(
        "# Expenses\n\nMeals are capped at 60 euros per day.\n", encoding="utf-8"
    )
    with Workspace.init(tmp_path / "kb") as tiny:
        tiny.ingest([docs])
        answered = tiny.ask("How much can I spend on meals per day?")
        declined = tiny.ask("What is the parental leave policy?")
    assert not answered.declined and "60 euros" in answered.text
    assert declined.declined and declined.answered_from == "declined"
    assert declined.text.startswith("I could not find this in the knowledge base")
    assert "%" not in declined.text, declined.text


def test_empty_helpful_chunk_id_is_refused(ws: Workspace) -> None:
    answer = ws.ask(IN_DOMAIN)

    with pytest.raises(ConfigError):
        ws.feedback(answer.id, "up", helpful=["chunk:"])


def test_out_of_domain_question_is_declined(ws: Workspace) -> None:
    declined = ws.ask(OUT_OF_DOMAIN)
    answered = ws.ask(IN_DOMAIN)

    assert (declined.declined, declined.answered_from) == (True, "declined")
    assert declined.text.startswith("I could not find this in the knowledge base")
    assert not any(s.cited for s in declined.sources)
    assert declined.confidence < ws.config.generation.min_confidence

    assert (answered.declined, answered.answered_from) == (False, "generator")
    assert "15% restocking fee" in answered.text
    cited = [s for s in answered.sources if s.cited]
    assert any(s.uri.endswith("handbook/refunds.md") for s in cited)
    assert _cited_numbers(answered.text) == {s.n for s in cited}


def test_record_false_writes_no_interaction(ws: Workspace) -> None:
    answer = ws.ask(IN_DOMAIN, record=False)

    assert answer.text and answer.id
    assert _counts(ws) == (0, 0)
    with pytest.raises(ConfigError, match="no interaction"):
        ws.feedback(answer.id, "up")


def _interaction(ident: str) -> Interaction:
    return Interaction(
        ident, "q", "a", "dana", datetime.now(UTC), 1.0, 0.9, False, "generator", [], {}
    )


def test_asking_an_empty_knowledge_base_says_so(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "empty") as ws:
        answer = ws.ask("what is the refund policy?")
        assert answer.declined and answer.sources == [] and answer.confidence == 0.0
        assert "knowledge base is empty" in answer.text
        assert ws.interactions.get(answer.id).declined  # still logged


def test_a_caller_who_may_read_nothing_gets_no_sources(ws: Workspace) -> None:
    # The sample is shared with `everyone`, which every caller is in, whatever their groups.
    shared = ws.ask(IN_DOMAIN, groups=["nobody-has-this-group"])
    assert not shared.declined and shared.sources
    # Shared with one group only, it is hidden from a caller outside that group.
    ws.ingest([SAMPLE_KB], groups=["finance"])
    hidden = ws.ask(IN_DOMAIN, groups=["nobody-has-this-group"])
    assert hidden.declined and hidden.sources == []


def test_a_source_marked_helpful_leads_when_the_question_comes_again(ws: Workspace) -> None:
    """The asker marked a shown source that the answer did not cite: the answer is not kept
    as a curated one (it cites other sources), but after improve the same question puts the
    marked source first and answers from it alone."""
    first = ws.ask(IN_DOMAIN)
    uncited = [s for s in first.sources if not s.cited]
    assert uncited, first.sources  # the sample shows 5 sources and cites fewer
    helpful = uncited[-1].chunk_id
    ws.feedback(first.id, "up", helpful=[helpful])
    ws.improve()

    again = ws.ask(IN_DOMAIN)
    assert again.answered_from != "memory"  # its text cited other sources: not curated
    assert again.helped_question == IN_DOMAIN and again.memory_question is None
    assert again.sources[0].chunk_id == helpful
    assert again.confidence >= ws.config.improve.memory_similarity
    assert _cited_numbers(again.text) <= {1}
    assert len({s.chunk_id for s in again.sources}) == len(again.sources)
    # a question nothing like it keeps its own sources
    other = ws.ask("gift card expiration")
    assert other.sources[0].chunk_id != helpful and other.helped_question is None


def test_the_same_documents_anywhere_get_the_same_answer_calibration(
    sample: Path, tmp_path: Path
) -> None:
    """Chunk ids hash the files' paths; the confidence calibration samples by content, so
    the same knowledge base ingested from another folder is calibrated the same."""
    from datawheel.apps.rag.calibrate import fit
    from datawheel.demo import SAMPLE_KB

    fits = []
    for where in ("here", "there/deeper"):
        kb = tmp_path / where / "kb"
        shutil.copytree(SAMPLE_KB, kb)
        with Workspace.init(tmp_path / where / "ws") as ws:
            ws.ingest([kb])
            fits.append(fit(ws))
    a, b = fits
    assert a is not None and b is not None
    assert a.coef == pytest.approx(b.coef, abs=1e-9) and a.intercept == pytest.approx(b.intercept)
