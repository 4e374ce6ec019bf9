"""The dashboard's numbers: usage, quality, models, data, alerts, A/B and ROI in one dict.

Everything the web UI's dashboard (and ``GET /api/dashboard``) shows is computed here, from
the store, so the page only draws it:

- **satisfaction** per ISO week: 👍 / (👍 + 👎) of the votes on the questions asked that week
  (a user's latest vote counts, as everywhere);
- **daily**: for every UTC day of the window, questions, answered (not declined), answer
  rate, p95 latency and active users (distinct askers), days without traffic included;
- **evaluations** per model version: the held-out nDCG@10 that improve measured, and every
  ``datawheel evaluate`` result recorded with the version that produced it;
- **data**: documents, chunks, and the rows of each table source's latest clean run;
- **alerts**: the warning and alert findings of each source's latest monitor check;
- **adoption**: active users in the window, daily actives, registered users;
- **ab** and **roi**: the A/B test's status and the ROI report, as their ``to_dict()``.

Example::

    board = build_dashboard(ws, days=30, weeks=8)
    board["totals"]["satisfaction"], board["daily"][-1]["questions"]
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.errors import ConfigError

if TYPE_CHECKING:
    from datawheel.feedback.log import Interaction
    from datawheel.workspace import Workspace


def build_dashboard(
    ws: Workspace, *, days: int = 30, weeks: int = 8, now: datetime | None = None
) -> dict[str, Any]:
    """Every number of the dashboard, JSON-ready.

    Args:
        days: the window of the daily series, totals, adoption and ROI, ending today.
        weeks: ISO weeks of satisfaction, ending with the current week.
        now: the end of the windows (default: now; tests pin it).
    """
    if days < 1 or weeks < 1:
        raise ConfigError(f"days and weeks must be at least 1, got days={days}, weeks={weeks}")
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=days - 1)
    first_monday = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    since = _midnight(min(first_day, first_monday))
    items = ws.interactions.interactions(since=since, until=now)
    votes = _votes(ws, items)
    in_window = [i for i in items if _day(i) >= first_day]
    up, down = _tally(in_window, votes)
    answered = sum(1 for i in in_window if not i.declined)
    return {
        "generated_at": now.isoformat(),
        "days": days,
        "since": first_day.isoformat(),
        "until": today.isoformat(),
        "totals": {
            "questions": len(in_window),
            "answered": answered,
            "answer_rate": _rate(answered, len(in_window)),
            "p95_latency_ms": _p95([i.latency_ms for i in in_window]),
            "up": up,
            "down": down,
            "satisfaction": _rate(up, up + down),
        },
        "satisfaction": _weekly(items, votes, first_monday, weeks),
        "daily": _daily(in_window, first_day, days),
        "evaluations": _evaluations(ws),
        "data": _data(ws),
        "alerts": open_alerts(ws),
        "adoption": _adoption(ws, in_window, days),
        "ab": ws.ab_status().to_dict(),
        "roi": ws.roi(days=days).to_dict() if hasattr(ws, "roi") else None,
    }


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day(item: Interaction) -> date:
    return item.created_at.astimezone(UTC).date()


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _p95(latencies: list[float]) -> float | None:
    return float(np.percentile(latencies, 95)) if latencies else None


def _votes(ws: Workspace, items: list[Interaction]) -> dict[str, list[str]]:
    """The votes on each interaction (one per user: the latest)."""
    by_item: dict[str, list[str]] = defaultdict(list)
    ids = [i.id for i in items]
    for start in range(0, len(ids), 900):  # below SQLite's bound-variable limit
        for v in ws.interactions.feedback(ids[start : start + 900]):
            by_item[v.interaction_id].append(v.vote)
    return by_item


def _tally(items: list[Interaction], votes: dict[str, list[str]]) -> tuple[int, int]:
    cast = [v for i in items for v in votes.get(i.id, [])]
    return cast.count("up"), cast.count("down")


def _weekly(
    items: list[Interaction], votes: dict[str, list[str]], first_monday: date, weeks: int
) -> list[dict[str, Any]]:
    by_week: dict[str, list[Interaction]] = defaultdict(list)
    for item in items:
        by_week[_iso_week(_day(item))].append(item)
    rows = []
    for n in range(weeks):
        monday = first_monday + timedelta(weeks=n)
        week = _iso_week(monday)
        up, down = _tally(by_week.get(week, []), votes)
        rows.append(
            {
                "week": week,
                "start": monday.isoformat(),
                "questions": len(by_week.get(week, [])),
                "up": up,
                "down": down,
                "satisfaction": _rate(up, up + down),
            }
        )
    return rows


def _iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _daily(items: list[Interaction], first_day: date, days: int) -> list[dict[str, Any]]:
    by_day: dict[date, list[Interaction]] = defaultdict(list)
    for item in items:
        by_day[_day(item)].append(item)
    rows = []
    for n in range(days):
        day = first_day + timedelta(days=n)
        asked = by_day.get(day, [])
        answered = sum(1 for i in asked if not i.declined)
        rows.append(
            {
                "day": day.isoformat(),
                "questions": len(asked),
                "answered": answered,
                "answer_rate": _rate(answered, len(asked)),
                "p95_latency_ms": _p95([i.latency_ms for i in asked]),
                "users": len({i.user for i in asked}),
            }
        )
    return rows


def _evaluations(ws: Workspace) -> list[dict[str, Any]]:
    """nDCG@10 per RAG model version: improve's held-out score, then recorded evaluations."""
    rows = []
    for v in ws.versions():
        score = (v.get("metrics") or {}).get("holdout_ndcg@10")
        if score is not None:
            rows.append(
                {
                    "version": v["id"],
                    "source": "held-out feedback",
                    "metric": "ndcg@10",
                    "value": float(score),
                    "at": v["created_at"],
                }
            )
    for e in reversed(ws.store.evaluations(limit=200)):  # oldest first, like the versions
        score = (e.get("metrics") or {}).get("ndcg@10")
        if score is None:
            continue
        at = e.get("created_at")
        rows.append(
            {
                "version": (e.get("versions") or {}).get("version") or "baseline",
                "source": f"{e['dataset'].rsplit('/', 1)[-1]} ({e['split']}, {e['mode']})",
                "metric": "ndcg@10",
                "value": float(score),
                "at": at.isoformat() if isinstance(at, datetime) else at,
            }
        )
    return rows


def _data(ws: Workspace) -> dict[str, Any]:
    """Documents and chunks, and each table source's latest clean or readmit run."""
    counts = ws.store.counts()
    latest: dict[str, dict[str, Any]] = {}
    for row in ws.table_versions():  # ordered by source, then run
        latest[row["source"]] = row
    tables = [
        {
            "source": name,
            "run": row["run"],
            "rows": row["rows_clean"],
            "quarantined": row["rows_quarantined"],
        }
        for name, row in sorted(latest.items())
    ]
    return {
        "documents": counts["documents"],
        "chunks": counts["chunks"],
        "table_sources": len(set(ws.config.sources) | set(latest)),
        "table_rows": sum(t["rows"] for t in tables),
        "quarantined_rows": sum(t["quarantined"] for t in tables),
        "tables": tables,
    }


def open_alerts(ws: Workspace) -> list[dict[str, Any]]:
    """Warnings and alerts of each source's latest monitor check, alerts first."""
    return [
        {
            "source": f["source"],
            "check": f["check"],
            "level": f["level"],
            "column": f["column_name"],
            "message": f["message"],
            "at": f["at"].isoformat(),
        }
        for f in ws.monitor_findings(open_only=True)
    ]


def _adoption(ws: Workspace, items: list[Interaction], days: int) -> dict[str, Any]:
    per_day: dict[date, set[str]] = defaultdict(set)
    for item in items:
        per_day[_day(item)].add(item.user)
    registered = ws.users.count()
    dau = sum(len(u) for u in per_day.values()) / len(per_day) if per_day else None
    return {
        "active_users": len({i.user for i in items}),
        "days_with_traffic": len(per_day),
        "dau": dau,  # distinct users per day, averaged over the days with traffic
        "registered": registered,
        "adoption": dau / registered if dau is not None and registered else None,
    }
