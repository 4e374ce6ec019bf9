"""The online A/B test: improve starts it, users stay on their variant, votes decide."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datawheel.cli.main import app
from datawheel.errors import ConfigError
from datawheel.improve import ab
from datawheel.improve.registry import Registry
from datawheel.workspace import Workspace

QUESTION = "What is the restocking fee for opened electronics?"


@pytest.fixture()
def ws(sample: Path, tmp_path: Path) -> Iterator[Workspace]:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    with Workspace.open(path) as workspace:
        workspace.config.ab.share = 0.5
        workspace.config.ab.min_votes = 10
        yield workspace


def _start_test(ws: Workspace) -> ab.ABTest:
    """A correction makes improve build a challenger (answer memory refreshed)."""
    first = ws.ask(QUESTION, user="dana")
    ws.review(
        ws.feedback(
            first.id, "down", user="dana", correction="15% on opened electronics."
        ).review_id,
        "approve",
    )
    report = ws.improve(finetune=False)
    assert report.promoted is None and report.challenger == "v1"
    test = ab.running(ws)
    assert test is not None and (test.champion, test.challenger) == (None, "v1")
    return test


def _users(test: ab.ABTest, variant: str, n: int) -> list[str]:
    names = (f"user{i}" for i in range(10_000))
    return [u for u in names if test.variant(u) == variant][:n]


def _votes(ws: Workspace, users: list[str], vote: str) -> None:
    for user in users:
        answer = ws.ask(QUESTION, user=user)
        ws.feedback(answer.id, vote, user=user)


def test_improve_starts_a_test_instead_of_promoting(ws: Workspace) -> None:
    test = _start_test(ws)
    registry = Registry(ws.store)
    assert registry.current() is None  # the champion (baseline) still serves by default
    assert registry.get("v1")["status"] == "challenger"
    # sticky and close to the configured share
    assert all(test.variant(f"u{i}") == test.variant(f"u{i}") for i in range(50))
    share = sum(test.variant(f"u{i}") == "challenger" for i in range(2000)) / 2000
    assert 0.45 < share < 0.55
    # the challenger (with the curated answer) serves only its users
    challenger_user = _users(test, "challenger", 1)[0]
    champion_user = _users(test, "champion", 1)[0]
    on_challenger = ws.ask(QUESTION, user=challenger_user)
    on_champion = ws.ask(QUESTION, user=champion_user)
    assert on_challenger.answered_from == "memory" and on_challenger.version == "v1"
    assert on_champion.answered_from != "memory" and on_champion.version is None
    logged = ws.interactions.get(on_challenger.id).versions
    assert (logged["ab_test"], logged["variant"]) == (test.id, "challenger")


def test_too_few_votes_keeps_collecting(ws: Workspace) -> None:
    test = _start_test(ws)
    _votes(ws, _users(test, "challenger", 4), "up")
    status = ws.ab_status()
    assert status.decision == "continue"
    assert "challenger 6 more" in status.reason and "champion 10 more" in status.reason
    assert ws.ab_decide().test.status == "running"


def test_a_clearly_better_challenger_is_promoted_and_logged(ws: Workspace) -> None:
    test = _start_test(ws)
    _votes(ws, _users(test, "challenger", 12), "up")
    champion_users = _users(test, "champion", 12)
    _votes(ws, champion_users[:4], "up")
    _votes(ws, champion_users[4:], "down")
    status = ws.ab_status()
    assert status.tallies["challenger"].up == 12 and status.tallies["champion"].down == 8
    assert status.p_challenger_better is not None and status.p_challenger_better > 0.99
    result = ws.ab_decide()
    assert result.decision == "promote" and result.test.status == "promoted"
    assert Registry(ws.store).current() == "v1"
    assert ws.ask(QUESTION, user=champion_users[0]).answered_from == "memory"  # everyone now
    run = ws.store.list_runs(kind="ab_decision", limit=1)[0]
    assert run["counts"]["action"] == "promote" and "P(challenger" in run["counts"]["reason"]


def test_a_worse_challenger_is_stopped_and_the_champion_stays(ws: Workspace) -> None:
    test = _start_test(ws)
    _votes(ws, _users(test, "challenger", 12), "down")
    _votes(ws, _users(test, "champion", 12), "up")
    result = ws.ab_decide()
    assert result.decision == "stop" and result.test.status == "stopped"
    assert Registry(ws.store).current() is None
    assert Registry(ws.store).get("v1")["status"] == "rejected"
    assert ab.running(ws) is None
    assert "A/B test" in Registry(ws.store).get("v1")["note"]


def test_an_undecided_test_stops_after_max_days(ws: Workspace) -> None:
    test = _start_test(ws)
    test.started_at = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    ws.store.set_state(ab.STATE_KEY, json.dumps(test.__dict__))
    result = ws.ab_decide()
    assert result.decision == "stop" and "undecided after 28 days" in result.reason


def test_manual_override_from_the_cli_is_logged(ws: Workspace) -> None:
    _start_test(ws)
    path = str(ws.path)
    ws.close()
    runner = CliRunner()
    shown = runner.invoke(app, ["ab", "status", "-w", path, "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["decision"] == "continue"
    done = runner.invoke(app, ["ab", "promote", "-w", path])
    assert done.exit_code == 0, done.stdout
    assert "manual promote by cli" in done.stdout
    again = runner.invoke(app, ["ab", "stop", "-w", path])
    assert again.exit_code == 2 and "no A/B test is running" in again.output
    with Workspace.open(path) as reopened:
        assert Registry(reopened.store).current() == "v1"


def test_rollback_ends_a_running_test(ws: Workspace) -> None:
    _start_test(ws)
    with pytest.raises(ConfigError):
        ws.rollback()  # nothing promoted yet to roll back from
    assert ab.running(ws) is not None
    ws.ab_decide("promote", by="test")
    assert ws.rollback() is None and Registry(ws.store).current() is None


def test_without_a_share_improve_promotes_at_once(ws: Workspace) -> None:
    ws.config.ab.share = 0.0
    first = ws.ask(QUESTION, user="dana")
    ws.review(
        ws.feedback(
            first.id, "down", user="dana", correction="15% on opened electronics."
        ).review_id,
        "approve",
    )
    report = ws.improve(finetune=False)
    assert report.promoted == "v1" and report.challenger is None and ab.load(ws) is None
