"""The outlier step: rule-based, IQR or z-score bounds per column, computed exactly.

The bounds come from the column's exact value counts (:func:`distribution`), summed as
fractions, so DuckDB and Spark, at any thread count, find the same bounds and the same rows.
A row outside them is quarantined, flagged in ``<column>_outlier`` or clipped, as the check's
``action`` says.

Example (``datawheel.yaml``)::

    clean:
      outliers:
        - {column: amount, method: iqr, k: 1.5, action: drop}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from datawheel.tables.dialect import Connection, describe
from datawheel.tables.read import ident
from datawheel.tables.spec import Outliers
from datawheel.tables.steps import EXACT_DISTINCT, Step, fetch_count


def distribution(con: Connection, src: str, x: str) -> list[tuple[float, int]] | None:
    """The values of ``x`` over ``src`` with how often each occurs; None past
    :data:`EXACT_DISTINCT` distinct values.

    Outlier bounds are computed from it exactly, so they are the same on every engine and
    thread count: a parallel floating-point sum (``avg``, ``stddev_samp``) depends on the
    order the rows arrive in, and changes in its last digits from run to run.
    """
    rows = con.execute(
        f"SELECT v, count(*) FROM (SELECT {x} AS v FROM {src}) d WHERE v IS NOT NULL "
        f"GROUP BY v LIMIT {EXACT_DISTINCT + 1}"
    ).fetchall()
    if len(rows) > EXACT_DISTINCT:
        return None
    # + 0.0 turns -0.0 into 0.0, which engines group together either way
    return [(float(v) + 0.0, int(n)) for v, n in rows]


def _finite(dist: list[tuple[float, int]]) -> list[tuple[float, int]]:
    return sorted((v, c) for v, c in dist if math.isfinite(v))


def quantile(dist: list[tuple[float, int]], q: float) -> float | None:
    """The ``q`` quantile of the finite values, interpolated as DuckDB's ``quantile_cont``."""
    values = _finite(dist)
    n = sum(c for _, c in values)
    if not n:
        return None
    h = (n - 1) * q
    at = [int(math.floor(h)), int(math.ceil(h))]
    found: list[float] = []
    seen = 0
    for value, count in values:
        seen += count
        while at and at[0] < seen:
            found.append(value)
            at.pop(0)
    lo, hi = found
    return lo + (hi - lo) * (h - math.floor(h))


def mean_sd(dist: list[tuple[float, int]]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite values, summed exactly as fractions."""
    values = [(Fraction(v), c) for v, c in _finite(dist)]
    n = sum(c for _, c in values)
    if not n:
        return None, None
    mean = sum((v * c for v, c in values), Fraction(0)) / n
    if n < 2:
        return float(mean), None
    var = sum((c * (v - mean) ** 2 for v, c in values), Fraction(0)) / (n - 1)
    return float(mean), math.sqrt(float(var))


def outside(dist: list[tuple[float, int]], low: float | None, high: float | None) -> int:
    """How many values are below ``low`` or above ``high``; NaN is above every number, as
    DuckDB and Spark order it."""
    return sum(
        c
        for v, c in dist
        if (low is not None and v < low) or (high is not None and (math.isnan(v) or v > high))
    )


@dataclass
class OutliersStep(Step):
    check: Outliers | None = None
    low: float | None = None
    high: float | None = None
    column_type: str = "VARCHAR"
    outside: int = 0

    def prepare(self, con: Connection, src: str) -> None:
        assert self.check is not None
        c = self.check
        d = self.dialect
        self.column_type = describe(con, src).get(c.column, d.text)
        x = d.to_double(ident(c.column))
        if c.method == "rule":
            self.low, self.high = c.min, c.max
        dist = distribution(con, src, x)  # None: too many distinct values, the engine's stats
        if c.method == "iqr":
            k = c.k or 1.5
            q1, q3 = self._quartiles(con, src, x, dist)
            if q1 is not None and q3 is not None:
                self.low, self.high = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
        elif c.method == "zscore":
            k = c.k or 3.0
            mean, sd = self._mean_sd(con, src, x, dist)
            if mean is not None and sd is not None:
                self.low, self.high = mean - k * sd, mean + k * sd
        if dist is None:
            self.outside = fetch_count(con, f"SELECT count(*) FROM {src} WHERE {self._outside()}")
        else:
            self.outside = outside(dist, self.low, self.high)

    def _quartiles(
        self, con: Connection, src: str, x: str, dist: list[tuple[float, int]] | None
    ) -> tuple[float | None, ...]:
        if dist is None:
            d = self.dialect
            got = con.execute(f"SELECT {d.quantile(x, 0.25)}, {d.quantile(x, 0.75)} FROM {src}")
            return tuple(got.fetchone() or (None, None))
        return quantile(dist, 0.25), quantile(dist, 0.75)

    def _mean_sd(
        self, con: Connection, src: str, x: str, dist: list[tuple[float, int]] | None
    ) -> tuple[float | None, ...]:
        if dist is None:
            got = con.execute(f"SELECT avg({x}), stddev_samp({x}) FROM {src}")
            return tuple(got.fetchone() or (None, None))
        return mean_sd(dist)

    def _outside(self) -> str:
        assert self.check is not None
        x = self.dialect.to_double(ident(self.check.column))
        parts = []
        if self.low is not None:
            parts.append(f"{x} < {self.low!r}")
        if self.high is not None:
            parts.append(f"{x} > {self.high!r}")
        return "(" + " OR ".join(parts) + ")" if parts else "false"

    def added(self) -> dict[str, str]:
        assert self.check is not None
        if self.check.action != "flag":
            return {}
        return {self.check.column + "_outlier": f"coalesce({self._outside()}, false)"}

    def checks(self) -> list[tuple[str, str]]:
        assert self.check is not None
        c = self.check
        if c.action != "drop":
            return []
        reason = self.dialect.lit(
            f"outliers: {c.column} outside [{self.low}, {self.high}] ({c.method})"
        )
        return [(f"coalesce({self._outside()}, false)", reason)]

    def transforms(self) -> dict[str, str]:
        assert self.check is not None
        c = self.check
        if c.action != "clip":
            return {}
        d = self.dialect
        if d.is_text(self.column_type):
            return {c.column: self._clipped_text()}
        x = d.to_double(ident(c.column))
        clipped = x
        if self.low is not None:
            clipped = f"greatest({clipped}, {self.low!r})"
        if self.high is not None:
            clipped = f"least({clipped}, {self.high!r})"
        clipped = d.cast(clipped, self.column_type)
        return {c.column: f"CASE WHEN {self._outside()} THEN {clipped} ELSE {ident(c.column)} END"}

    def _clipped_text(self) -> str:
        """Text stays text: a value below the bounds becomes the low bound's text, one above
        them the high bound's, 100.0 written as 100 and other numbers as their shortest
        round-trip form (Python's repr, which is also how DuckDB writes a DOUBLE)."""
        assert self.check is not None
        col = ident(self.check.column)
        x = self.dialect.to_double(col)

        def text(bound: float) -> str:
            return self.dialect.lit(str(int(bound)) if float(bound).is_integer() else repr(bound))

        cases = []
        if self.low is not None:  # as least(greatest(x, low), high) would clip it
            low = self.low if self.high is None else min(self.low, self.high)
            cases.append(f"WHEN {x} < {self.low!r} THEN {text(low)}")
        if self.high is not None:
            cases.append(f"WHEN {x} > {self.high!r} THEN {text(self.high)}")
        return f"CASE {' '.join(cases)} ELSE {col} END" if cases else col

    def summary(self, failed: int) -> str:
        assert self.check is not None
        c = self.check
        verb = {"drop": "quarantined", "flag": "flagged", "clip": "clipped"}[c.action]
        return f"{c.column}: {verb} {self.outside} rows outside [{self.low}, {self.high}]"
