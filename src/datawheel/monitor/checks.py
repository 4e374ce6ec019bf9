"""The checks: each compares what a run saw with what earlier runs saw and returns findings.

- volume: rows added since the last run (or all rows) vs the trailing average;
- drift: PSI per column between the reference's binned distribution and today's;
- freshness: age of the newest date;
- schema: added, removed and retyped columns since the last run;
- nulls: rise of each column's null rate over the reference;
- rejected: lines the reader could not parse into rows (reported only when there are some);
- documents: documents added this week vs earlier weeks, and the share of stale documents.

Levels: ``ok`` < ``warning`` < ``alert``. Every function is pure, so each is easy to test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from datawheel.monitor.settings import Level
from datawheel.monitor.snapshot import CATEGORICAL, NUMERIC, ColumnStats

LEVELS: dict[str, int] = {"ok": 0, "warning": 1, "alert": 2}
PSI_FLOOR = 1e-4  # share used for an empty bin, so PSI stays finite


@dataclass
class Finding:
    """One result of one check on one source (``documents`` for the knowledge base)."""

    source: str
    check: str
    level: Level
    message: str
    value: float | None = None
    threshold: float | None = None
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def worst(findings: list[Finding]) -> Level:
    """The highest level among ``findings`` (``ok`` when empty)."""
    top: Level = "ok"
    for f in findings:
        if LEVELS[f.level] > LEVELS[top]:
            top = f.level
    return top


def psi(expected: list[int], actual: list[int], floor: float = PSI_FLOOR) -> float | None:
    """Population stability index of two histograms on the same bins.

    ``sum((a - e) * ln(a / e))`` over bins, with ``e``/``a`` the shares of the reference and
    current rows and empty bins counted as ``floor``. ``None`` when either side has no rows.
    """
    if len(expected) != len(actual):
        raise ValueError(f"bins differ: {len(expected)} vs {len(actual)}")
    e_total, a_total = sum(expected), sum(actual)
    if not e_total or not a_total:
        return None
    value = 0.0
    for e_n, a_n in zip(expected, actual, strict=True):
        e, a = max(e_n / e_total, floor), max(a_n / a_total, floor)
        value += (a - e) * math.log(a / e)
    return value


def check_volume(
    source: str, rows: int, earlier: list[int], basis: str, min_ratio: float, trailing: int
) -> Finding:
    """``earlier``: row counts of earlier runs, oldest first (the last is the previous run)."""
    if not earlier:
        return Finding(source, "volume", "ok", f"first run: {rows} rows", float(rows))
    if basis == "total":
        window = earlier[-trailing:]
        now, what = rows, "rows"
    else:
        now, what = rows - earlier[-1], "rows added"
        if now < 0:
            return Finding(
                source,
                "volume",
                "alert",
                f"{-now} rows disappeared since the last run ({earlier[-1]} → {rows}); if the "
                "source is replaced by each export, set monitor volume: total",
                float(now),
                0.0,
            )
        tail = earlier[-(trailing + 1) :]
        window = [max(b - a, 0) for a, b in zip(tail, tail[1:], strict=False)]
        if not window:
            return Finding(
                source,
                "volume",
                "ok",
                f"{now} rows added; the trailing average starts with the next run",
                float(now),
            )
    average = sum(window) / len(window)
    threshold = min_ratio * average
    runs = f"{len(window)} run{'s' if len(window) > 1 else ''}"
    if now < threshold:
        return Finding(
            source,
            "volume",
            "alert",
            f"{now} {what}, below {min_ratio:.0%} of the trailing average {average:.1f} ({runs})",
            float(now),
            threshold,
        )
    return Finding(
        source,
        "volume",
        "ok",
        f"{now} {what} (trailing average {average:.1f} over {runs})",
        float(now),
        threshold,
    )


def check_schema(source: str, now: dict[str, str], before: dict[str, str] | None) -> Finding:
    """Columns added (warning), removed or retyped (alert) since the previous run.

    A switch between integer and double is a warning: one decimal value turns an integer
    column into a double one.
    """
    if before is None:
        return Finding(source, "schema", "ok", f"first run: {len(now)} columns")
    added = [c for c in now if c not in before]
    removed = [c for c in before if c not in now]
    retyped = [c for c in now if c in before and now[c] != before[c]]
    numeric = {"integer", "double"}
    hard = [c for c in retyped if not {now[c], before[c]} <= numeric]
    parts = []
    if removed:
        parts.append("removed " + ", ".join(removed))
    if retyped:
        parts.append("retyped " + ", ".join(f"{c} ({before[c]} → {now[c]})" for c in retyped))
    if added:
        parts.append("added " + ", ".join(added))
    if not parts:
        return Finding(source, "schema", "ok", f"{len(now)} columns, unchanged", 0.0)
    level: Level = "alert" if removed or hard else "warning"
    changes = len(added) + len(removed) + len(retyped)
    return Finding(source, "schema", level, "; ".join(parts), float(changes), 0.0)


def check_rejected(
    source: str, records: int, lines: int, rows: int, first: str | None, alert_share: float
) -> Finding | None:
    """Malformed records the reader skipped: a warning, an alert at ``alert_share`` of lines.

    ``lines`` counts physical lines: an unclosed quote makes one record of everything up to
    the next quote, so one bad record can hide most of a file. None when every line parsed.
    ``datawheel clean`` quarantines these records with their reasons; this check makes a
    broken export visible before anyone cleans it.
    """
    if records == 0:
        return None
    share = lines / (rows + lines)
    level: Level = "alert" if share >= alert_share else "warning"
    span = f" spanning {lines:,} lines" if lines > records else ""
    where = f"; first: {first}" if first else ""
    message = (
        f"{records:,} malformed record(s){span} the reader could not parse "
        f"({share:.2%} of lines){where}; datawheel clean quarantines them with the reason"
    )
    return Finding(source, "rejected", level, message, float(lines), alert_share)


def check_drift(
    source: str,
    columns: dict[str, ColumnStats],
    refs: dict[str, ColumnStats],
    skip: set[str],
    warn: float,
    alert: float,
) -> list[Finding]:
    """PSI of each numeric and text column against its reference; one finding per drifted
    column, or one ``ok`` finding naming the largest PSI.

    Columns in ``skip`` and integer columns whose values are all distinct (ids, which move
    with every new row) are not checked.
    """
    found: list[Finding] = []
    checked: list[tuple[float, str]] = []
    for name, cur in columns.items():
        ref = refs.get(name)
        if name in skip or cur.unique or cur.kind not in (NUMERIC, CATEGORICAL) or ref is None:
            continue
        if ref.kind != cur.kind or ref.counts is None or cur.counts is None:
            continue
        if (ref.edges, ref.categories) != (cur.edges, cur.categories):
            continue  # different bins cannot be compared
        value = psi(ref.counts, cur.counts)
        if value is None:
            continue
        checked.append((value, name))
        if value >= warn:
            level: Level = "alert" if value >= alert else "warning"
            found.append(
                Finding(
                    source,
                    "drift",
                    level,
                    f"{name}: distribution drifted, PSI {value:.3f} (warn {warn}, alert {alert})",
                    round(value, 6),
                    alert if level == "alert" else warn,
                    name,
                )
            )
    if found:
        return found
    if not checked:
        return [Finding(source, "drift", "ok", "no reference distribution yet")]
    top, name = max(checked)
    return [
        Finding(
            source,
            "drift",
            "ok",
            f"{len(checked)} columns stable; largest PSI {top:.3f} ({name})",
            round(top, 6),
            warn,
        )
    ]


def check_nulls(
    source: str, columns: dict[str, ColumnStats], refs: dict[str, ColumnStats], jump: float
) -> list[Finding]:
    """A rise of a column's null rate by ``jump`` warns; by twice that, alerts."""
    found: list[Finding] = []
    compared = 0
    for name, cur in columns.items():
        ref = refs.get(name)
        if ref is None:
            continue
        compared += 1
        rise = cur.nulls - ref.nulls
        if rise >= jump - 1e-9:
            level: Level = "alert" if rise >= 2 * jump - 1e-9 else "warning"
            found.append(
                Finding(
                    source,
                    "nulls",
                    level,
                    f"{name}: null rate rose from {ref.nulls:.1%} to {cur.nulls:.1%}",
                    round(rise, 6),
                    2 * jump if level == "alert" else jump,
                    name,
                )
            )
    if found:
        return found
    if not compared:
        return [Finding(source, "nulls", "ok", "no reference null rates yet")]
    return [Finding(source, "nulls", "ok", f"{compared} columns: null rates steady", 0.0, jump)]


def check_freshness(
    source: str,
    newest: str | None,
    date_column: str | None,
    wanted: str | None,
    schema: dict[str, str],
    today: date,
    stale_days: int,
) -> Finding:
    """The newest date of ``date_column`` may be at most ``stale_days`` old.

    ``wanted``: the configured date column, if any; ``schema``: column → type, to explain a
    configured column that is missing or holds no dates.
    """
    if wanted and date_column is None:
        what = f"is {schema[wanted]}, not a date" if wanted in schema else "is not in the table"
        return Finding(
            source,
            "freshness",
            "warning",
            f"date column {wanted!r} {what}; columns: "
            + ", ".join(f"{c} ({t})" for c, t in schema.items())
            + f"; fix monitor.sources.{source}.date_column",
        )
    if date_column is None:
        return Finding(
            source,
            "freshness",
            "ok",
            f"skipped: no date column; set monitor.sources.{source}.date_column to check it",
        )
    if newest is None:
        return Finding(source, "freshness", "alert", f"{date_column} has no dates")
    age = (today - date.fromisoformat(newest)).days
    if age < -1:  # a typo'd year, or a clock ahead: freshness cannot be judged from it
        return Finding(
            source,
            "freshness",
            "warning",
            f"newest {date_column} is {newest}, {-age} days in the future: a wrong date "
            f"(e.g. a typo'd year) hides how fresh the table is; quarantine or fix those rows "
            f"(clean quarantines dates past clean.future_days)",
            float(age),
            float(stale_days),
        )
    if age > stale_days:
        return Finding(
            source,
            "freshness",
            "alert",
            f"stale: newest {date_column} is {newest}, {age} days old (stale after {stale_days})",
            float(age),
            float(stale_days),
        )
    return Finding(
        source,
        "freshness",
        "ok",
        f"newest {date_column} is {newest} ({age} days old)",
        float(age),
        float(stale_days),
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _doc_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None


def check_documents(
    docs: list[tuple[datetime | None, str | None]],
    now: datetime,
    *,
    weeks: int,
    min_ratio: float,
    stale_days: int,
    stale_share: float,
) -> list[Finding]:
    """``docs``: (ingested_at, date) of every document. Empty when there are none."""
    if not docs:
        return []
    now = _utc(now)
    ingested = [_utc(at) for at, _ in docs if at is not None]
    first = min(ingested, default=now)
    week = timedelta(days=7)
    added = sum(1 for at in ingested if now - week < at <= now)
    # earlier full weeks of the knowledge base's life; the week of the first load is left
    # out, as one bulk import would make every later week look small
    earlier = [
        sum(1 for at in ingested if now - (i + 1) * week < at <= now - i * week)
        for i in range(1, weeks + 1)
        if now - (i + 1) * week > first
    ]
    found: list[Finding] = []
    if not earlier:
        found.append(
            Finding(
                "documents",
                "documents_added",
                "ok",
                f"{added} documents added in the last 7 days; the weekly average needs "
                "a full week of history",
                float(added),
            )
        )
    else:
        average = sum(earlier) / len(earlier)
        threshold = min_ratio * average
        level: Level = "warning" if added < threshold else "ok"
        span = f"the weekly average {average:.1f} over {len(earlier)} weeks"
        message = (
            f"{added} documents added in the last 7 days, below {min_ratio:.0%} of {span}"
            if level == "warning"
            else f"{added} documents added in the last 7 days ({span})"
        )
        found.append(
            Finding("documents", "documents_added", level, message, float(added), threshold)
        )
    dated = [d for _, raw in docs if (d := _doc_date(raw)) is not None]
    if not dated:
        found.append(
            Finding("documents", "documents_stale", "ok", "no document has a date to check")
        )
        return found
    cutoff = now.date() - timedelta(days=stale_days)
    stale = sum(1 for d in dated if d < cutoff)
    share = stale / len(dated)
    level = "warning" if share > stale_share else "ok"
    found.append(
        Finding(
            "documents",
            "documents_stale",
            level,
            f"{stale} of {len(dated)} dated documents ({share:.0%}) are older than "
            f"{stale_days} days" + (f" (warn above {stale_share:.0%})" if level != "ok" else ""),
            round(share, 6),
            stale_share,
        )
    )
    return found
