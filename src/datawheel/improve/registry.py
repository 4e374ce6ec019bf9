"""The version registry: every model version with its metrics, and which one is in use.

One registry for every kind of model: ``rag`` (versions v1, v2, ...), and the predictive
apps (``leads``, ``forecast``: versions leads-v1, forecast-v1, ...). Each kind has its own
version in use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from datawheel.errors import ConfigError
from datawheel.store import schema as t
from datawheel.store.sql import SQLStore

CURRENT = "rag_version"


class Registry:
    def __init__(self, store: SQLStore, kind: str = "rag") -> None:
        self.store = store
        self.engine: Engine = store.engine
        self.kind = kind
        self.state_key = CURRENT if kind == "rag" else f"{kind}_version"

    def current(self) -> str | None:
        return self.store.get_state(self.state_key) or None

    def current_setting(self, key: str) -> Any:
        """A setting of the version in use (None with no version, or without the key)."""
        version = self.current()
        if version is None:
            return None
        with self.engine.connect() as conn:
            settings = conn.execute(
                select(t.model_versions.c.settings).where(t.model_versions.c.id == version)
            ).scalar()
        return (settings or {}).get(key)

    def next_id(self) -> str:
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count())
                .select_from(t.model_versions)
                .where(t.model_versions.c.kind == self.kind)
            ).scalar()
        prefix = "v" if self.kind == "rag" else f"{self.kind}-v"
        return f"{prefix}{int(count or 0) + 1}"

    def record(
        self,
        version: str,
        *,
        status: str,
        parent: str | None,
        settings: dict[str, Any],
        metrics: dict[str, Any],
        artifacts: str,
        note: str,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.model_versions).values(
                    id=version,
                    kind=self.kind,
                    status=status,
                    parent=parent,
                    created_at=datetime.now(UTC),
                    settings=settings,
                    metrics=metrics,
                    artifacts=artifacts,
                    note=note,
                )
            )

    def promote(self, version: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.model_versions)
                .where(t.model_versions.c.status == "promoted")
                .where(t.model_versions.c.kind == self.kind)
                .values(status="retired")
            )
            conn.execute(
                update(t.model_versions)
                .where(t.model_versions.c.id == version)
                .values(status="promoted")
            )
        self.store.set_state(self.state_key, version)

    def set_status(self, version: str, status: str, *, note: str | None = None) -> None:
        values: dict[str, Any] = {"status": status}
        if note is not None:
            values["note"] = note
        with self.engine.begin() as conn:
            conn.execute(
                update(t.model_versions).where(t.model_versions.c.id == version).values(**values)
            )

    def versions(self) -> list[dict[str, Any]]:
        query = (
            select(t.model_versions)
            .where(t.model_versions.c.kind == self.kind)
            .order_by(t.model_versions.c.created_at)
        )
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        current = self.current()
        for row in rows:
            row["current"] = row["id"] == current
            row["created_at"] = row["created_at"].isoformat()
        return rows

    def get(self, version: str) -> dict[str, Any]:
        for row in self.versions():
            if row["id"] == version:
                return row
        known = ", ".join(r["id"] for r in self.versions()) or "none yet"
        raise ConfigError(f"no version {version!r}; known versions: {known}")

    def rollback_target(self, version: str | None) -> str | None:
        """The version to restore: the one named, else the one before the current."""
        if version is not None:
            row = self.get(version)
            if row["status"] == "rejected":
                raise ConfigError(
                    f"{version} was rejected by its evaluation and was never in use; "
                    "roll back to a version that was promoted"
                )
            return version
        current = self.current()
        if current is None:
            raise ConfigError("nothing to roll back: no version has been promoted yet")
        return self.get(current)["parent"]
