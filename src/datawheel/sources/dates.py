"""Dates found in sources, normalised to ISO 8601 strings."""

from __future__ import annotations

import datetime as dt
import re

_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M",
    "%B %d, %Y",
    "%B %d, %Y %I:%M %p",
    "%B %d, %Y %H:%M",
    "%b %d, %Y",
    "%b %d, %Y %I:%M %p",
    "%b %d, %Y %H:%M",
    "%d %B %Y",
    "%d %b %Y",
)
_SPACES = re.compile(r"\s+")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def to_iso(value: object) -> str | None:
    """Return ``value`` as an ISO 8601 string, or None when it is not a recognisable date.

    Accepts ``date``/``datetime`` objects, ISO strings and the spellings used by Notion
    ("January 5, 2023 3:45 PM") and Confluence ("Mar 03, 2020").

    Example:
        >>> to_iso("Mar 03, 2020")
        '2020-03-03'
    """
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    text = _SPACES.sub(" ", value.strip().removesuffix(" (UTC)").strip())
    if not text:
        return None
    try:
        if _DATE_ONLY.fullmatch(text):
            return dt.date.fromisoformat(text).isoformat()
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        has_time = "%H" in fmt or "%I" in fmt
        return parsed.isoformat() if has_time else parsed.date().isoformat()
    return None


def from_timestamp(seconds: float) -> str:
    """A file modification time (seconds since the epoch) as an ISO 8601 UTC string."""
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat(timespec="seconds")
