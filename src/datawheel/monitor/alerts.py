"""Send a run's findings to the log, a webhook (HTTP POST of JSON) and email (SMTP).

The log always gets every finding. The webhook and email are used when the run's level
reaches ``notify_on``; a channel that fails never stops the run: :func:`notify` returns it
as a ``warning`` finding (source ``monitor``), recorded like any other.

Webhook body::

    {"workspace": "/srv/kb", "run_id": 7, "run_at": "2026-05-04T06:00:00+00:00",
     "level": "alert", "counts": {"ok": 9, "warning": 1, "alert": 1},
     "findings": [{"source": "sales", "check": "volume", "level": "alert", ...}]}
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections import Counter
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx

from datawheel.errors import DatawheelError
from datawheel.monitor.checks import LEVELS, Finding, worst
from datawheel.monitor.settings import EmailConfig, MonitorConfig

log = logging.getLogger(__name__)
_LOG_LEVELS = {"ok": logging.INFO, "warning": logging.WARNING, "alert": logging.ERROR}


class NotifyError(DatawheelError):
    """A webhook or mail server did not take the alert."""


def summary_text(
    workspace: str, run_id: int | None, run_at: datetime, findings: list[Finding]
) -> str:
    """A plain-text summary: a header, then warnings and alerts first, ok findings counted."""
    level = worst(findings)
    at = run_at.isoformat(timespec="seconds")
    lines = [f"datawheel monitor: {level.upper()} in {workspace} (run {run_id}, {at})", ""]
    shown = sorted(
        (f for f in findings if f.level != "ok"), key=lambda f: (-LEVELS[f.level], f.source)
    )
    for f in shown:
        lines.append(f"{f.level.upper():<8} {f.source:<16} {f.check:<16} {f.message}")
    ok = sum(1 for f in findings if f.level == "ok")
    if ok:
        lines += [""] if shown else []
        lines.append(f"{ok} checks ok")
    return "\n".join(lines)


def payload(
    workspace: str,
    run_id: int | None,
    run_at: datetime,
    findings: list[Finding],
    notify_on: str = "warning",
) -> dict[str, Any]:
    """The webhook's JSON body: findings at ``notify_on`` or above (all of them for ok)."""
    return {
        "workspace": workspace,
        "run_id": run_id,
        "run_at": run_at.isoformat(),
        "level": worst(findings),
        "counts": {level: sum(f.level == level for f in findings) for level in LEVELS},
        "findings": [f.to_dict() for f in findings if LEVELS[f.level] >= LEVELS[notify_on]],
    }


def notify(
    workspace: str,
    run_id: int | None,
    run_at: datetime,
    findings: list[Finding],
    config: MonitorConfig,
    *,
    backoff_s: float = 0.5,
) -> list[Finding]:
    """Log every finding; POST and mail them when the level is high enough.

    Returns a ``warning`` finding for each channel that failed.
    """
    for f in findings:
        log.log(_LOG_LEVELS[f.level], "%s %s: %s", f.source, f.check, f.message)
    if LEVELS[worst(findings)] < LEVELS[config.notify_on]:
        return []
    problems: list[Finding] = []
    if config.webhook_url:
        body = payload(workspace, run_id, run_at, findings, config.notify_on)
        try:
            send_webhook(config.webhook_url, body, backoff_s=backoff_s)
        except DatawheelError as exc:  # NotifyError, or a ConfigError for a missing env var
            problems.append(Finding("monitor", "webhook", "warning", str(exc)))
    if config.email:
        text = summary_text(workspace, run_id, run_at, findings)
        try:
            send_email(config.email, _subject(workspace, findings), text)
        except DatawheelError as exc:
            problems.append(Finding("monitor", "email", "warning", str(exc)))
    for p in problems:
        log.warning("%s", p.message)
    return problems


def _subject(workspace: str, findings: list[Finding]) -> str:
    counts = Counter(f.level for f in findings)
    parts = [
        f"{counts[level]} {level}{'s' if counts[level] > 1 else ''}"
        for level in ("alert", "warning")
        if counts[level]
    ]
    name = workspace.rstrip("/").rsplit("/", 1)[-1]
    return f"[datawheel] {worst(findings).upper()} in {name}: {', '.join(parts) or 'all ok'}"


def _shown(url: str) -> str:
    """Scheme, host and port only: webhook paths often hold a token."""
    try:
        u = httpx.URL(url)
    except Exception:
        return "<invalid url>"
    return f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")


def send_webhook(
    url: str,
    body: dict[str, Any],
    *,
    timeout_s: float = 10.0,
    retries: int = 2,
    backoff_s: float = 0.5,
) -> None:
    """POST ``body`` as JSON; retry connection errors and 5xx/408/429 answers.

    Raises:
        NotifyError: no 2xx answer after ``retries`` retries.
        ConfigError: ``url`` is ``env:VAR`` and VAR is not set.
    """
    from datawheel.config import resolve_secret  # late: config imports the monitor settings

    real = resolve_secret(url)
    shown = _shown(real)
    reason = ""
    with httpx.Client(timeout=timeout_s) as client:
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff_s * 2 ** (attempt - 1))
            try:
                response = client.post(real, json=body)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            except ValueError as exc:  # not an http(s) URL at all
                raise NotifyError(f"webhook URL {shown} is not valid: {exc}") from None
            if response.is_success:
                log.info("webhook %s took the alert (%d)", shown, response.status_code)
                return
            reason = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code not in (408, 429):
                break  # the server refuses this request; retrying will not change that
    raise NotifyError(
        f"webhook {shown} failed after {attempt + 1} tries ({reason}); the findings are "
        "stored; check monitor.webhook_url and that the server is up"
    )


def send_email(config: EmailConfig, subject: str, text: str) -> None:
    """Send one plain-text message to every address in ``config.to``.

    Raises:
        NotifyError: the server cannot be reached or refuses the message.
        ConfigError: the password is ``env:VAR`` and VAR is not set.
    """
    from datawheel.config import resolve_secret

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = config.from_
    msg["To"] = ", ".join(config.to)
    msg.set_content(text)
    where = f"{config.smtp_host}:{config.smtp_port}"
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_s) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, resolve_secret(config.password or ""))
            refused = smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotifyError(
            f"email through {where} failed ({type(exc).__name__}: {exc}); the findings are "
            "stored; check monitor.email (host, port, starttls, login)"
        ) from None
    if refused:
        raise NotifyError(f"the mail server {where} refused {', '.join(refused)}")
    log.info("mailed the alert to %s through %s", ", ".join(config.to), where)
