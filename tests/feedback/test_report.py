"""Tests for datawheel.feedback.report: weekly numbers, the threshold and content gaps."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from datawheel.cli.main import app
from datawheel.config import CONFIG_FILE
from datawheel.errors import ConfigError
from datawheel.feedback.log import Interaction, new_interaction_id
from datawheel.feedback.report import weekly_report
from datawheel.workspace import Workspace

runner = CliRunner()
# Thursday of ISO week 2026-W01, whose Monday (2025-12-29) is in the year before.
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture()
def ws_path(sample: Path, tmp_path: Path) -> Path:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    return path


@pytest.fixture()
def ws(ws_path: Path) -> Iterator[Workspace]:
    with Workspace.open(ws_path) as workspace:
        yield workspace


def _log(
    ws: Workspace,
    question: str,
    at: datetime | None = None,
    *,
    latency_ms: float = 100.0,
    declined: bool = False,
    confidence: float = 0.9,
) -> str:
    item = Interaction(
        new_interaction_id(),
        question,
        "I could not find this." if declined else "An answer [1].",
        "asker",
        at or datetime.now(UTC),
        latency_ms,
        confidence,
        declined,
        "declined" if declined else "generator",
        [],
        {},
    )
    ws.interactions.record(item)
    return item.id


def test_weekly_numbers_per_iso_week(ws: Workspace) -> None:
    # 2025-W52: Monday 2025-12-22 to Sunday 2025-12-28.
    a = _log(ws, "a", datetime(2025, 12, 22, 0, 0, tzinfo=UTC), latency_ms=100)
    b = _log(ws, "b", datetime(2025, 12, 24, 9, 0, tzinfo=UTC), latency_ms=200)
    _log(ws, "c", datetime(2025, 12, 28, 23, 59, 59, tzinfo=UTC), latency_ms=300, declined=True)
    d = _log(ws, "d", datetime(2025, 12, 26, 15, 0, tzinfo=UTC), latency_ms=400)
    # 2026-W01, up to NOW.
    e = _log(ws, "e", datetime(2025, 12, 29, 0, 0, tzinfo=UTC), latency_ms=50)
    _log(ws, "f", datetime(2025, 12, 31, 18, 0, tzinfo=UTC), latency_ms=1000)
    # 2025-W51, before the two weeks asked for: left out entirely.
    old = _log(ws, "old", datetime(2025, 12, 21, 23, 59, 59, tzinfo=UTC), latency_ms=9999)
    ws.feedback(a, "up", user="alice")
    ws.feedback(a, "up", user="bob")
    ws.feedback(b, "down", user="alice")
    ws.feedback(d, "up", user="carol")
    ws.feedback(d, "down", user="carol")  # replaces carol's 👍
    ws.feedback(e, "up", user="alice")
    ws.feedback(old, "down", user="alice")

    report = weekly_report(ws, weeks=2, now=NOW)

    first, second = report.weeks
    assert (first.week, first.start, second.week, second.start) == (
        "2025-W52",
        "2025-12-22",
        "2026-W01",
        "2025-12-29",
    )
    assert (first.questions, first.answered, first.up, first.down) == (4, 3, 2, 2)
    assert first.answer_rate == pytest.approx(0.75)
    assert first.satisfaction == pytest.approx(0.5)
    assert first.p95_latency_ms == pytest.approx(385.0)  # 300 + 0.85 * (400 - 300)
    assert (second.questions, second.answered, second.up, second.down) == (2, 2, 1, 0)
    assert (second.answer_rate, second.satisfaction) == (pytest.approx(1.0), pytest.approx(1.0))
    assert second.p95_latency_ms == pytest.approx(952.5)  # 50 + 0.95 * (1000 - 50)
    assert report.below_threshold is False
    assert report.message == "satisfaction 100% in 2026-W01 meets 70%"
    assert "old" not in {q["question"] for q in report.low_confidence}


def test_a_week_without_votes_has_no_satisfaction(ws: Workspace) -> None:
    _log(ws, "a", datetime(2025, 12, 30, tzinfo=UTC))

    report = weekly_report(ws, weeks=1, now=NOW)

    [week] = report.weeks
    assert (week.questions, week.satisfaction, report.below_threshold) == (1, None, False)
    assert report.message == "no votes in 2026-W01 yet: satisfaction cannot be measured"


def test_below_threshold_is_reported_and_fails_the_cli(ws_path: Path) -> None:
    with Workspace.open(ws_path) as ws:
        ids = [_log(ws, q) for q in ("first", "second", "third")]
        for ident, vote in zip(ids, ("up", "down", "down"), strict=True):
            ws.feedback(ident, vote, user="alice")
        report = ws.report()

    [week] = report.weeks
    assert week.satisfaction == pytest.approx(1 / 3)
    assert report.below_threshold is True
    assert report.message == f"satisfaction 33% in {week.week} is below the 70% threshold"
    assert report.improve is None  # auto_improve is off by default

    below = runner.invoke(app, ["report", "-w", str(ws_path)])
    assert below.exit_code == 1, below.output
    assert "is below the 70% threshold" in below.stdout

    with Workspace.open(ws_path) as ws:
        for ident in ids[1:]:
            ws.feedback(ident, "up", user="alice")  # the latest vote counts
    above = runner.invoke(app, ["report", "-w", str(ws_path), "--json"])
    assert above.exit_code == 0, above.output
    assert '"below_threshold": false' in above.stdout
    assert f"satisfaction 100% in {week.week} meets 70%" in above.stdout


PARKING = (
    "Where can I park my car at the office?",
    "Is there employee parking at headquarters?",
    "How do I get a parking spot at the office building?",
)
SOURDOUGH = ("Do we have a recipe for sourdough bread?", "How do I bake sourdough bread?")


def test_content_gaps_group_paraphrases_largest_first(ws: Workspace) -> None:
    for question in PARKING:
        _log(ws, question, declined=True, confidence=0.3)
    _log(ws, SOURDOUGH[0], declined=True, confidence=0.2)
    disliked = _log(ws, SOURDOUGH[1])  # answered confidently, but voted down
    ws.feedback(disliked, "down")
    served = _log(ws, "What is the restocking fee on opened electronics?")
    ws.feedback(served, "up")

    gaps = weekly_report(ws).gaps

    assert [g.size for g in gaps] == [3, 2]
    assert set(gaps[0].questions) == set(PARKING) and gaps[0].example in PARKING
    assert set(gaps[1].questions) == set(SOURDOUGH) and gaps[1].example in SOURDOUGH
    assert "parking" in gaps[0].terms and "sourdough" in gaps[1].terms


def test_a_question_voted_up_is_no_content_gap(ws: Workspace) -> None:
    for question in PARKING:
        _log(ws, question, declined=True, confidence=0.3)
    liked = _log(ws, "How long do sourdough starters keep in the fridge?", confidence=0.45)
    ws.feedback(liked, "up")  # low confidence, but the asker says it was served well

    gaps = weekly_report(ws).gaps

    assert [g.size for g in gaps] == [3]
    assert all("sourdough" not in q for g in gaps for q in g.questions)


def test_auto_improve_runs_when_satisfaction_is_low(ws_path: Path) -> None:
    cfg_path = ws_path / CONFIG_FILE
    config = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    config.setdefault("improve", {})["auto_improve"] = True
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    with Workspace.open(ws_path) as ws:
        assert ws.config.improve.auto_improve is True
        answers = [
            ws.ask(q)
            for q in (
                "restocking fee opened electronics",
                "How long do enterprise customers have to return an order?",
                "What do I need to do if my laptop is stolen?",
            )
        ]
        assert not any(a.declined for a in answers)
        for answer, vote in zip(answers, ("up", "down", "down"), strict=True):
            ws.feedback(answer.id, vote)

        report = ws.report()

        assert report.below_threshold is True
        assert report.improve is not None and "error" not in report.improve
        assert (report.improve["examples"], report.improve["promoted"]) == (3, "v1")
        assert [(v["id"], v["current"]) for v in ws.versions()] == [("v1", True)]


def test_zero_weeks_is_a_clear_error(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="weeks must be at least 1"):
        ws.report(weeks=0)
