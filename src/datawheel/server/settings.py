"""Settings of ``datawheel serve``: limits, schedules and the online A/B test."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerConfig(_Section):
    host: str = Field("127.0.0.1", description="Address datawheel serve listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port datawheel serve listens on.")
    max_request_mb: float = Field(
        50.0, gt=0, description="Largest request body (uploads included); larger ones get 413."
    )
    rate_limit: str = Field(
        "600/minute", description="Requests per API key, e.g. 600/minute or 20/second."
    )
    session_hours: float = Field(
        12.0, gt=0, description="How long a web UI sign-in lasts (HttpOnly cookie)."
    )
    worker_healthcheck_s: int = Field(
        60,
        ge=1,
        description="With --workers: how long a worker may take to answer uvicorn's health "
        "check before it is restarted (loading a model can hold a worker for seconds).",
    )
    secure_cookies: bool = Field(
        False, description="Mark the session cookie Secure (turn on behind HTTPS)."
    )
    sign_in_limit: str = Field(
        "5/15minutes",
        description="Failed sign-ins per account before it must wait (even the right "
        "password is refused until the window passes).",
    )
    sign_in_address_limit: str = Field(
        "20/15minutes", description="Failed sign-ins per client address before it must wait."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Other origins (https://host:port) whose pages may post to the service "
        "with a signed-in browser, e.g. behind a proxy that rewrites Host; the service's own "
        "origin is always allowed.",
    )

    @field_validator("rate_limit", "sign_in_limit", "sign_in_address_limit")
    @classmethod
    def _parse_rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"{exc}; write it as N/second, N/minute or N/hour") from None
        return value


class SchedulesConfig(_Section):
    """Cron expressions (minute hour day month weekday); an empty string turns a job off."""

    monitor: str = Field("0 6 * * *", description="Data checks on every source (daily).")
    report: str = Field("0 7 * * mon", description="The weekly report (satisfaction, gaps).")
    improve: str = Field(
        "0 2 * * sun", description="Improve: new candidates judged on held-out feedback."
    )
    ab: str = Field("*/30 * * * *", description="Decide a running A/B test when it can.")
    timezone: str = Field("UTC", description="Time zone of the schedules.")

    @field_validator("monitor", "report", "improve", "ab")
    @classmethod
    def _parse_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        if value.strip():
            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"not a cron expression ({exc}), e.g. '0 6 * * *'") from None
        return value


class ABConfig(_Section):
    share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of users served a challenger before it is promoted (0: improve "
        "promotes a winner at once, on held-out feedback alone).",
    )
    min_votes: int = Field(
        30, ge=1, description="Votes each variant needs before the test may decide."
    )
    confidence: float = Field(
        0.95,
        gt=0.5,
        lt=1,
        description="Promote when P(challenger more satisfying) reaches this; stop the "
        "challenger when it falls to 1 minus this.",
    )
    max_days: float = Field(28.0, gt=0, description="Undecided after this long: keep the champion.")
