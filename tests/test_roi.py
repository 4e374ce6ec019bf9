"""Tests for datawheel.roi: each line item against numbers worked out by hand from its inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from datawheel.cli.main import app
from datawheel.config import CONFIG_FILE, Config
from datawheel.errors import ConfigError
from datawheel.feedback.log import Interaction, new_interaction_id
from datawheel.feedback.outcomes import Outcome
from datawheel.improve.registry import Registry
from datawheel.roi import RoiReport, compute_roi
from datawheel.workspace import Workspace

runner = CliRunner()
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


@pytest.fixture()
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.init(tmp_path / "kb") as workspace:
        yield workspace


def _ask(ws: Workspace, at: datetime, *, user: str = "asker", declined: bool = False) -> str:
    item = Interaction(
        new_interaction_id(),
        "What is the refund policy?",
        "I could not find this." if declined else "Refunds within 30 days [1].",
        user,
        at,
        80.0,
        0.2 if declined else 0.9,
        declined,
        "declined" if declined else "generator",
        [],
        {},
    )
    ws.interactions.record(item)
    return item.id


def _forty_answers(ws: Workspace, now: datetime) -> None:
    """40 answered (30 👍, 10 👎) and 5 declined in the last 30 days, and older traffic."""
    for n in range(40):
        ident = _ask(ws, now - timedelta(days=n % 29, hours=1))
        ws.feedback(ident, "up" if n < 30 else "down", user="voter")
    for n in range(5):
        declined = _ask(ws, now - timedelta(days=n, hours=2), declined=True)
        ws.feedback(declined, "down", user="voter")  # a vote on a declined answer: not counted
    old = _ask(ws, now - timedelta(days=400))  # outside every window the tests use
    ws.feedback(old, "down", user="voter")


def _item(report: RoiReport, name: str) -> dict[str, Any]:
    return next(i for i in report.to_dict()["items"] if i["name"] == name)


def test_answers_value_is_helpful_answers_times_time_saved(ws: Workspace) -> None:
    _forty_answers(ws, NOW)

    answers = _item(compute_roi(ws, days=30, now=NOW), "answers")

    # 40 answered × 365/30 = 486.67/year; 30 of 40 votes 👍 → 365 helpful answers a year;
    # 10 minutes at 50 USD an hour = 8.33 USD each.
    assert answers["annual_value"] == pytest.approx(40 * 365 / 30 * 0.75 * 10 / 60 * 50)
    assert answers["annual_value"] == pytest.approx(3041.6667, abs=1e-3)
    measured = answers["measured"]
    assert (measured["questions"], measured["answered"], measured["up"], measured["down"]) == (
        45,
        40,
        30,
        10,
    )
    assert measured["up_rate"] == pytest.approx(0.75)
    assert answers["assumptions"] == {
        "roi.minutes_saved_per_answer": 10.0,
        "roi.hourly_cost": 50.0,
    }
    assert answers["formula"] == (
        "40 answered (on 29 days) × 365/30 × 75% 👍 (unvoted answers count at this rate) = "
        "365 helpful "
        "answers/year × 10 min / 60 × 50 USD/h = 3,042 USD"
    )
    assert answers["reason"] is None


def test_answers_without_votes_are_worth_nothing_yet(ws: Workspace) -> None:
    _ask(ws, NOW - timedelta(days=1))

    answers = _item(compute_roi(ws, days=30, now=NOW), "answers")

    assert answers["annual_value"] == 0.0
    assert answers["reason"] == "no 👍/👎 votes yet on the 1 answers: helpfulness unmeasured"


def test_an_empty_workspace_says_why_every_line_is_zero(ws: Workspace) -> None:
    report = compute_roi(ws, days=30, now=NOW)

    reasons = {i.name: (i.annual_value, i.reason) for i in report.items}
    assert reasons == {
        "answers": (0.0, "no answered questions in the last 30 days"),
        "leads": (
            0.0,
            "no matched outcomes yet (import won/lost deals: datawheel leads outcomes FILE)",
        ),
        "forecast": (
            0.0,
            "no forecasts settled by actuals yet (import sales: datawheel forecast actuals FILE)",
        ),
    }
    assert report.annual_value == 0.0
    assert report.investment == {
        "people": 60_000.0,
        "infrastructure": 6_000.0,
        "llm": 0.0,
        "total": 66_000.0,
    }
    assert report.roi == pytest.approx(-1.0)
    assert report.payback_months is None
    assert report.formulas["payback_months"] == (
        "no payback: the measured annual value is not positive"
    )
    assert report.adoption.dau is None
    assert "roi.hourly_cost" in report.defaults


def _score_leads(ws: Workspace, version: str = "leads-v1") -> None:
    """10 leads; the two scored highest won, and 2 of the other 8: base 40%, top 20% 100%."""
    probs = [0.9, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3, 0.2, 0.1, 0.05]
    won = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    ws.predictions.record(
        "leads", version, [(f"L{i}", {}, {"probability": p}) for i, p in enumerate(probs)]
    )
    ws.predictions.import_outcomes(
        "leads", [Outcome("leads", f"L{i}", y) for i, y in enumerate(won)]
    )


def test_one_batch_of_scores_is_not_annualised_unless_asked(ws: Workspace) -> None:
    _score_leads(ws)  # ten leads scored today, and nothing else

    leads = _item(ws.roi(days=30), "leads")

    assert leads["annual_value"] == 0.0 and leads["measured"]["evidence_days"] == 1
    assert leads["reason"] == (
        "10 leads scored on 1 day only: under 7 days of evidence is not annualised "
        "(datawheel roi --extrapolate does it anyway)"
    )


def test_leads_value_is_extra_wins_from_the_top_20_percent(ws: Workspace) -> None:
    _score_leads(ws)

    leads = _item(ws.roi(days=30, extrapolate=True), "leads")

    m = leads["measured"]
    assert (m["version"], m["settled"], m["won"], m["leads_scored"]) == ("leads-v1", 10, 4, 10)
    assert m["base_win_rate"] == pytest.approx(0.4)
    assert m["lift_top20"] == pytest.approx(2.5)
    assert m["top20_win_rate"] == pytest.approx(1.0)
    # (100% − 40%) × 10 leads × 365/30 × 20% worked = 14.6 extra wins × 5,000 × 30% margin.
    assert m["extra_wins_per_year"] == pytest.approx(14.6)
    assert leads["annual_value"] == pytest.approx(14.6 * 5000 * 0.3)
    assert leads["assumptions"] == {
        "top_share": 0.2,
        "roi.avg_deal_value": 5000.0,
        "roi.margin": 0.3,
    }
    assert m["version_note"] == "no version in use; the one with the most settled predictions"


def test_leads_use_the_version_in_use_or_say_why_not(ws: Workspace) -> None:
    _score_leads(ws, "leads-v1")
    registry = Registry(ws.store, kind="leads")
    for version in ("leads-v1", "leads-v2"):
        registry.record(
            version, status="candidate", parent=None, settings={}, metrics={}, artifacts="", note=""
        )
    registry.promote("leads-v2")

    leads = _item(ws.roi(days=30), "leads")

    assert leads["measured"]["version"] == "leads-v1"
    assert leads["measured"]["version_note"] == (
        "leads-v2, the version in use, has no settled predictions yet"
    )


def test_leads_with_no_won_deal_have_no_lift(ws: Workspace) -> None:
    ws.predictions.record("leads", "leads-v1", [("L1", {}, {"probability": 0.7})])
    ws.predictions.import_outcomes("leads", [Outcome("leads", "L1", 0)])

    leads = _item(ws.roi(days=30), "leads")

    assert leads["annual_value"] == 0.0
    assert leads["reason"] == "none of the 1 settled scores of leads-v1 was won: lift unmeasured"


def _days(start: str, n: int) -> list[str]:
    first = datetime.fromisoformat(start)
    return [(first + timedelta(days=d)).date().isoformat() for d in range(n)]


def test_forecast_value_is_error_avoided_against_seasonal_naive(ws: Workspace) -> None:
    week1, week2 = _days("2024-01-01", 7), _days("2024-01-08", 7)
    ws.predictions.record(
        "forecast", "forecast-v1", [(f"s/1@{d}", {}, {"forecast": 11.0}) for d in week2]
    )
    # The week before has no forecasts: its actuals are kept unmatched, the naive baseline.
    ws.predictions.import_outcomes(
        "forecast", [Outcome("forecast", f"s/1@{d}", 10.0) for d in week1]
    )
    ws.predictions.import_outcomes(
        "forecast", [Outcome("forecast", f"s/1@{d}", 12.0) for d in week2]
    )

    forecast = _item(ws.roi(days=30), "forecast")

    m = forecast["measured"]
    assert (m["version"], m["settled"], m["settled_days"], m["compared"]) == (
        "forecast-v1",
        7,
        7,
        7,
    )
    # Ours: |11 − 12| × 7 / 84 = 1/12; seasonal-naive: |10 − 12| × 7 / 84 = 1/6.
    assert m["wape"] == pytest.approx(1 / 12)
    assert m["naive_wape"] == pytest.approx(1 / 6)
    assert m["units_per_day"] == pytest.approx(12.0)
    # (1/6 − 1/12) × 12 units a day × 365 = 365 units avoided × 5 USD.
    assert m["units_avoided_per_year"] == pytest.approx(365.0)
    assert forecast["annual_value"] == pytest.approx(1825.0)
    assert forecast["assumptions"] == {"roi.stockout_cost_per_unit": 5.0}
    assert m["baseline_from"] == "imported actuals 7 days earlier, on the same series-days"


def test_forecast_without_the_week_before_uses_the_registry_or_says_so(ws: Workspace) -> None:
    days = _days("2024-01-08", 2)
    ws.predictions.record(
        "forecast", "forecast-v1", [(f"a@{d}", {}, {"forecast": 9.0}) for d in days]
    )
    ws.predictions.import_outcomes("forecast", [Outcome("forecast", f"a@{d}", 10.0) for d in days])

    forecast = _item(ws.roi(days=30), "forecast")
    assert forecast["annual_value"] == 0.0
    assert forecast["reason"].startswith("no seasonal-naive baseline: none of the 2 settled")

    Registry(ws.store, kind="forecast").record(
        "forecast-v1",
        status="promoted",
        parent=None,
        settings={},
        metrics={"naive_wape": 0.3},
        artifacts="",
        note="",
    )
    forecast = _item(ws.roi(days=30), "forecast")
    # (30% − 10%) × 10 units a day × 365 = 730 units × 5 USD.
    assert (
        forecast["measured"]["baseline_from"] == "backtest metrics of forecast-v1 in the registry"
    )
    assert forecast["annual_value"] == pytest.approx(730 * 5)


def test_adoption_is_daily_active_over_registered_users(ws: Workspace) -> None:
    day = NOW.replace(hour=9)
    for offset, users in ((3, ["a", "b"]), (2, ["a"]), (0, ["a", "b", "c", "c"])):
        for user in users:
            _ask(ws, day - timedelta(days=offset), user=user)
    _ask(ws, day - timedelta(days=40), user="gone")  # before the window

    adoption = compute_roi(ws, days=30, registered_users=4, now=NOW).adoption

    assert (adoption.days_with_traffic, adoption.users) == (3, 3)
    assert adoption.dau == pytest.approx((2 + 1 + 3) / 3)
    assert (adoption.last_day, adoption.last_day_users) == (NOW.date().isoformat(), 3)
    assert adoption.adoption == pytest.approx(0.5)


def test_registered_users_are_the_enabled_accounts(ws: Workspace) -> None:
    with ws.store.engine.begin() as conn:
        for name, disabled in (("ann", False), ("bo", False), ("cy", True)):
            conn.execute(
                text(
                    "INSERT INTO users (name, role, groups, created_at, disabled) "
                    "VALUES (:name, 'viewer', '[]', :at, :disabled)"
                ),
                {"name": name, "at": NOW, "disabled": disabled},
            )
    assert ws.roi().adoption.registered_users == 2
    with ws.store.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS api_keys"))
        conn.execute(text("DROP TABLE IF EXISTS sessions"))
        conn.execute(text("DROP TABLE users"))
    assert ws.roi().adoption.registered_users is None


def _roi_config(path: Path) -> None:
    (path / CONFIG_FILE).write_text(
        "roi:\n"
        "  currency: EUR\n"
        "  people_per_year: 10000\n"
        "  infrastructure_per_year: 2000\n"
        "  llm_per_year: 0\n"
        "  minutes_saved_per_answer: 60\n"
        "  hourly_cost: 800\n",
        encoding="utf-8",
    )


def test_roi_and_payback_from_value_and_investment(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    Workspace.init(path).close()
    _roi_config(path)
    with Workspace.open(path) as ws:
        _forty_answers(ws, NOW)
        report = compute_roi(ws, days=365, now=NOW)

    # 40 answered a year × 75% 👍 = 30 helpful hours × 800 EUR = 24,000 EUR against 12,000.
    assert report.annual_value == pytest.approx(24_000.0)
    assert report.investment["total"] == 12_000.0
    assert report.roi == pytest.approx((24_000 - 12_000) / 12_000)
    assert report.payback_months == pytest.approx(12_000 / (24_000 / 12))
    assert report.formulas == {
        "roi": "(annual value − investment) / investment = (24,000 EUR − 12,000 EUR) / "
        "12,000 EUR = 100%",
        "payback_months": "investment / (annual value / 12) = 12,000 EUR / 2,000 EUR = 6.0 months",
    }
    assert report.currency == "EUR"
    assert report.defaults == [
        "roi.llm_per_year",  # set, but to its default
        "roi.avg_deal_value",
        "roi.margin",
        "roi.stockout_cost_per_unit",
    ]


def test_no_investment_means_no_roi(ws: Workspace) -> None:
    ws.config.roi.people_per_year = 0
    ws.config.roi.infrastructure_per_year = 0

    report = compute_roi(ws, days=30, now=NOW)

    assert report.roi is None
    assert report.formulas["roi"].startswith("no investment set")


def test_unknown_roi_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"roi": {"hourly_rate": 60}})
    msg = str(err.value)
    assert "roi.hourly_rate: unknown key" in msg
    assert "did you mean 'hourly_cost'" in msg
    with pytest.raises(ConfigError, match=r"roi.margin: Input should be less than or equal to 1"):
        Config.from_dict({"roi": {"margin": 30}})


def test_days_must_be_positive(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="days must be at least 1, got 0"):
        ws.roi(days=0)


def test_cli_json_and_table(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    Workspace.init(path).close()
    _roi_config(path)
    with Workspace.open(path) as ws:
        _forty_answers(ws, datetime.now(UTC))

    result = runner.invoke(app, ["roi", "--days", "365", "--json", "-w", str(path)])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(data) == [
        "adoption",
        "annual_value",
        "currency",
        "days",
        "defaults",
        "formulas",
        "investment",
        "items",
        "payback_months",
        "roi",
        "since",
        "until",
    ]
    assert [i["name"] for i in data["items"]] == ["answers", "leads", "forecast"]
    assert data["annual_value"] == pytest.approx(24_000.0)
    assert data["payback_months"] == pytest.approx(6.0)

    result = runner.invoke(app, ["roi", "--days", "365", "-w", str(path)])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "investment: people 10,000 + infrastructure 2,000 + LLM 0 = 12,000 EUR/year" in lines
    assert "annual value: 24,000 EUR" in lines
    assert "payback: investment / (annual value / 12) = 12,000 EUR / 2,000 EUR = 6.0 months" in (
        lines
    )
    assert "daily active users over" in result.stdout
    assert "(1 distinct; 1 on " in result.stdout


def test_cli_help_has_an_example() -> None:
    result = runner.invoke(app, ["roi", "--help"])
    assert "Example: datawheel roi --days 30 -w kb/" in result.stdout
