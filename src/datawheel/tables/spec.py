"""What a table source is and how to clean it: the ``sources:`` entries of ``datawheel.yaml``.

A :class:`TableSource` says where rows come from (a file, or a SQL database by SQLAlchemy URL);
a :class:`CleanSpec` lists the cleaning steps, in the fixed order they run:
dedupe → drop_missing → fill → standardise → outliers → types → rules.

Example::

    source = TableSource(name="deals", path="sales_pipeline.csv", key=["opportunity_id"])
    spec = CleanSpec(
        types={"engage_date": "date", "close_date": "date"},
        rules=[Rule(name="closes_after_engage", expr="close_date >= engage_date")],
    )
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datawheel.errors import ConfigError

Format = Literal["auto", "csv", "tsv", "parquet", "jsonl", "excel"]
ColumnType = Literal["integer", "double", "varchar", "date", "timestamp", "boolean"]

SQL_TYPES: dict[str, str] = {
    "integer": "BIGINT",
    "double": "DOUBLE",
    "varchar": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TableSource(_Model):
    """One table: a file (``path``) or a database (``url`` plus ``table`` or ``query``)."""

    name: str = Field(
        ..., pattern=r"^[A-Za-z0-9_.-]+$", description="Source name; names its output folder."
    )
    path: str | None = Field(None, description="File to read (CSV, TSV, Parquet, JSONL, Excel).")
    url: str | None = Field(
        None, description="SQLAlchemy URL of a database; secrets as env:VAR_NAME."
    )
    table: str | None = Field(None, description="With url: the table to read.")
    query: str | None = Field(None, description="With url: a SELECT to read instead of a table.")
    format: Format = Field("auto", description="File format; auto: from the file extension.")
    delimiter: str | None = Field(None, description="CSV delimiter; default: detected.")
    encoding: str | None = Field(None, description="File encoding; default: detected.")
    sheet: str | None = Field(None, description="Excel sheet; default: the first one.")
    skip_rows: int = Field(
        0,
        ge=0,
        description="CSV lines or Excel rows above the header row (a report title, export "
        "notes); default: the header is the first line.",
    )
    key: list[str] = Field(
        default_factory=list, description="Columns that identify a row (used by dedupe)."
    )
    critical: list[str] = Field(
        default_factory=list, description="Columns a row may not miss (used by drop_missing)."
    )

    @model_validator(mode="after")
    def _one_origin(self) -> TableSource:
        if bool(self.path) == bool(self.url):
            raise ValueError("give exactly one of path (a file) or url (a database)")
        if self.url and bool(self.table) == bool(self.query):
            raise ValueError("a url source needs exactly one of table or query")
        return self


class Dedupe(_Model):
    on: Literal["all", "key"] = Field(
        "all", description="Compare all columns, or only the source's key columns."
    )
    keep: Literal["first", "last"] = Field("first", description="Which duplicate to keep.")


class DropMissing(_Model):
    columns: list[str] = Field(
        default_factory=list,
        description="Columns that must be present (non-empty); default: the source's critical.",
    )


class Standardise(_Model):
    column: str = Field(..., description="Column to standardise.")
    how: Literal["trim", "lower", "upper", "email", "phone", "date", "decimal_comma", "number"] = (
        Field(
            ...,
            description="trim/lower/upper: text; email: trimmed, lower case, checked; "
            "phone: digits with a leading +; date: parsed with input_formats into a DATE; "
            "decimal_comma: a number written 1.234,5 becomes 1234.5 (then declare it under types); "
            "number: currency signs and codes, spaces and thousands commas dropped ($1,234.50 "
            "becomes 1234.50; after decimal_comma for 1.234,50 €).",
        )
    )
    input_formats: list[str] = Field(
        default_factory=list,
        description="For how=date: strptime formats tried in order, e.g. ['%Y-%m-%d', '%d/%m/%Y'].",
    )

    @model_validator(mode="after")
    def _formats(self) -> Standardise:
        if self.how == "date" and not self.input_formats:
            raise ValueError("how=date needs input_formats, e.g. ['%Y-%m-%d', '%d/%m/%Y']")
        return self


class Outliers(_Model):
    column: str = Field(..., description="Numeric column to check.")
    method: Literal["rule", "iqr", "zscore"] = Field(
        "iqr", description="rule: fixed min/max; iqr: Q1-k*IQR..Q3+k*IQR; zscore: mean±k*sd."
    )
    action: Literal["drop", "flag", "clip"] = Field(
        "flag",
        description="drop: quarantine the row; flag: add <column>_outlier; clip: to the bounds.",
    )
    min: float | None = Field(None, description="method=rule: lowest allowed value.")
    max: float | None = Field(None, description="method=rule: highest allowed value.")
    k: float | None = Field(None, gt=0, description="Width: default 1.5 for iqr, 3 for zscore.")


class Rule(_Model):
    expr: str = Field(..., description="SQL boolean expression a good row satisfies.")
    name: str | None = Field(None, description="Name used in reports; default: the expression.")

    @property
    def label(self) -> str:
        return self.name or self.expr


class CleanSpec(_Model):
    """The cleaning steps of one table source."""

    na_values: list[str] = Field(
        default_factory=list,
        description="Placeholder values that mean missing in every column (e.g. ERROR, "
        "UNKNOWN, n/a), read as empty after dedupe, so drop_missing, fill and rules see them "
        "as missing.",
    )
    dedupe: Dedupe | None = Field(None, description="Remove duplicate rows.")
    drop_missing: DropMissing | None = Field(
        None, description="Quarantine rows missing a critical column."
    )
    fill: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Column → default for missing values."
    )
    standardise: list[Standardise] = Field(
        default_factory=list, description="Format fixes per column."
    )
    outliers: list[Outliers] = Field(default_factory=list, description="Outlier checks.")
    future_days: int | None = Field(
        366,
        ge=0,
        description="Rows whose date or timestamp column (under types) is more than this many "
        "days after the run are quarantined (a typo'd year); null: no limit.",
    )
    types: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Column → type; values that do not convert are quarantined.",
    )
    rules: list[Rule | str] = Field(
        default_factory=list, description="Business rules as SQL boolean expressions."
    )

    def rule_list(self) -> list[Rule]:
        return [r if isinstance(r, Rule) else Rule(expr=r) for r in self.rules]


def check_columns(wanted: list[str], columns: list[str], where: str) -> None:
    """Raise a ConfigError naming the table's columns when ``wanted`` has unknown ones."""
    unknown = [c for c in wanted if c not in columns]
    if unknown:
        raise ConfigError(
            f"{where}: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"the table's columns are: {', '.join(columns)}"
        )
