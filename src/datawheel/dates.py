"""Read a column of dates written one way: ISO, or one format found for the whole column.

Parsing each value on its own (pandas' ``format="mixed"``) reads ``01.02.2016`` as 2 January
and ``13.02.2016`` as 13 February in the same column. Here the format is chosen once, for
the whole column: ISO 8601 first, then the candidate format that reads the most distinct
values. When a day-first and a month-first format read every value and disagree (all days
are 12 or less), the column is ambiguous and the caller is told to name the format.

Example::

    parse_dates(pd.Series(["01.02.2016", "13.02.2016"]), setting="forecast.date_format")
    # -> 2016-02-01, 2016-02-13
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datawheel.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

#: Tried in this order; a tie on values read goes to the first (day-first before month-first
#: only matters when both read every value, which is refused as ambiguous).
FORMATS = (
    "%d.%m.%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
    "%d.%m.%y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d %b %Y",
    "%b %d, %Y",
    "%b %d %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%d %B %Y",
    "%B %d, %Y",
)
_SAMPLE = 20_000  # distinct values tried per format


def parse_dates(
    values: pd.Series, date_format: str | None = None, setting: str = "date_format"
) -> pd.Series:
    """Timestamps (NaT where a value is not a date in the column's format).

    ``date_format`` (strptime) skips the search. ``setting`` names the option that takes it,
    for the ambiguity error.

    Raises:
        ConfigError: the values read as two different dates in two formats.
    """
    import pandas as pd

    text = values.astype("string").str.strip()
    if date_format:
        return pd.to_datetime(text, errors="coerce", format=date_format)
    out = pd.to_datetime(text, errors="coerce", format="ISO8601")
    rest = out.isna() & text.notna() & (text != "")
    if not rest.any():
        return out
    fmt = _column_format(text[rest], setting)
    if fmt is None:  # no known format reads any of them: each value as best it can
        out[rest] = pd.to_datetime(text[rest], errors="coerce", format="mixed")
    else:
        out[rest] = pd.to_datetime(text[rest], errors="coerce", format=fmt)
    return out


def _column_format(text: pd.Series, setting: str) -> str | None:
    import pandas as pd

    sample = text.drop_duplicates().head(_SAMPLE)
    best, best_read = None, 0
    readings: list[tuple[str, pd.Series]] = []  # the formats that read every value
    for fmt in FORMATS:
        parsed = pd.to_datetime(sample, errors="coerce", format=fmt)
        read = int(parsed.notna().sum())
        if read == len(sample):
            readings.append((fmt, parsed))
        if read > best_read:
            best, best_read = fmt, read
    first_fmt, first = readings[0] if readings else ("", None)
    for fmt, parsed in readings[1:]:
        if not parsed.equals(first):
            example = sample[parsed != first].iloc[0]
            raise ConfigError(
                f"dates like {example!r} read as {first_fmt} and as {fmt} give different "
                f"days; set {setting}: '{first_fmt}' or '{fmt}' (or export ISO dates, "
                "YYYY-MM-DD)"
            )
    return best
