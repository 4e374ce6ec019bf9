"""Monitor history in the store: one snapshot per source per run, and every finding.

The tables live on the shared schema ``metadata``; :func:`create_tables` is the body of
the schema migration that adds them. Until a workspace has run that migration,
:class:`History` creates them on first use (``checkfirst``), which the migration then finds.

Example::

    history = History(ws.store.engine)
    previous = history.latest("sales")
    history.findings(limit=20)   # newest first
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
)

from datawheel.monitor.checks import Finding
from datawheel.monitor.snapshot import ColumnStats, Snapshot
from datawheel.store.schema import metadata

monitor_snapshots = Table(
    "monitor_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
    Column("source", String(200), nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("date_column", Text),
    Column("newest", String(40)),  # ISO date of the newest value in date_column
    Column("stats", JSON, nullable=False),  # column → type, null rate, bins, counts, ref
    Index("ix_monitor_snapshots_source", "source", "id"),
)

monitor_findings = Table(
    "monitor_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("source", String(200), nullable=False),
    Column("check", String(40), nullable=False),
    Column("level", String(10), nullable=False),  # ok, warning, alert
    Column("column_name", Text),
    Column("message", Text, nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Index("ix_monitor_findings_run_id", "run_id"),
    Index("ix_monitor_findings_source_at", "source", "at"),
)

TABLES = [monitor_snapshots, monitor_findings]


def create_tables(conn: Connection) -> None:
    """The schema migration: create the monitor tables (a no-op where they exist)."""
    metadata.create_all(conn, tables=TABLES, checkfirst=True)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # SQLite keeps no zone; we always write UTC


def _snapshot(row: Any) -> Snapshot:
    m = row._mapping
    return Snapshot(
        source=m["source"],
        rows=int(m["rows"]),
        columns={name: ColumnStats.from_dict(s) for name, s in (m["stats"] or {}).items()},
        date_column=m["date_column"],
        newest=m["newest"],
        id=int(m["id"]),
        taken_at=_utc(m["taken_at"]),
    )


class History:
    """Read and write monitor snapshots and findings."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.begin() as conn:
            create_tables(conn)

    def latest(self, source: str) -> Snapshot | None:
        """The newest snapshot of ``source``."""
        t = monitor_snapshots
        query = select(t).where(t.c.source == source).order_by(t.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _snapshot(row) if row else None

    def row_counts(self, source: str, n: int) -> list[int]:
        """Row counts of the last ``n`` snapshots of ``source``, oldest first."""
        t = monitor_snapshots
        query = select(t.c.rows).where(t.c.source == source).order_by(t.c.id.desc()).limit(n)
        with self.engine.connect() as conn:
            return [int(r) for r in conn.execute(query).scalars()][::-1]

    def snapshots(self, ids: Iterable[int]) -> dict[int, Snapshot]:
        """Snapshots by id."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        t = monitor_snapshots
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.id.in_(wanted))).all()
        return {int(r._mapping["id"]): _snapshot(r) for r in rows}

    def save_snapshot(self, run_id: int | None, snapshot: Snapshot, at: datetime) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(monitor_snapshots).values(
                    run_id=run_id,
                    source=snapshot.source,
                    taken_at=at,
                    rows=snapshot.rows,
                    date_column=snapshot.date_column,
                    newest=snapshot.newest,
                    stats=snapshot.stats_dict(),
                )
            )
            snapshot.id = int(result.inserted_primary_key[0])  # type: ignore[index]
        snapshot.taken_at = at
        return snapshot.id

    def save_findings(self, run_id: int | None, at: datetime, findings: list[Finding]) -> None:
        if not findings:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(monitor_findings),
                [
                    {
                        "run_id": run_id,
                        "at": at,
                        "source": f.source,
                        "check": f.check,
                        "level": f.level,
                        "column_name": f.column,
                        "message": f.message,
                        "value": f.value,
                        "threshold": f.threshold,
                    }
                    for f in findings
                ],
            )

    def findings(
        self, *, run_id: int | None = None, source: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Stored findings, newest first."""
        t = monitor_findings
        query = select(t).order_by(t.c.id.desc()).limit(limit)
        if run_id is not None:
            query = query.where(t.c.run_id == run_id)
        if source is not None:
            query = query.where(t.c.source == source)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for r in rows:
            r["at"] = _utc(r["at"])
        return rows

    def latest_findings(
        self, levels: Iterable[str] | None = None, *, scan: int = 2000
    ) -> list[dict[str, Any]]:
        """The findings of each source's latest check (of the newest ``scan`` stored), those
        at ``levels`` only when given; alerts first, then warnings, then by source."""
        wanted = None if levels is None else set(levels)
        rows = self.findings(limit=scan)  # newest first
        newest: dict[str, Any] = {}
        for r in rows:
            newest.setdefault(r["source"], r["at"])
        latest = [
            r
            for r in rows
            if r["at"] == newest[r["source"]] and (wanted is None or r["level"] in wanted)
        ]
        order = {"alert": 0, "warning": 1}
        latest.sort(key=lambda r: (order.get(r["level"], 2), r["source"], r["check"], r["id"]))
        return latest

    def list_snapshots(self, source: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Snapshot summaries (no bins), newest first, for charts of rows and freshness."""
        t = monitor_snapshots
        cols = [t.c.id, t.c.run_id, t.c.source, t.c.taken_at, t.c.rows, t.c.newest]
        query = select(*cols).order_by(t.c.id.desc()).limit(limit)
        if source is not None:
            query = query.where(t.c.source == source)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for r in rows:
            r["taken_at"] = _utc(r["taken_at"])
        return rows
