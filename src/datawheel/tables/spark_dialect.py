"""Spark SQL spelling of the cleaning steps' SQL, returning DuckDB's values.

DuckDB is the reference (:class:`datawheel.tables.dialect.Dialect`); where Spark SQL reads text
as numbers or dates differently, matches regular expressions differently or escapes string
literals differently, :class:`SparkDialect` spells the SQL so that Spark gives DuckDB's
answer. ``tests/tables/test_spark.py`` checks the conversions value by value.
"""

from __future__ import annotations

import re

from datawheel.errors import ConfigError
from datawheel.tables.dialect import DATE_SHAPE, TIME_SHAPE, Dialect

# text DuckDB reads as a number: digits with optional _ between them, a point, an exponent
_DIGITS = r"[0-9](?:_?[0-9])*"
_NUMBER = rf"\s*[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?[0-9]+)?\s*"
_SPECIAL = r"(?i)\s*[+-]?(?:nan|inf|infinity)\s*"
# text DuckDB reads as a date (years 1000-9999): Y-M-D, Y/M/D or Y M D, then a time of day
_DATE = DATE_SHAPE
_TIME = TIME_SHAPE
_DASHED = r"^(\s*[0-9]{4})[/ ]([0-9]{1,2})[/ ]"  # Y/M/D or Y M D, to be Y-M-D
_SPACED = r"^(\s*[0-9-]{8,10}) +"  # spaces between a date and its time, to be one
_END = r")\z"
_INTEGRAL = ("TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT", "LONG", "SHORT", "BYTE")


class SparkDialect(Dialect):
    """Spark SQL spelling of the steps' SQL, returning DuckDB's values.

    Known differences that remain: hexadecimal and binary integers (``0x10``), dates before
    year 1000 or after 9999, BC dates and ``infinity`` as a date are NULL on Spark; numbers
    in non-text columns are written as text the Java way (``1.0E8``) in reasons; regular
    expressions are Java's, not RE2.
    """

    name = "spark"
    text = "STRING"

    def lit(self, value: object) -> str:
        # Spark SQL reads backslash escapes inside string literals
        return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"

    def to_text(self, expr: str) -> str:
        return f"CAST({expr} AS STRING)"

    def is_text(self, native: str) -> bool:
        return native.upper() in ("STRING", "VARCHAR") or native.upper().startswith("VARCHAR(")

    def to_double(self, expr: str) -> str:
        return self._number(expr, "DOUBLE", special=True)

    def _number(self, expr: str, sql_type: str, special: bool = False) -> str:
        """Text as a number only where DuckDB reads one (Spark also takes ``1d``, ``１２``)."""
        ok = f"regexp_like({expr}, {self.lit('^' + _NUMBER + '$')})"
        if special:
            ok = f"({ok} OR regexp_like({expr}, {self.lit('^' + _SPECIAL + '$')}))"
        return f"try_cast(CASE WHEN {ok} THEN replace({expr}, '_', '') END AS {sql_type})"

    def convert(self, expr: str, kind: str, native: str) -> str:
        native = native.upper()
        text = self.is_text(native)
        if kind == "integer":
            if text:  # DuckDB rounds '2.5' half away from zero
                exact = self._number(expr, "DECIMAL(38,18)")
                return f"try_cast(round({exact}) AS BIGINT)"
            if native in ("DOUBLE", "FLOAT", "REAL"):  # a DOUBLE rounds half to even
                return f"try_cast(bround({expr}) AS BIGINT)"
            if native.startswith("DECIMAL"):
                return f"try_cast(round({expr}) AS BIGINT)"
            return f"try_cast({expr} AS BIGINT)"
        if kind == "double" and text:
            return self.to_double(expr)
        if kind in ("date", "timestamp") and text:
            return self._moment(expr, kind)
        sql_type = {"timestamp": "TIMESTAMP_NTZ", "varchar": "STRING"}.get(kind, kind.upper())
        return f"try_cast({expr} AS {sql_type})"

    def days_from_today(self, days: int) -> str:
        return f"date_add(current_date(), {int(days)})"

    def _moment(self, expr: str, kind: str) -> str:
        """Text as a date or timestamp where DuckDB reads one (Spark also takes ``2016``)."""
        # DuckDB allows spaces after a date, not after a timestamp
        shape = "^" + _DATE + _TIME + (r"\s*\z" if kind == "date" else r"\z")
        # Spark reads only - between the parts and one space before the time
        dashed = f"regexp_replace({expr}, {self.lit(_DASHED)}, '$1-$2-')"
        spaced = f"regexp_replace({dashed}, {self.lit(_SPACED)}, '$1 ')"
        sql_type = "DATE" if kind == "date" else "TIMESTAMP_NTZ"
        return (
            f"try_cast(CASE WHEN regexp_like({expr}, {self.lit(shape)}) THEN {spaced} END "
            f"AS {sql_type})"
        )

    def cast(self, expr: str, native: str) -> str:
        if native.upper() in _INTEGRAL:  # Spark truncates a DOUBLE; DuckDB rounds half to even
            return f"CAST(bround({expr}) AS {native})"
        return f"CAST({expr} AS {native})"

    def full_match(self, expr: str, pattern: str) -> str:
        # Java's $ also matches before a final line break; \z only at the very end
        return f"regexp_like({expr}, {self.lit('^(?:' + pattern + _END)})"

    def remove(self, expr: str, pattern: str) -> str:
        return f"regexp_replace({expr}, {self.lit(pattern)}, '')"

    def ungroup(self, expr: str) -> str:
        return f"regexp_replace({expr}, ',([0-9]{{3}})', '$1')"

    def digits(self, expr: str) -> str:
        return f"regexp_replace({expr}, '[^0-9]', '')"

    def parse_time(self, expr: str, fmt: str) -> str:
        return f"try_to_timestamp({expr}, {self.lit(java_pattern(fmt))})"

    def quantile(self, expr: str, q: float) -> str:
        return f"percentile({expr}, {q})"


SPARK = SparkDialect()

# strptime directive → (Java pattern, its fixed-width form when a number follows directly)
_DIRECTIVES = {
    "Y": ("y", "yyyy"),
    "y": ("yy", "yy"),
    "m": ("M", "MM"),
    "d": ("d", "dd"),
    "H": ("H", "HH"),
    "I": ("h", "hh"),
    "M": ("m", "mm"),
    "S": ("s", "ss"),
    "f": ("SSSSSS", "SSSSSS"),
    "j": ("D", "DDD"),
    "b": ("MMM", "MMM"),
    "h": ("MMM", "MMM"),
    "B": ("MMMM", "MMMM"),
    "a": ("EEE", "EEE"),
    "A": ("EEEE", "EEEE"),
    "p": ("a", "a"),
    "z": ("Z", "Z"),
}
_NUMERIC = set("YymdHIMSfj")


def java_pattern(fmt: str) -> str:
    """A strptime format (``%d/%m/%Y``) as a Spark datetime pattern (``d/M/y``).

    Numbers take one digit or more, as in strptime, unless another number touches them with
    no separator (``%Y%m%d`` → ``yyyyMMdd``, which then needs every digit); literal text is
    quoted.
    """
    tokens = re.findall(r"%.|[^%]+", fmt)
    out = []
    for i, token in enumerate(tokens):
        if token == "%%":
            out.append("'%'")
        elif token.startswith("%"):
            if token[1] not in _DIRECTIVES:
                raise ConfigError(
                    f"date format {fmt!r}: {token} has no Spark equivalent; use "
                    f"{', '.join('%' + d for d in _DIRECTIVES)}"
                )
            fixed = token[1] in _NUMERIC and any(
                0 <= j < len(tokens) and tokens[j][:1] == "%" and tokens[j][1:2] in _NUMERIC
                for j in (i - 1, i + 1)
            )
            out.append(_DIRECTIVES[token[1]][1 if fixed else 0])
        else:
            out.append("'" + token.replace("'", "''") + "'")
    return "".join(out)
