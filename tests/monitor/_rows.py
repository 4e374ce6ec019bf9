"""Rows, files and finding lookups the monitor tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from datawheel import Workspace

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
HEADER = ["id", "day", "amount", "category"]


def write_csv(path: Path, rows: list[list[Any]], header: list[str] = HEADER) -> Path:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_rows(
    n: int, *, start: int = 0, mean: float = 50.0, seed: int = 0, age_days: int = 0
) -> list[list[Any]]:
    rng = np.random.default_rng(seed)
    amounts = np.round(rng.normal(mean, 10.0, n), 2)
    cats = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    newest = (NOW - timedelta(days=age_days)).date()
    return [
        [start + i, (newest - timedelta(days=(n - 1 - i) % 30)).isoformat(), f"{a:.2f}", c]
        for i, (a, c) in enumerate(zip(amounts, cats, strict=True))
    ]


def add(ws: Workspace, name: str, path: Path) -> None:
    ws.add_source(name, str(path))


def by(report: Any, check: str, source: str | None = None) -> list[Any]:
    return [
        f for f in report.findings if f.check == check and (source is None or f.source == source)
    ]
