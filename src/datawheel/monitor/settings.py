"""The ``monitor:`` section of ``datawheel.yaml``: thresholds, per-source overrides, channels.

Example::

    monitor:
      stale_after_days: 2
      psi_alert: 0.25
      sources:
        sales: {date_column: order_date, stale_after_days: 7, ignore_columns: [comment]}
      webhook_url: env:ALERTS_WEBHOOK
      email: {smtp_host: mail.example.com, from: datawheel@example.com, to: [data@example.com]}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Level = Literal["ok", "warning", "alert"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class SourceMonitorConfig(_Section):
    """Overrides for one table source, under ``monitor.sources.<name>``."""

    date_column: str | None = Field(
        None,
        description="Column whose newest value is checked for freshness; default: the "
        "first DATE/TIMESTAMP column.",
    )
    stale_after_days: int | None = Field(
        None, ge=0, description="Override of monitor.stale_after_days for this source."
    )
    volume: Literal["added", "total"] | None = Field(
        None, description="Override of monitor.volume for this source."
    )
    ignore_columns: list[str] = Field(
        default_factory=list,
        description="Columns not checked for drift (ids, free text); key columns never are.",
    )


class EmailConfig(_Section):
    smtp_host: str = Field(..., description="SMTP server host name.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    from_: str = Field(..., alias="from", description="Sender address.")
    to: list[str] = Field(..., min_length=1, description="Recipient addresses.")
    username: str | None = Field(None, description="SMTP login user, if the server needs one.")
    password: str | None = Field(None, description="SMTP password as env:VAR_NAME.")
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for the server.")


class MonitorConfig(_Section):
    """Daily data checks on table sources and the document knowledge base."""

    volume: Literal["added", "total"] = Field(
        "added",
        description="Volume measure: added (rows new since the last run; tables that grow) "
        "or total (all rows; tables replaced by each export).",
    )
    volume_min_ratio: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Alert when the volume is below this share of the trailing average.",
    )
    trailing_runs: int = Field(
        7, ge=1, le=365, description="Earlier runs the volume is averaged over."
    )
    reference: Literal["first", "previous"] = Field(
        "first",
        description="What drift and null rates compare against: the first snapshot of a "
        "column (a fixed reference window) or the previous run.",
    )
    psi_warn: float = Field(0.1, ge=0, description="Warn when a column's PSI reaches this.")
    psi_alert: float = Field(0.25, ge=0, description="Alert when a column's PSI reaches this.")
    psi_bins: int = Field(
        10,
        ge=2,
        le=100,
        description="Quantile bins for numeric columns (edges fixed by the reference).",
    )
    top_categories: int = Field(
        20, ge=1, le=1000, description="Categories kept per text column; the rest is 'other'."
    )
    stale_after_days: int = Field(
        2, ge=0, description="Alert when a source's newest date is older than this."
    )
    rejected_alert: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Lines the reader cannot parse warn; alert when they reach this share.",
    )
    null_jump: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Warn when a column's null rate rises by this much "
        "(absolute); alert at twice as much.",
    )
    documents_weeks: int = Field(
        4, ge=1, le=52, description="Earlier weeks the documents added per week are averaged over."
    )
    documents_stale_days: int = Field(
        365, ge=1, description="A document whose date is older than this counts as stale."
    )
    documents_stale_share: float = Field(
        0.5, ge=0, le=1, description="Warn when more than this share of dated documents is stale."
    )
    memory_limit: str = Field("2GB", description="DuckDB memory cap while profiling a source.")
    sources: dict[str, SourceMonitorConfig] = Field(
        default_factory=dict, description="Per-source overrides, keyed by source name."
    )
    notify_on: Level = Field(
        "warning",
        description="Send the webhook and email when a run's level is at least this "
        "(ok: every run).",
    )
    webhook_url: str | None = Field(
        None,
        description="URL that receives each alert as an HTTP POST of JSON; may be env:VAR_NAME.",
    )
    email: EmailConfig | None = Field(None, description="Send alerts by email over SMTP.")

    @model_validator(mode="after")
    def _ordered(self) -> MonitorConfig:
        if self.psi_alert < self.psi_warn:
            raise ValueError(
                f"psi_alert ({self.psi_alert}) must be at least psi_warn ({self.psi_warn})"
            )
        return self

    def for_source(self, name: str) -> SourceMonitorConfig:
        """The overrides of source ``name`` (all defaults when it has none)."""
        return self.sources.get(name) or SourceMonitorConfig()

    def stale_days(self, name: str) -> int:
        override = self.for_source(name).stale_after_days
        return self.stale_after_days if override is None else override

    def volume_of(self, name: str) -> Literal["added", "total"]:
        return self.for_source(name).volume or self.volume
