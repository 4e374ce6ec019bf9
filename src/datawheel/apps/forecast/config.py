"""The ``forecast:`` section of ``datawheel.yaml``: what to forecast and how.

Example::

    forecast:
      source: sales            # a table source under sources:, or a file path
      series: [store, item]
      country: DE              # public holidays as a known-future input
      known_future:
        - path: promotions.csv
          on: [date, store, item]
      improve: {min_new_actuals: 500, max_wape_rise: 0.2}   # when datawheel improve retrains
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KnownFuture(_Section):
    """A table of inputs known ahead of time (promotion plans, weather forecasts)."""

    path: str = Field(..., description="CSV or Parquet file; relative paths are in the workspace.")
    on: list[str] = Field(
        ...,
        min_length=1,
        description="Join columns: the date column, plus series columns when it varies by series.",
    )
    columns: list[str] = Field(
        default_factory=list,
        description="Numeric columns to use as features; default: every column not in on.",
    )


class ForecastImproveConfig(_Section):
    """When ``datawheel improve --app forecast`` retrains, and what a challenger must win by."""

    min_new_actuals: int = Field(
        500,
        ge=1,
        description="Retrain once this many actual sales (series x days) were imported since "
        "the latest forecast model was trained.",
    )
    max_wape_rise: float = Field(
        0.2,
        ge=0,
        description="Retrain when the live WAPE of the model in use (on its settled "
        "forecasts) is more than this share above the WAPE measured at training (0.2: 20% "
        "worse).",
    )
    min_settled: int = Field(
        100, ge=1, description="Settled forecasts needed before the live WAPE is judged."
    )
    margin: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="A challenger replaces the model in use only when its WAPE on the same "
        "latest days is at least this share lower (0.01: 1% lower).",
    )


class ForecastConfig(_Section):
    """Demand forecasting: a global LightGBM model over every series, with intervals."""

    source: str | None = Field(
        None, description="Sales history: a table source under sources:, or a file path."
    )
    date: str = Field("date", description="Date column (one row per series and day).")
    date_format: str | None = Field(
        None,
        description="strptime format of the dates, e.g. '%d/%m/%Y'; null: ISO, or the one "
        "format that reads the whole column.",
    )
    series: list[str] = Field(
        default_factory=lambda: ["store", "item"],
        description="Columns that identify a series; they are also model features.",
    )
    target: str = Field("sales", description="The quantity to forecast.")
    aggregate: Literal["sum", "mean", "max", "last", "refuse"] = Field(
        "sum",
        description="Several rows for one series and day (transactions, a till's lines): "
        "sum them (default), take their mean, max or last, or refuse (leave the repeats out, "
        "listed with the rows left out).",
    )
    decimal: Literal["auto", ".", ","] = Field(
        "auto",
        description="The target's decimal mark; auto: read from its values (3,5 and 1.234,5 "
        "mean a comma), refused with this fix when they allow both.",
    )
    horizon: int = Field(7, ge=1, le=366, description="Days ahead to forecast.")
    lags: list[int] = Field(
        default_factory=lambda: [7, 14, 21, 28, 364],
        description="Lagged values used as features (days).",
    )
    rolling: list[int] = Field(
        default_factory=lambda: [7, 28],
        description="Rolling means of the value 7 days back, over these many days.",
    )
    country: str | None = Field(
        None, description="ISO country code for public holidays (e.g. US, DE); null: none."
    )
    known_future: list[KnownFuture] = Field(
        default_factory=list,
        description="Tables of inputs known ahead (promotions, weather) joined by date/series.",
    )
    level: list[float] = Field(
        default_factory=lambda: [80.0, 95.0],
        description="Prediction interval levels in percent (split conformal).",
    )
    min_history_days: int = Field(
        56,
        ge=7,
        description="Series with fewer days fall back to seasonal-naive (reported).",
    )
    train_days: int | None = Field(
        800,
        ge=56,
        description="Train on at most this many recent days (null: all history).",
    )
    n_estimators: int = Field(300, ge=10, description="LightGBM boosting rounds.")
    learning_rate: float = Field(0.08, gt=0, le=1, description="LightGBM learning rate.")
    num_leaves: int = Field(31, ge=2, description="LightGBM leaves per tree.")
    threads: int = Field(2, ge=1, description="Threads for feature building and LightGBM.")
    lead_time_days: int = Field(3, ge=1, description="Replenishment: days until an order lands.")
    service_level: float = Field(
        0.95, gt=0.5, lt=1, description="Replenishment: chance of not running out (sets z)."
    )
    improve: ForecastImproveConfig = Field(
        default_factory=lambda: ForecastImproveConfig(),
        description="When datawheel improve --app forecast retrains, and the promotion margin.",
    )

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            import holidays
        except ImportError:  # checked again, with the install line, when used
            return value.upper()
        supported = holidays.list_supported_countries()
        if value.upper() not in supported:
            raise ValueError(
                f"unknown country {value!r}; use an ISO code such as "
                f"{', '.join(sorted(supported)[:12])}, ... (or null for no holidays)"
            )
        return value.upper()

    @field_validator("level")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        if any(not 0 < v < 100 for v in value):
            raise ValueError("interval levels are percentages between 0 and 100, e.g. [80, 95]")
        return sorted(set(value))

    @field_validator("lags")
    @classmethod
    def _lags(cls, value: list[int]) -> list[int]:
        if not value or any(v < 1 for v in value):
            raise ValueError("lags are positive day counts, e.g. [7, 14, 28]")
        return sorted(set(value))
