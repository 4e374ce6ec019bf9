"""The business view: what the flywheel is worth, measured from its own usage, against its cost.

Every line item is a measured quantity from the store times assumptions from the ``roi:``
section of ``datawheel.yaml``; both are kept next to the number, with the formula written
out, so a reader can see (and argue with) why it is what it is.

What is measured where:

- **answers**: questions asked in the last ``days`` days that were answered (not declined),
  and the 👍 rate of the votes on them. Answers nobody voted on count as helpful at the
  measured rate, so helpful answers = answered × 👍 rate.
- **leads**: the top-20% lift of the lead model on every settled score (scores matched to a
  real won/lost outcome) of the version in use, and the distinct leads scored in the window.
- **forecast**: WAPE of the forecasts settled by imported actuals against seasonal-naive
  (the actual 7 days earlier, from the imported actuals) on the same series-days, and the
  actual units sold per settled day.
- **adoption**: distinct users per day with traffic in the window; over registered users
  when the workspace knows them.

Window counts are annualised as × 365 / days. ROI = (annual value − investment) /
investment; payback months = investment / (annual value / 12).

Example::

    report = compute_roi(ws, days=30)
    report.annual_value, report.roi, report.payback_months
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from datawheel.errors import ConfigError

if TYPE_CHECKING:
    from datawheel.feedback.log import Interaction
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)

TOP_SHARE = 0.2  # the lead model's lift is measured on its top 20% of scores
SEASON_DAYS = 7  # seasonal-naive repeats the same weekday of the week before
_VOTE_BATCH = 900  # interaction ids per feedback query (below SQLite's variable limit)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RoiConfig(_Section):
    """What datawheel costs and what its measured results are worth (``datawheel roi``)."""

    currency: str = Field("USD", description="Currency label of every amount in this section.")
    people_per_year: float = Field(
        60_000.0,
        ge=0,
        description="People cost per year: the share of salaries spent running and curating "
        "datawheel (default: half an engineer).",
    )
    infrastructure_per_year: float = Field(
        6_000.0, ge=0, description="Servers, storage and backups per year."
    )
    llm_per_year: float = Field(
        0.0,
        ge=0,
        description="LLM spend per year: API bills or GPU time (0 with the offline "
        "extractive generator).",
    )
    minutes_saved_per_answer: float = Field(
        10.0,
        ge=0,
        description="Minutes a helpful answer saves against searching or asking a colleague.",
    )
    hourly_cost: float = Field(
        50.0, ge=0, description="Loaded cost of one hour of the people who ask questions."
    )
    avg_deal_value: float = Field(5_000.0, ge=0, description="Average value of a won deal.")
    margin: float = Field(
        0.3, ge=0, le=1, description="Share of a won deal's value that is profit (0..1)."
    )
    stockout_cost_per_unit: float = Field(
        5.0,
        ge=0,
        description="Cost of one unit of forecast error (a sale missed for want of stock, or "
        "an excess unit held); every unit of error the forecast avoids saves this much.",
    )


@dataclass
class LineItem:
    """One source of value: its annual value, what was measured and what was assumed."""

    name: str  # answers, leads, forecast
    title: str
    annual_value: float
    measured: dict[str, Any]
    assumptions: dict[str, Any]  # config key (roi.hourly_cost) -> value used
    formula: str  # the computation with the numbers filled in
    reason: str | None = None  # why the value is zero or negative, when it is


@dataclass
class Adoption:
    days_with_traffic: int
    users: int  # distinct users who asked in the window
    dau: float | None  # distinct users per day, averaged over days with traffic
    last_day: str | None  # the most recent day with traffic
    last_day_users: int
    registered_users: int | None
    adoption: float | None  # dau / registered_users


@dataclass
class RoiReport:
    days: int
    since: str
    until: str
    currency: str
    items: list[LineItem]
    adoption: Adoption
    investment: dict[str, float]  # people, infrastructure, llm, total (per year)
    annual_value: float
    roi: float | None  # (annual value - investment) / investment
    payback_months: float | None  # investment / (annual value / 12)
    formulas: dict[str, str]  # roi, payback_months, with the numbers filled in
    defaults: list[str] = field(default_factory=list)  # assumptions still at their default

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_roi(
    ws: Workspace,
    *,
    days: int = 30,
    registered_users: int | None = None,
    now: datetime | None = None,
    extrapolate: bool = False,
) -> RoiReport:
    """Annual value from measured usage over the last ``days`` days, against the investment.

    Args:
        days: the usage window; its counts are annualised as × 365 / days.
        registered_users: users with an account, for adoption = daily active / registered.
        now: the end of the window (default: now).
        extrapolate: annualise usage seen on fewer than 7 days too (by default such a line
            is 0, with the reason: one batch of scores is no year).

    Example:
        >>> report = compute_roi(ws, days=30)
        >>> [(i.name, i.annual_value, i.reason) for i in report.items]
    """
    if days < 1:
        raise ConfigError(f"days must be at least 1, got {days}")
    cfg = ws.config.roi
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days)
    asked = ws.interactions.interactions(since=since, until=until)
    items = [
        _answers(ws, cfg, asked, days, extrapolate),
        _leads(ws, cfg, since, days, extrapolate),
        _forecast(ws, cfg),
    ]
    value = sum(i.annual_value for i in items)
    invest = {
        "people": cfg.people_per_year,
        "infrastructure": cfg.infrastructure_per_year,
        "llm": cfg.llm_per_year,
    }
    total = sum(invest.values())
    invest["total"] = total
    roi = (value - total) / total if total > 0 else None
    payback = total / (value / 12) if value > 0 else None
    money = partial(_money, currency=cfg.currency)
    formulas = {
        "roi": (
            f"(annual value − investment) / investment = ({money(value)} − {money(total)}) / "
            f"{money(total)} = {roi:.0%}"
            if roi is not None
            else "no investment set (roi.people_per_year, roi.infrastructure_per_year, "
            "roi.llm_per_year are all 0)"
        ),
        "payback_months": (
            f"investment / (annual value / 12) = {money(total)} / {money(value / 12)} = "
            f"{payback:.1f} months"
            if payback is not None
            else "no payback: the measured annual value is not positive"
        ),
    }
    return RoiReport(
        days=days,
        since=since.isoformat(),
        until=until.isoformat(),
        currency=cfg.currency,
        items=items,
        adoption=_adoption(asked, registered_users),
        investment=invest,
        annual_value=value,
        roi=roi,
        payback_months=payback,
        formulas=formulas,
        defaults=[
            f"roi.{name}"
            for name, spec in RoiConfig.model_fields.items()
            if name != "currency" and getattr(cfg, name) == spec.default
        ],
    )


# --- answers ----------------------------------------------------------------------------------


MIN_EVIDENCE_DAYS = 7  # usage seen on fewer days is not annualised unless asked


def _too_little(what: str, active: int, extrapolate: bool) -> str | None:
    if active >= MIN_EVIDENCE_DAYS or extrapolate:
        return None
    return (
        f"{what} on {active} day{'s' if active != 1 else ''} only: under "
        f"{MIN_EVIDENCE_DAYS} days of evidence is not annualised (datawheel roi --extrapolate "
        "does it anyway)"
    )


def _answers(
    ws: Workspace, cfg: RoiConfig, asked: list[Interaction], days: int, extrapolate: bool
) -> LineItem:
    answered = [i.id for i in asked if not i.declined]
    votes = [
        v.vote
        for start in range(0, len(answered), _VOTE_BATCH)
        for v in ws.interactions.feedback(answered[start : start + _VOTE_BATCH])
    ]
    up, down = votes.count("up"), votes.count("down")
    rate = up / (up + down) if up + down else None
    per_year = len(answered) * 365 / days
    active = len({i.created_at.date() for i in asked})
    measured = {
        "evidence_days": active,
        "questions": len(asked),
        "answered": len(answered),
        "up": up,
        "down": down,
        "up_rate": rate,
        "answered_per_year": per_year,
    }
    assumptions = {
        "roi.minutes_saved_per_answer": cfg.minutes_saved_per_answer,
        "roi.hourly_cost": cfg.hourly_cost,
    }
    title = "answers: time saved by helpful answers"
    money = partial(_money, currency=cfg.currency)
    if not answered:
        reason = f"no answered questions in the last {days} days"
        return LineItem("answers", title, 0.0, measured, assumptions, "", reason)
    if rate is None:
        reason = f"no 👍/👎 votes yet on the {len(answered):,} answers: helpfulness unmeasured"
        return LineItem("answers", title, 0.0, measured, assumptions, "", reason)
    short = _too_little(f"{len(answered):,} answers", active, extrapolate)
    if short:
        return LineItem("answers", title, 0.0, measured, assumptions, "", short)
    helpful = per_year * rate
    value = helpful * cfg.minutes_saved_per_answer / 60 * cfg.hourly_cost
    formula = (
        f"{len(answered):,} answered (on {active} days) × 365/{days} × {rate:.0%} 👍 "
        f"(unvoted answers count at this rate) = {helpful:,.0f} helpful answers/year × "
        f"{cfg.minutes_saved_per_answer:g} min / 60 × {money(cfg.hourly_cost)}/h = {money(value)}"
    )
    return LineItem("answers", title, value, measured, assumptions, formula)


# --- leads ------------------------------------------------------------------------------------


def _leads(
    ws: Workspace, cfg: RoiConfig, since: datetime, days: int, extrapolate: bool
) -> LineItem:
    scored = ws.predictions.count_entities("leads", since=since)
    per_year = scored * 365 / days
    active = ws.predictions.active_days("leads", since=since)
    measured: dict[str, Any] = {
        "evidence_days": active,
        "leads_scored": scored,
        "leads_scored_per_year": per_year,
    }
    assumptions = {
        "top_share": TOP_SHARE,
        "roi.avg_deal_value": cfg.avg_deal_value,
        "roi.margin": cfg.margin,
    }
    title = "leads: extra deals won by working the top-scored 20% first"
    by_version: dict[str, dict[str, Any]] = {}
    if ws.predictions.count_entities("leads"):  # the leads app (and pandas) is in use
        from datawheel.apps.leads.evidence import version_metrics

        by_version = version_metrics(ws)
    if not by_version:
        reason = "no matched outcomes yet (import won/lost deals: datawheel leads outcomes FILE)"
        return LineItem("leads", title, 0.0, measured, assumptions, "", reason)
    version, note = _version(ws, "leads", {v: m["n"] for v, m in by_version.items()})
    m = by_version[version]
    base, lift = m["base_rate"], m["lift_top20"]
    measured |= {"version": version, "version_note": note, "settled": m["n"]}
    measured |= {"won": m["positives"], "base_win_rate": base, "lift_top20": lift}
    if lift is None:
        reason = f"none of the {m['n']:,} settled scores of {version} was won: lift unmeasured"
        return LineItem("leads", title, 0.0, measured, assumptions, "", reason)
    short = _too_little(f"{scored:,} leads scored", active, extrapolate) if scored else None
    if short:
        return LineItem("leads", title, 0.0, measured, assumptions, "", short)
    top = lift * base
    extra = (top - base) * per_year * TOP_SHARE
    measured |= {"top20_win_rate": top, "extra_wins_per_year": extra}
    value = extra * cfg.avg_deal_value * cfg.margin
    money = partial(_money, currency=cfg.currency)
    formula = (
        f"({top:.1%} win rate in the top 20% − {base:.1%} base) × {scored:,} leads scored "
        f"(on {active} days) × 365/{days} × 20% worked = {extra:,.1f} extra wins/year × "
        f"{money(cfg.avg_deal_value)} × {cfg.margin:.0%} margin = {money(value)}"
    )
    caveat = None
    if scored == 0:
        caveat = f"no leads scored in the last {days} days"
    elif value < 0:
        caveat = f"the top 20% of {version} wins less often than the average lead"
    return LineItem("leads", title, value, measured, assumptions, formula, caveat)


# --- forecast ---------------------------------------------------------------------------------


def _forecast(ws: Workspace, cfg: RoiConfig) -> LineItem:
    assumptions = {"roi.stockout_cost_per_unit": cfg.stockout_cost_per_unit}
    title = "forecast: units of error avoided against seasonal-naive"
    settled = ws.predictions.settled("forecast")
    if not settled:
        reason = (
            "no forecasts settled by actuals yet (import sales: datawheel forecast actuals FILE)"
        )
        return LineItem("forecast", title, 0.0, {"settled": 0}, assumptions, "", reason)
    counts: dict[str, int] = defaultdict(int)
    for p, _ in settled:
        counts[p.version or ""] += 1
    version, note = _version(ws, "forecast", counts)
    actual = ws.predictions.actuals("forecast")
    ys: list[float] = []
    fs: list[float] = []
    pairs: list[tuple[float, float, float]] = []  # actual, ours, seasonal-naive
    dates: set[str] = set()
    for p, value in settled:
        if (p.version or "") != version:
            continue
        series, day = p.entity.rsplit("@", 1)
        dates.add(day)
        ys.append(float(value))
        fs.append(float(p.output["forecast"]))
        before = date.fromisoformat(day) - timedelta(days=SEASON_DAYS)
        earlier = actual.get(f"{series}@{before.isoformat()}")
        if earlier is not None:
            pairs.append((float(value), float(p.output["forecast"]), float(earlier)))
    units_per_day = sum(ys) / len(dates)
    measured: dict[str, Any] = {
        "version": version,
        "version_note": note,
        "settled": len(ys),
        "settled_days": len(dates),
        "units_per_day": units_per_day,
        "compared": len(pairs),
    }
    from datawheel.apps.forecast.backtest import accuracy

    if pairs:
        y, f, n = (list(c) for c in zip(*pairs, strict=True))
        wape, naive_wape = accuracy(y, f)["wape"], accuracy(y, n)["wape"]
        measured["baseline_from"] = "imported actuals 7 days earlier, on the same series-days"
    else:
        wape = accuracy(ys, fs)["wape"]
        naive_wape = _registry_metric(ws, version, "naive_wape")
        measured["baseline_from"] = f"backtest metrics of {version} in the registry"
    measured |= {"wape": wape, "naive_wape": naive_wape}
    if naive_wape is None:
        reason = (
            f"no seasonal-naive baseline: none of the {len(ys):,} settled series-days has the "
            f"actual of {SEASON_DAYS} days earlier imported, and {version} records no "
            "backtest naive_wape; import the week before too"
        )
        return LineItem("forecast", title, 0.0, measured, assumptions, "", reason)
    if wape is None:
        reason = "every settled actual is 0: WAPE is undefined"
        return LineItem("forecast", title, 0.0, measured, assumptions, "", reason)
    avoided = (naive_wape - wape) * units_per_day * 365
    measured["units_avoided_per_year"] = avoided
    value = avoided * cfg.stockout_cost_per_unit
    money = partial(_money, currency=cfg.currency)
    formula = (
        f"({naive_wape:.1%} seasonal-naive WAPE − {wape:.1%} ours) × {units_per_day:,.1f} "
        f"units/day × 365 = {avoided:,.0f} units of error avoided/year × "
        f"{money(cfg.stockout_cost_per_unit)} per unit = {money(value)}"
    )
    caveat = f"{version} has more error than seasonal-naive" if value < 0 else None
    return LineItem("forecast", title, value, measured, assumptions, formula, caveat)


def _registry_metric(ws: Workspace, version: str, key: str) -> float | None:
    from datawheel.improve.registry import Registry

    for row in Registry(ws.store, kind="forecast").versions():
        if row["id"] == version and row["metrics"].get(key) is not None:
            return float(row["metrics"][key])
    return None


def _version(ws: Workspace, kind: str, settled: dict[str, int]) -> tuple[str, str]:
    """The version in use when it has settled predictions, else the one with the most."""
    from datawheel.improve.registry import Registry

    current = Registry(ws.store, kind=kind).current()
    if current in settled:
        return current, "the version in use"
    best = max(settled, key=lambda v: settled[v])
    if current:
        return best, f"{current}, the version in use, has no settled predictions yet"
    return best, "no version in use; the one with the most settled predictions"


# --- adoption ---------------------------------------------------------------------------------


def _adoption(asked: list[Interaction], registered: int | None) -> Adoption:
    by_day: dict[str, set[str]] = defaultdict(set)
    for item in asked:
        by_day[item.created_at.astimezone(UTC).date().isoformat()].add(item.user)
    users = set().union(*by_day.values()) if by_day else set()
    dau = sum(len(u) for u in by_day.values()) / len(by_day) if by_day else None
    last = max(by_day) if by_day else None
    return Adoption(
        days_with_traffic=len(by_day),
        users=len(users),
        dau=dau,
        last_day=last,
        last_day_users=len(by_day[last]) if last else 0,
        registered_users=registered,
        adoption=dau / registered if dau is not None and registered else None,
    )


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.0f} {currency}"
