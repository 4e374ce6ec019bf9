"""Sales history and known-future inputs, read and checked before any model sees them.

Rows whose date does not parse, whose quantity is not a number or is negative, or that repeat a
series and day are never used silently: they are returned as :class:`BadRow` with their line
and reason. Days missing inside a series are filled with 0 (no sales recorded) and counted.

The model frame has the columns ``unique_id`` (series values joined by ``/``), ``ds``, ``y``,
the series columns (as categories), and one column per known-future input (``holiday`` and the
``known_future`` tables' columns).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from datawheel.dates import parse_dates
from datawheel.errors import ConfigError, MissingExtraError, SourceError
from datawheel.tables.read import ROW, ident, load
from datawheel.tables.spec import TableSource

if TYPE_CHECKING:
    import pandas as pd

    from datawheel.apps.forecast.config import ForecastConfig
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)

ID, DS, Y = "unique_id", "ds", "y"
HOLIDAY = "holiday"


@dataclass
class BadRow:
    """A source row left out of training and matching, with why."""

    row: int
    reason: str
    values: dict[str, Any]


@dataclass
class History:
    """Clean sales history as a model frame, plus what was left out or filled in."""

    frame: pd.DataFrame
    bad_rows: list[BadRow] = field(default_factory=list)
    gaps_filled: int = 0
    columns: list[str] = field(default_factory=list)  # the source table's, all of them
    notes: list[str] = field(default_factory=list)  # how it was read (folded rows, numbers)

    def bad_summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for b in self.bad_rows:
            counts[b.reason] = counts.get(b.reason, 0) + 1
        return counts


def require_pandas() -> None:
    try:
        import mlforecast  # noqa: F401
        import pandas  # noqa: F401
    except ImportError:
        raise MissingExtraError("forecasting (mlforecast, pandas)", "forecast") from None


def series_key(values: Any) -> str:
    return "/".join(str(v) for v in values)


def source_of(
    ws: Workspace, cfg: ForecastConfig, path: str | Path | None = None, *, raw: bool = False
) -> tuple[TableSource, str | None]:
    """The table to read and a line saying which: ``path`` if given (relative to the current
    folder), else ``forecast.source``: a source's clean table (its raw file with ``raw``, or
    before its first clean run), or a file (relative to the workspace)."""
    if path is not None:
        return TableSource(name="forecast", path=str(Path(path).expanduser().resolve())), None
    if not cfg.source:
        raise ConfigError(
            "no sales history configured; set forecast.source in datawheel.yaml to a table "
            "source under sources: or a CSV path"
        )
    if cfg.source in ws.config.sources:
        return ws.app_table(cfg.source, raw=raw)  # type: ignore[no-any-return]
    p = Path(cfg.source).expanduser()
    if not p.is_absolute():
        p = ws.path / p
    return TableSource(name="forecast", path=str(p)), None


@dataclass
class Rows:
    """A sales table read and checked: one row per series and day, and what it took."""

    good: pd.DataFrame  # ds, y and the series columns
    bad: list[BadRow]
    columns: list[str]  # the table's, all of them
    notes: list[str] = field(default_factory=list)  # how it was read, said in every report
    aggregated: int = 0  # rows folded into another row of the same series and day


def read_rows(source: TableSource, cfg: ForecastConfig) -> Rows:
    """Read and check a sales table. Rows of one series and day are folded by
    ``cfg.aggregate`` (transactions summed); quantities are read with their decimal mark,
    thousands separators and currency signs."""
    import pandas as pd

    from datawheel.tables.numeric import read_numbers

    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="datawheel-forecast-") as tmp:
            loaded = load(con, source, "raw", Path(tmp))
        need = [cfg.date, *cfg.series, cfg.target]
        melted = _melt_wide(con, loaded.columns, cfg)
        columns = [cfg.date, *cfg.series, cfg.target] if melted else list(loaded.columns)
        missing = [c for c in need if c not in columns]
        if missing:
            raise ConfigError(_missing_columns(source.name, missing, columns, cfg))
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall())
        raw = con.execute(
            f'SELECT "{ROW}", '
            + ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in need)
            + f' FROM raw ORDER BY "{ROW}"'
        ).df()
    finally:
        con.close()
    bad: list[BadRow] = [
        BadRow(r.line, f"unreadable line: {r.reason}", {}) for r in loaded.rejected
    ]
    notes: list[str] = [melted] if melted else []
    typed = str(types.get(cfg.date, "")).upper().startswith(("DATE", "TIMESTAMP"))
    fmt = None if typed else cfg.date_format  # a cleaned table's dates are already dates
    ds = parse_dates(raw[cfg.date], fmt, "forecast.date_format").dt.normalize()
    y, how = read_numbers(raw[cfg.target], cfg.decimal, column=f"{cfg.target} (forecast.target)")
    if how:
        notes.append(f"{cfg.target} read with {how}")
    reasons = pd.Series("", index=raw.index)
    reasons[ds.isna()] = f"{cfg.date} is not a date"
    tomorrow = pd.Timestamp.now().normalize() + pd.Timedelta(days=1)
    reasons[(reasons == "") & (ds > tomorrow)] = f"{cfg.date} is in the future"
    reasons[(reasons == "") & y.isna()] = f"{cfg.target} is not a number"
    reasons[(reasons == "") & (y < 0)] = f"{cfg.target} is negative"
    for col in cfg.series:
        reasons[(reasons == "") & raw[col].isna()] = f"{col} is missing"
    keys = raw[cfg.series].fillna("").astype(str)
    if cfg.series:
        uid = keys.iloc[:, 0].str.strip()
        for col in keys.columns[1:]:
            uid = uid + "/" + keys[col].str.strip()
    else:  # one series: the whole table
        uid = pd.Series(cfg.target, index=raw.index)
    if cfg.aggregate == "refuse":
        dup = (reasons == "") & pd.DataFrame({ID: uid, DS: ds}).duplicated(keep="first")
        reasons[dup] = "repeats a series and date"
    is_bad = reasons != ""
    for i in raw.index[is_bad]:
        bad.append(BadRow(int(raw.at[i, ROW]), str(reasons[i]), {c: raw.at[i, c] for c in need}))
    good = pd.DataFrame({ID: uid, DS: ds, Y: y.astype("float64")})
    for col in cfg.series:
        good[col] = raw[col].astype(str).str.strip()
    good = good[~is_bad.to_numpy()].reset_index(drop=True)
    folded = 0
    if cfg.aggregate != "refuse" and good.duplicated([ID, DS]).any():
        before = len(good)
        how_y = {"sum": "sum", "mean": "mean", "max": "max", "last": "last"}[cfg.aggregate]
        firsts = {col: "first" for col in cfg.series}
        good = good.groupby([ID, DS], as_index=False, sort=False).agg({Y: how_y, **firsts})
        folded = before - len(good)
        notes.append(
            f"{before:,} rows are {len(good):,} series-days: rows of one series and day were "
            f"{'summed' if cfg.aggregate == 'sum' else f'folded by their {cfg.aggregate}'} "
            "(forecast.aggregate)"
        )
    if bad:
        log.warning("%s: %d rows left out (%s)", source.name, len(bad), bad[0].reason)
    return Rows(good, bad, columns, notes, folded)


def _melt_wide(con: duckdb.DuckDBPyConnection, columns: list[str], cfg: ForecastConfig) -> str:
    """A wide table (the date, then one column of numbers per series: M01AB, M01AE, ...)
    turned long in place, when the config names one series column and a target that are
    not in it; returns the note that says so ('' when the table is not melted)."""
    others = [c for c in columns if c not in (cfg.date, ROW)]
    if (
        cfg.date not in columns
        or len(cfg.series) != 1
        or cfg.series[0] in columns
        or cfg.target in columns
        or len(others) < 2
    ):
        return ""
    numeric = con.execute(
        "SELECT "
        + ", ".join(
            f"avg(CASE WHEN TRY_CAST(replace({ident(c)}, ',', '.') AS DOUBLE) IS NOT NULL "
            f"OR {ident(c)} IS NULL THEN 1 ELSE 0 END)"
            for c in others
        )
        + " FROM (SELECT * FROM raw LIMIT 1000)"
    ).fetchone()
    if not numeric or min(float(v or 0) for v in numeric) < 0.9:
        return ""
    keep = ", ".join(ident(c) for c in (cfg.date, ROW))
    con.execute(
        f"CREATE OR REPLACE TABLE raw AS UNPIVOT raw ON COLUMNS(* EXCLUDE ({keep})) "
        f"INTO NAME {ident(cfg.series[0])} VALUE {ident(cfg.target)}"
    )
    return (
        f"read as a wide table: {len(others)} series columns ({', '.join(others[:5])}"
        f"{', ...' if len(others) > 5 else ''}) melted into {cfg.series[0]} and {cfg.target}, "
        f"one row per {cfg.date} and series"
    )


def _missing_columns(name: str, missing: list[str], columns: list[str], cfg: ForecastConfig) -> str:
    """Which columns are missing, the table's columns (a few, when there are many) and, for a
    wide table, how to read it."""
    shown = ", ".join(columns[:12]) + (
        f", ... ({len(columns):,} columns)" if len(columns) > 12 else ""
    )
    text = (
        f"{name}: column(s) {', '.join(missing)} not found; the table has {shown}; set "
        "forecast.date/series/target to match"
    )
    others = [c for c in columns if c != cfg.date]
    if cfg.date in columns and len(others) >= 2 and cfg.target in missing:
        text += (
            f". One column per series beside {cfg.date} (a wide table)? Name the series "
            f"column and the quantity to create: forecast.series: [product] and "
            f"forecast.target: {cfg.target}, and it is read melted"
        )
    elif len(columns) > 50:
        text += (
            ". Many columns: one per day (a wide table)? Export one row per series and day "
            "(date, series columns, quantity), e.g. with pandas melt"
        )
    return text


def fill_gaps(frame: pd.DataFrame, series: list[str]) -> tuple[pd.DataFrame, int]:
    """Add missing days inside each series with ``y = 0``; returns the frame and the count."""
    import pandas as pd

    span = frame.groupby(ID, observed=True)[DS].agg(["min", "max", "count"])
    days = (span["max"] - span["min"]).dt.days + 1
    gappy = span.index[days > span["count"]]
    if len(gappy) == 0:
        return frame.sort_values([ID, DS], ignore_index=True), 0
    parts = [frame[~frame[ID].isin(gappy)]]
    filled = 0
    for uid in gappy:
        part = frame[frame[ID] == uid].set_index(DS).sort_index()
        full = part.reindex(pd.date_range(part.index.min(), part.index.max(), freq="D"))
        filled += int(full[Y].isna().sum())
        full[Y] = full[Y].fillna(0.0)
        full[ID] = uid
        for col in series:
            full[col] = part[col].iloc[0]
        parts.append(full.rename_axis(DS).reset_index())
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values([ID, DS], ignore_index=True), filled


def holidays_of(country: str, years: range) -> set[Any]:
    try:
        import holidays
    except ImportError:
        raise MissingExtraError("public holidays (holidays)", "forecast") from None
    return set(holidays.country_holidays(country, years=list(years)).keys())


def add_known_future(
    frame: pd.DataFrame, ws_path: Path, cfg: ForecastConfig
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Join holidays and the known-future tables onto rows with ``ds`` (+ series columns).

    Returns the frame, the feature columns added, and notes (e.g. dates a table lacks).
    """
    import pandas as pd

    features: list[str] = []
    notes: list[str] = []
    if cfg.country:
        years = range(frame[DS].dt.year.min(), frame[DS].dt.year.max() + 1)
        days = {pd.Timestamp(d) for d in holidays_of(cfg.country, years)}
        frame[HOLIDAY] = frame[DS].isin(days).astype("float64")
        features.append(HOLIDAY)
    for spec in cfg.known_future:
        table = _read_known(ws_path, spec.path)
        if cfg.date not in spec.on:
            raise ConfigError(
                f"known_future {spec.path}: on must include the date column {cfg.date!r}"
            )
        unknown = [c for c in spec.on if c not in table.columns or c not in (cfg.date, *cfg.series)]
        if unknown:
            raise ConfigError(
                f"known_future {spec.path}: join column(s) {', '.join(unknown)} must be the "
                f"date or series columns ({', '.join([cfg.date, *cfg.series])}) and exist in the "
                f"file (it has {', '.join(table.columns)})"
            )
        cols = spec.columns or [c for c in table.columns if c not in spec.on]
        absent = [c for c in cols if c not in table.columns]
        if absent:
            raise ConfigError(
                f"known_future {spec.path}: no column(s) {', '.join(absent)}; it has "
                f"{', '.join(table.columns)}"
            )
        keys = {cfg.date: DS} | {c: c for c in spec.on if c != cfg.date}
        right = table[list(spec.on) + cols].rename(columns=keys)
        right[DS] = parse_dates(right[DS], cfg.date_format, "forecast.date_format").dt.normalize()
        for c in spec.on:
            if c != cfg.date:
                right[c] = right[c].astype(str).str.strip()
        for c in cols:
            right[c] = pd.to_numeric(right[c], errors="coerce")
        right = right.dropna(subset=[DS]).drop_duplicates(subset=list(keys.values()), keep="last")
        clash = [c for c in cols if c in frame.columns]
        if clash:
            raise ConfigError(f"known_future {spec.path}: column(s) {clash} are already used")
        on = list(keys.values())
        merged = frame.merge(right, on=on, how="left", indicator="_dw_hit")
        missing = int((merged["_dw_hit"] == "left_only").sum())
        if missing:
            notes.append(
                f"{spec.path}: no values for {missing} series-days; used 0 for "
                f"{', '.join(cols)} there"
            )
        merged = merged.drop(columns="_dw_hit")
        merged[cols] = merged[cols].fillna(0.0).astype("float64")
        frame = merged
        features.extend(cols)
    return frame, features, notes


def _read_known(ws_path: Path, path: str) -> pd.DataFrame:
    import pandas as pd

    p = Path(path).expanduser()
    if not p.is_absolute():
        p = ws_path / p
    if not p.is_file():
        raise SourceError(f"known_future table {p} does not exist; check forecast.known_future")
    if p.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(p)
    return pd.read_csv(p, dtype=str)


def load_history(ws: Workspace, cfg: ForecastConfig, path: str | Path | None = None) -> History:
    """Read, check and gap-fill the sales history (series columns become categories)."""
    require_pandas()
    source, which = source_of(ws, cfg, path)
    rows = read_rows(source, cfg)
    if which:
        rows.notes.insert(0, which)
    if rows.good.empty:
        raise SourceError(
            f"no usable sales rows ({len(rows.bad)} left out: "
            f"{rows.bad[0].reason if rows.bad else 'the table is empty'}); fix the source and "
            "retry"
        )
    good = with_actuals(ws, rows, cfg)
    check_daily(good)
    frame, filled = fill_gaps(good, cfg.series)
    return History(frame, rows.bad, filled, rows.columns, rows.notes)


def with_actuals(ws: Workspace, rows: Rows, cfg: ForecastConfig) -> pd.DataFrame:
    """The history plus the actuals imported since (``datawheel forecast actuals``) for the
    series-days it does not have yet, so retraining learns from them without the source
    file being updated. A series-day in both keeps the table's value."""
    import pandas as pd

    actual = ws.predictions.actuals("forecast")
    good = rows.good
    if not actual:
        return good
    parts = [str(e).rsplit("@", 1) for e in actual]
    new = pd.DataFrame(
        {
            ID: [uid for uid, _ in parts],
            DS: pd.to_datetime([day for _, day in parts], errors="coerce"),
            Y: pd.to_numeric(pd.Series(list(actual.values())), errors="coerce").to_numpy(),
        }
    ).dropna()
    have = pd.MultiIndex.from_frame(good[[ID, DS]])
    new = new[~pd.MultiIndex.from_frame(new[[ID, DS]]).isin(have)]
    known = set(good[ID])
    new = new[new[ID].isin(known)]  # a series the table does not have: no columns to give it
    if new.empty:
        return good
    firsts = good.drop_duplicates(ID).set_index(ID)
    for col in cfg.series:
        new[col] = new[ID].map(firsts[col])
    rows.notes.append(
        f"{len(new):,} imported actuals added to the history (series-days the table lacks)"
    )
    return pd.concat([good, new[good.columns]], ignore_index=True)


def check_daily(frame: pd.DataFrame) -> None:
    """Refuse weekly or monthly totals: filling the days between them with 0 would train the
    model on made-up zeros. Sparse daily sales (a day without a row is a day without a sale)
    still pass: their dates, over all series, are mostly a day apart."""
    dates = frame[DS].drop_duplicates().sort_values()
    if len(dates) < 3:
        return
    step = float(dates.diff().dt.days.median())
    if step >= 7:
        first, second = (d.date().isoformat() for d in dates.iloc[:2])
        raise SourceError(
            f"the sales history has one date every {step:g} days ({first}, {second}, ...): "
            "weekly or monthly totals, not daily sales. The forecast needs one row per series "
            "and day (a day without a row counts as 0 sold): export daily sales instead"
        )
