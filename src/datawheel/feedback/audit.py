"""The audit log: which editor or admin read other users' questions and answers, and when.

Every read of someone else's content through the service (the interaction list, one
interaction, the review queue, the report's questions) adds a row; admins read them with
``datawheel audit`` or ``GET /api/audit``.

Example:
    >>> AuditLog(engine).record("alice", "read_interaction", ["3f2a..."])
    >>> AuditLog(engine).recent(10)[0]["actor"]
    'alice'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from datawheel.store import schema as t


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, actor: str, action: str, targets: Sequence[str]) -> None:
        """Note that ``actor`` saw ``targets`` (interaction ids); nothing to note: no row."""
        if not targets:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.audit_log).values(
                    at=datetime.now(UTC), actor=actor, action=action, target=" ".join(targets)
                )
            )

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        query = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "at": _utc(r.at).isoformat(),
                "actor": r.actor,
                "action": r.action,
                "interactions": r.target.split(),
            }
            for r in rows
        ]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
