"""Predictions and the real outcomes that settle them (leads won or lost, actual sales).

Every score and forecast is logged with an id and its model version; imported outcomes are
matched to the latest prediction for the same entity (lead id, or series + date) made
before the outcome was observed. Unmatched outcomes are kept too, with no prediction id,
and reported, never dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select

from datawheel.store import schema as t


@dataclass
class Prediction:
    id: str
    app: str
    version: str | None
    entity: str
    inputs: dict[str, Any]
    output: dict[str, Any]
    created_at: datetime


@dataclass
class Outcome:
    app: str
    entity: str
    value: Any
    observed_at: str | None = None
    prediction_id: str | None = None


@dataclass
class ImportReport:
    imported: int
    matched: int
    unmatched: list[str]  # entities with no prediction, kept with prediction_id null


class PredictionLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        app: str,
        version: str | None,
        rows: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
    ) -> list[str]:
        """Log (entity, inputs, output) rows in one transaction; returns their ids."""
        now = datetime.now(UTC)
        ids = [uuid.uuid4().hex for _ in rows]
        values = [
            {
                "id": pid,
                "app": app,
                "version": version,
                "entity": entity,
                "inputs": inputs,
                "output": output,
                "created_at": now,
            }
            for pid, (entity, inputs, output) in zip(ids, rows, strict=True)
        ]
        if values:
            with self.engine.begin() as conn:
                conn.execute(insert(t.predictions), values)
        return ids

    def predictions(self, app: str, entities: Iterable[str] | None = None) -> list[Prediction]:
        query = select(t.predictions).where(t.predictions.c.app == app)
        if entities is not None:
            query = query.where(t.predictions.c.entity.in_(list(entities)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.predictions.c.created_at)).all()
        return [Prediction(**r._mapping) for r in rows]

    def count_entities(self, app: str, since: datetime | None = None) -> int:
        """How many distinct entities (leads, series-days) were predicted, since a moment."""
        query = select(func.count(func.distinct(t.predictions.c.entity))).where(
            t.predictions.c.app == app
        )
        if since is not None:
            query = query.where(t.predictions.c.created_at >= since)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def active_days(self, app: str, since: datetime | None = None) -> int:
        """On how many calendar days (UTC) ``app`` made predictions, since a moment."""
        query = select(func.count(func.distinct(func.date(t.predictions.c.created_at)))).where(
            t.predictions.c.app == app
        )
        if since is not None:
            query = query.where(t.predictions.c.created_at >= since)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def count_outcomes(self, app: str, since: datetime | None = None) -> int:
        """How many outcomes (matched or not) were imported, after a moment if given."""
        query = select(func.count()).select_from(t.outcomes).where(t.outcomes.c.app == app)
        if since is not None:
            query = query.where(t.outcomes.c.imported_at > since)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def import_outcomes(self, app: str, outcomes: Sequence[Outcome]) -> ImportReport:
        """Store outcomes, each matched to the latest prediction for its entity."""
        latest: dict[str, str] = {}
        for p in self.predictions(app, {o.entity for o in outcomes}):
            latest[p.entity] = p.id  # ordered by time: the last one wins
        now = datetime.now(UTC)
        values, unmatched = [], []
        for o in outcomes:
            pid = o.prediction_id or latest.get(o.entity)
            if pid is None:
                unmatched.append(o.entity)
            values.append(
                {
                    "app": app,
                    "entity": o.entity,
                    "value": o.value,
                    "observed_at": o.observed_at,
                    "prediction_id": pid,
                    "imported_at": now,
                }
            )
        if values:
            with self.engine.begin() as conn:
                conn.execute(insert(t.outcomes), values)
        return ImportReport(len(values), len(values) - len(unmatched), unmatched)

    def settled(self, app: str) -> list[tuple[Prediction, Any]]:
        """Predictions with the outcome that settled them (for metrics per version)."""
        query = (
            select(t.predictions, t.outcomes.c.value.label("outcome"))
            .join(t.outcomes, t.outcomes.c.prediction_id == t.predictions.c.id)
            .where(t.predictions.c.app == app)
            .order_by(t.predictions.c.created_at)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for r in rows:
            m = dict(r._mapping)
            value = m.pop("outcome")
            out.append((Prediction(**m), value))
        return out

    def actuals(self, app: str) -> dict[str, Any]:
        """Every imported outcome value by entity, matched or not (the latest import wins)."""
        query = (
            select(t.outcomes.c.entity, t.outcomes.c.value)
            .where(t.outcomes.c.app == app)
            .order_by(t.outcomes.c.id)
        )
        with self.engine.connect() as conn:
            return {r.entity: r.value for r in conn.execute(query)}
