"""One monitor run: profile every table source, check it against its history, check the
document knowledge base, store everything, then alert.

Findings are stored per source as soon as that source is checked, before any alert is
sent, so a crash or a dead webhook never loses them. A source that cannot be read is an
``alert`` finding with the reason; the other sources go on.

Example::

    report = run_monitor(ws, ws.config.monitor)
    print(report.render())
    raise SystemExit(report.exit_code)   # 0 ok, 1 warnings, 2 alerts
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from datawheel.errors import ConfigError, DatawheelError
from datawheel.monitor.alerts import notify, summary_text
from datawheel.monitor.checks import (
    LEVELS,
    Finding,
    check_documents,
    check_drift,
    check_freshness,
    check_nulls,
    check_rejected,
    check_schema,
    check_volume,
    worst,
)
from datawheel.monitor.history import History
from datawheel.monitor.settings import Level, MonitorConfig
from datawheel.monitor.snapshot import ColumnStats, Snapshot, profile
from datawheel.store.schema import documents
from datawheel.tables.pipeline import session
from datawheel.tables.read import load

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class MonitorReport:
    """What a run found; ``exit_code`` is 0 (ok), 1 (warnings) or 2 (alerts)."""

    workspace: str
    run_id: int | None
    run_at: datetime
    findings: list[Finding] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def level(self) -> Level:
        return worst(self.findings)

    @property
    def exit_code(self) -> int:
        return LEVELS[self.level]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "run_id": self.run_id,
            "run_at": self.run_at.isoformat(),
            "level": self.level,
            "exit_code": self.exit_code,
            "seconds": self.seconds,
            "sources": self.sources,
            "findings": [f.to_dict() for f in self.findings],
        }

    def render(self) -> str:
        return summary_text(self.workspace, self.run_id, self.run_at, self.findings)


def run_monitor(
    ws: Workspace,
    config: MonitorConfig,
    source: str | None = None,
    *,
    now: datetime | None = None,
    rebaseline: bool = False,
) -> MonitorReport:
    """Check every table source (or only ``source``) and, for a full run, the documents.

    ``rebaseline`` accepts the data as it is now: this run compares nothing for drift and
    null rates, and its snapshot becomes the reference later runs compare against (after a
    known change, such as a new product line, that should stop alerting).

    Raises:
        ConfigError: ``source`` or a name under ``monitor.sources`` is not a table source.
    """
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    unknown = sorted(set(config.sources) - set(ws.config.sources))
    if unknown:
        known = ", ".join(sorted(ws.config.sources)) or "none"
        raise ConfigError(
            f"monitor.sources names unknown source(s) {', '.join(unknown)}; the table "
            f"sources are: {known}"
        )
    if source is not None:
        ws.table_source(source)  # a ConfigError naming the known sources
    names = [source] if source else list(ws.config.sources)
    history = History(ws.store.engine)
    run_id = ws.store.start_run(
        "monitor", {"source": source or "all", **({"rebaseline": True} if rebaseline else {})}
    )
    report = MonitorReport(str(ws.path), run_id, now)
    try:
        for name in names:
            found, summary = _check_source(ws, name, config, history, run_id, now, rebaseline)
            history.save_findings(run_id, now, found)
            report.findings += found
            report.sources[name] = summary
        if source is None:
            found = _check_documents(ws, config, now)
            history.save_findings(run_id, now, found)
            report.findings += found
        problems = notify(str(ws.path), run_id, now, report.findings, config)
        history.save_findings(run_id, now, problems)
        report.findings += problems
    except BaseException:
        ws.store.finish_run(run_id, "failed", {})
        raise
    report.seconds = round(time.perf_counter() - started, 3)
    levels = {level: sum(f.level == level for f in report.findings) for level in LEVELS}
    ws.store.finish_run(
        run_id, "finished", {"sources": len(names), "level": report.level, **levels}
    )
    return report


def _check_source(
    ws: Workspace,
    name: str,
    config: MonitorConfig,
    history: History,
    run_id: int,
    now: datetime,
    rebaseline: bool = False,
) -> tuple[list[Finding], dict[str, Any]]:
    opts = config.for_source(name)
    previous = history.latest(name)
    # No references: every column's stats in this snapshot start a new reference window.
    refs = {} if rebaseline else _references(history, previous, config.reference)
    try:
        source = ws.table_source(name)
        with session(config.memory_limit) as (con, work):
            loaded = load(con, source, "raw", workdir=work)
            snap = profile(
                con,
                "raw",
                name,
                bins=config.psi_bins,
                top_k=config.top_categories,
                declared=dict(source.clean.types) if hasattr(source, "clean") else None,
                previous_types=previous.schema if previous else None,
                anchors={c: stats for c, (_, stats) in refs.items()},
                date_column=opts.date_column,
            )
    except Exception as exc:  # any failure to read is a finding; the other sources go on
        reason = str(exc) if isinstance(exc, DatawheelError) else f"{type(exc).__name__}: {exc}"
        log.warning("cannot read %s: %s", name, reason)
        finding = Finding(name, "read", "alert", f"cannot read the source: {reason}")
        return [finding], {"error": reason}
    matched: dict[str, ColumnStats] = {}
    for column, stats in snap.columns.items():
        if column in refs and refs[column][1].kind == stats.kind:
            stats.ref, matched[column] = refs[column][0], refs[column][1]
    earlier = history.row_counts(name, config.trailing_runs + 1)
    history.save_snapshot(run_id, snap, now)
    skip = set(getattr(source, "key", [])) | set(opts.ignore_columns)
    if rebaseline:  # nothing to compare against: say why, once
        message = (
            f"rebaselined: this run's {snap.rows:,} rows are the new reference for drift "
            "and null rates"
        )
        compared = [Finding(name, "drift", "ok", message)]
    else:
        compared = [
            *check_drift(name, snap.columns, matched, skip, config.psi_warn, config.psi_alert),
            *check_nulls(name, snap.columns, matched, config.null_jump),
        ]
    found = [
        check_volume(
            name,
            snap.rows,
            earlier,
            config.volume_of(name),
            config.volume_min_ratio,
            config.trailing_runs,
        ),
        check_freshness(
            name,
            snap.newest,
            snap.date_column,
            opts.date_column,
            snap.schema,
            now.date(),
            config.stale_days(name),
        ),
        check_schema(name, snap.schema, previous.schema if previous else None),
        *compared,
    ]
    first = loaded.rejected[0] if loaded.rejected else None
    rejected = check_rejected(
        name,
        len(loaded.rejected),
        sum(r.text.count("\n") + 1 for r in loaded.rejected),
        snap.rows,
        f"line {first.line}: {first.reason[:160]}" if first else None,
        config.rejected_alert,
    )
    if rejected is not None:
        found.append(rejected)
    summary = {
        "rows": snap.rows,
        "columns": snap.schema,
        "date_column": snap.date_column,
        "newest": snap.newest,
        "snapshot_id": snap.id,
        "level": worst(found),
    }
    return found, summary


def _references(
    history: History, previous: Snapshot | None, mode: str
) -> dict[str, tuple[int, ColumnStats]]:
    """Column → (snapshot id, stats) that this run compares against and bins on.

    ``previous``: the last run's stats. ``first``: each column's first snapshot (since it
    last changed kind), found through the ``ref`` the last run kept for it. A reference
    that had no values has no bins worth keeping, so the column starts a new one.
    """
    if previous is None or previous.id is None:
        return {}
    found: dict[str, tuple[int, ColumnStats]]
    if mode == "previous":
        found = {c: (previous.id, s) for c, s in previous.columns.items()}
    else:
        wanted = {
            c: s.ref if s.ref is not None else previous.id for c, s in previous.columns.items()
        }
        snaps = history.snapshots(set(wanted.values()) - {previous.id})
        snaps[previous.id] = previous
        found = {
            c: (ref_id, stats)
            for c, ref_id in wanted.items()
            if ref_id in snaps and (stats := snaps[ref_id].columns.get(c)) is not None
        }
    return {
        c: (ref_id, stats)
        for c, (ref_id, stats) in found.items()
        if stats.counts is None or sum(stats.counts) > 0
    }


def _check_documents(ws: Workspace, config: MonitorConfig, now: datetime) -> list[Finding]:
    with ws.store.engine.connect() as conn:
        rows = conn.execute(select(documents.c.ingested_at, documents.c.date)).all()
    return check_documents(
        [(r[0], r[1]) for r in rows],
        now,
        weeks=config.documents_weeks,
        min_ratio=config.volume_min_ratio,
        stale_days=config.documents_stale_days,
        stale_share=config.documents_stale_share,
    )
