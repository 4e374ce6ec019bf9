"""One date format per column: never day-first for some values and month-first for others."""

from __future__ import annotations

import pandas as pd
import pytest

from datawheel.dates import parse_dates
from datawheel.errors import ConfigError


def _days(values: list[str | None], **kw: str) -> list[str | None]:
    out = parse_dates(pd.Series(values), **kw)
    return [None if pd.isna(t) else t.date().isoformat() for t in out]


def test_dotted_dates_are_read_day_first_for_the_whole_column() -> None:
    # each on its own, pandas reads the first as 2 January and the second as 13 February
    assert _days(["01.02.2016", "13.02.2016", "28.02.2016"]) == [
        "2016-02-01",
        "2016-02-13",
        "2016-02-28",
    ]


def test_slashed_dates_take_the_format_that_reads_every_value() -> None:
    assert _days(["02/03/2016", "03/25/2016", None, ""]) == ["2016-02-03", "2016-03-25", None, None]
    assert _days(["02/03/2016", "25/03/2016"]) == ["2016-03-02", "2016-03-25"]


def test_iso_values_and_a_value_in_no_format() -> None:
    assert _days(["2016-03-04", "2016-03-05 10:00:00", "soon"]) == [
        "2016-03-04",
        "2016-03-05",
        None,
    ]
    assert _days(["4 Mar 2016", "Mar 5, 2016"]) == ["2016-03-04", None]  # one format per column


def test_ambiguous_column_names_the_setting_and_both_formats() -> None:
    with pytest.raises(ConfigError) as err:
        parse_dates(pd.Series(["01/02/2016", "03/04/2016"]), setting="forecast.date_format")
    msg = str(err.value)
    assert "forecast.date_format" in msg and "'%d/%m/%Y'" in msg and "'%m/%d/%Y'" in msg
    assert _days(["01/02/2016", "03/04/2016"], date_format="%m/%d/%Y") == [
        "2016-01-02",
        "2016-03-04",
    ]
