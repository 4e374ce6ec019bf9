"""Order quantities from a forecast: cover demand over the lead time plus safety stock.

For each series::

    demand       = sum of the daily forecasts over the first ``lead_time`` days
    safety_stock = z(service_level) * sigma_daily * sqrt(lead_time)
    order_qty    = ceil(max(0, demand + safety_stock - on_hand))

``sigma_daily`` is the series' daily forecast-error std (from the model's calibration, or the
week-over-week change std for seasonal-naive series). Errors are assumed independent across
days, which is what the square root says.

Example::

    >>> row = order_quantity(demand=30.0, sigma_daily=2.0, lead_time=4, service_level=0.95,
    ...                      on_hand=10.0)
    >>> row["order_qty"], round(row["safety_stock"], 2)
    (27, 6.58)
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from statistics import NormalDist
from typing import Any

from datawheel.errors import ConfigError, SourceError


def z_value(service_level: float) -> float:
    if not 0.5 < service_level < 1:
        raise ConfigError(
            f"service level {service_level} is outside (0.5, 1); use e.g. 0.95 for 95%"
        )
    return NormalDist().inv_cdf(service_level)


def order_quantity(
    *, demand: float, sigma_daily: float, lead_time: int, service_level: float, on_hand: float
) -> dict[str, Any]:
    """One series' replenishment: demand over the lead time, safety stock and order."""
    z = z_value(service_level)
    safety = z * max(sigma_daily, 0.0) * math.sqrt(lead_time)
    need = demand + safety - on_hand
    return {
        "demand_lead_time": demand,
        "sigma_daily": sigma_daily,
        "safety_stock": safety,
        "on_hand": on_hand,
        "order_qty": max(0, math.ceil(need - 1e-9)),
        "z": z,
    }


def read_on_hand(path: Path, series: list[str], column: str = "on_hand") -> dict[str, float]:
    """``{series key: on-hand stock}`` from a CSV with the series columns and ``on_hand``."""
    if not path.is_file():
        raise SourceError(f"on-hand file {path} does not exist; check the path")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        missing = [c for c in [*series, column] if c not in fields]
        if missing:
            raise SourceError(
                f"{path} lacks column(s) {', '.join(missing)}; it needs "
                f"{', '.join([*series, column])} (it has {', '.join(fields)})"
            )
        stock: dict[str, float] = {}
        for line, row in enumerate(reader, start=2):
            key = "/".join(row[c].strip() for c in series)
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                raise SourceError(
                    f"{path} line {line}: on_hand {row[column]!r} is not a number"
                ) from None
            if value < 0:
                raise SourceError(f"{path} line {line}: on_hand {value} is negative")
            stock[key] = value
    return stock


def plan(
    forecasts: list[dict[str, Any]],
    sigma: dict[str, float],
    on_hand: dict[str, float],
    *,
    lead_time: int,
    service_level: float,
) -> list[dict[str, Any]]:
    """Replenishment rows for every series with an on-hand figure.

    ``forecasts`` are rows with ``series``, ``date`` and ``forecast``, ordered by date.
    """
    by_series: dict[str, list[float]] = {}
    for row in forecasts:
        by_series.setdefault(row["series"], []).append(float(row["forecast"]))
    out = []
    for key, values in by_series.items():
        if key not in on_hand:
            continue
        if len(values) < lead_time:
            raise ConfigError(
                f"lead time {lead_time} days exceeds the {len(values)}-day forecast; "
                f"forecast at least --horizon {lead_time}"
            )
        row = order_quantity(
            demand=sum(values[:lead_time]),
            sigma_daily=sigma.get(key, 0.0),
            lead_time=lead_time,
            service_level=service_level,
            on_hand=on_hand[key],
        )
        out.append({"series": key, "lead_time": lead_time, **row})
    return out


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    fields = [
        "series",
        "lead_time",
        "demand_lead_time",
        "sigma_daily",
        "safety_stock",
        "on_hand",
        "order_qty",
    ]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
