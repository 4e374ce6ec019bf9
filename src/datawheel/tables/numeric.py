"""Numbers as spreadsheets and tills export them: ``3,5``, ``1.234,50 €``, ``$1,234.50``.

``read_numbers`` finds a column's decimal mark from its own values and refuses to guess when
they do not say: ``1,234`` alone could be a thousand or one and a bit.

Example:
    >>> import pandas as pd
    >>> values, how = read_numbers(pd.Series(["3,5", "12", "1.234,75 €"]))
    >>> values.tolist()
    [3.5, 12.0, 1234.75]
    >>> how
    'decimal comma, thousands separators, currency signs'
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from datawheel.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

Decimal = Literal["auto", ".", ","]

_CURRENCY = re.compile(r"[$€£¥₹]|\b(?:USD|EUR|GBP|JPY|INR|CHF|CAD|AUD)\b", re.IGNORECASE)
_SPACES = re.compile(r"(?<=\d)[\s\u00a0\u202f']+(?=\d)")  # 1 234 / 1'234 thousands
_SHAPE = re.compile(r"^[+-]?\d[\d.,]*$|^[+-]?[.,]\d+$")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})*(?:,\d+)?$|^[+-]?\d+(?:,\d+)?$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})*(?:\.\d+)?$|^[+-]?\d+(?:\.\d+)?$")


def read_numbers(
    values: pd.Series, decimal: Decimal = "auto", *, column: str = "the column"
) -> tuple[pd.Series, str | None]:
    """Parse ``values`` (strings) as numbers; returns the floats (NaN where a value is not a
    number) and how the column was read (``None``: plain numbers).

    ``decimal`` is the decimal mark, or ``auto``: a comma followed by other than three digits
    (``3,5``) or written after a dot (``1.234,5``) makes it a comma, the reverse a dot.
    Raises ConfigError when the values allow both readings (only ``1,234``-like values).
    """
    import pandas as pd

    text = values.astype("string").str.strip()
    currency = text.str.contains(_CURRENCY, na=False)
    text = text.str.replace(_CURRENCY, "", regex=True).str.strip()
    spaced = text.str.contains(_SPACES, na=False)
    text = text.str.replace(_SPACES, "", regex=True)
    shaped = text.str.match(_SHAPE, na=False)
    mark = decimal if decimal != "auto" else _decimal_of(text[shaped], column)
    if mark == ",":
        ok = shaped & text.str.match(_COMMA_DECIMAL, na=False)
        plain = text.where(ok).str.replace(".", "", regex=False).str.replace(",", ".")
    else:
        ok = shaped & text.str.match(_DOT_DECIMAL, na=False)
        plain = text.where(ok).str.replace(",", "", regex=False)
    numbers = pd.to_numeric(plain, errors="coerce").astype("float64")
    how = []
    if mark == "," and text[ok].str.contains(",", regex=False).any():
        how.append("decimal comma")
    separated = text[ok].str.contains("." if mark == "," else ",", regex=False).any()
    if separated or spaced.any():
        how.append("thousands separators")
    if currency.any():
        how.append("currency signs")
    return numbers, ", ".join(how) or None


def _decimal_of(text: pd.Series, column: str) -> str:
    comma_last = text.str.contains(r"\.\d*,\d*$", regex=True)
    dot_last = text.str.contains(r",\d*\.\d*$", regex=True)
    lone_comma = text.str.contains(r"^[+-]?\d*,\d+$", regex=True)
    short_comma = text.str.contains(r",(?:\d{1,2}|\d{4,})$", regex=True) & lone_comma
    lone_dot = text.str.contains(r"^[+-]?\d*\.\d+$", regex=True)
    short_dot = text.str.contains(r"\.(?:\d{1,2}|\d{4,})$", regex=True) & lone_dot
    says_comma = bool(comma_last.any() or short_comma.any())
    says_dot = bool(dot_last.any() or short_dot.any())
    if says_comma and says_dot:
        raise ConfigError(
            f"{column} mixes decimal marks ({_example(text, comma_last | short_comma)} and "
            f"{_example(text, dot_last | short_dot)}); say which one it uses: decimal: ',' "
            "or decimal: '.'"
        )
    if says_comma:
        return ","
    if says_dot or not lone_comma.any():
        return "."
    raise ConfigError(
        f"{column} has numbers like {_example(text, lone_comma)} that read as a thousand "
        "or as a decimal; say which: decimal: ',' (1,5 = one and a half) or decimal: '.' "
        "(1,500 = fifteen hundred)"
    )


def _example(text: pd.Series, mask: pd.Series) -> str:
    return repr(str(text[mask].iloc[0]))
