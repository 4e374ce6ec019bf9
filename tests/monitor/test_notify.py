"""Monitor notifications: the findings reach a real webhook and a real SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from datawheel import Workspace
from datawheel.monitor import EmailConfig, History, MonitorConfig, run_monitor

from ._rows import NOW, add, by, make_rows, write_csv

# -- (h) webhook ----------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]] = []
    statuses: list[int] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), body))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "statuses": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/T0KEN", handler
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_gets_the_findings_as_json(
    ws: Workspace, tmp_path: Path, hook: tuple[str, type[_Hook]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = hook
    monkeypatch.setenv("ALERT_HOOK", url)
    add(ws, "old", write_csv(tmp_path / "old.csv", make_rows(30, age_days=10)))
    handler.statuses = [503]  # the first try fails; the retry gets through
    report = run_monitor(ws, MonitorConfig(webhook_url="env:ALERT_HOOK"), now=NOW)
    assert report.exit_code == 2 and not by(report, "webhook")
    assert len(handler.received) == 2
    path, headers, raw = handler.received[-1]
    assert path == "/hooks/T0KEN" and headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert body["workspace"] == str(ws.path) and body["level"] == "alert"
    assert body["run_at"] == NOW.isoformat() and body["run_id"] == report.run_id
    assert [(f["source"], f["check"], f["level"]) for f in body["findings"]] == [
        ("old", "freshness", "alert")
    ]
    assert body["findings"][0]["message"].startswith("stale: newest day is 2026-02-20")
    assert body["counts"]["alert"] == 1 and body["counts"]["ok"] >= 3
    # a quiet run sends nothing at the default notify_on: warning
    fresh = MonitorConfig(webhook_url=url, stale_after_days=30)
    assert run_monitor(ws, fresh, now=NOW).exit_code == 0
    assert len(handler.received) == 2


def test_refused_webhook_is_a_warning_and_findings_are_kept(ws: Workspace, tmp_path: Path) -> None:
    add(ws, "old", write_csv(tmp_path / "old.csv", make_rows(30, age_days=10)))
    url = f"http://127.0.0.1:{_free_port()}/hook"
    report = run_monitor(ws, MonitorConfig(webhook_url=url), now=NOW)
    (problem,) = by(report, "webhook")
    assert (problem.source, problem.level) == ("monitor", "warning")
    assert "failed after 3 tries (ConnectError" in problem.message
    assert "/hook" not in problem.message  # the path may hold a token
    assert report.exit_code == 2  # the freshness alert still decides
    stored = {(f["check"], f["level"]) for f in History(ws.store.engine).findings()}
    assert {("freshness", "alert"), ("webhook", "warning")} <= stored


# -- (i) email ------------------------------------------------------------------------------


def test_email_summary_reaches_a_real_smtp_server(ws: Workspace, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            self.messages.append(envelope)
            return "250 Message accepted for delivery"

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        add(ws, "old", write_csv(tmp_path / "old.csv", make_rows(30, age_days=10)))
        email = EmailConfig.model_validate(
            {
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "from": "datawheel@example.com",
                "to": ["data@example.com", "ops@example.com"],
            }
        )
        report = run_monitor(ws, MonitorConfig(email=email), now=NOW)
    finally:
        controller.stop()
    assert not by(report, "email")
    (envelope,) = inbox.messages
    assert envelope.rcpt_tos == ["data@example.com", "ops@example.com"]
    msg = message_from_bytes(envelope.content)
    assert msg["Subject"] == "[datawheel] ALERT in kb: 1 alert"
    text = msg.get_payload(decode=True).decode()
    assert f"datawheel monitor: ALERT in {ws.path}" in text
    assert "ALERT    old" in text and "stale: newest day is 2026-02-20" in text
    assert "checks ok" in text
    # a dead mail server is a warning, not a crash
    dead = email.model_copy(update={"smtp_port": _free_port()})
    (problem,) = by(run_monitor(ws, MonitorConfig(email=dead), now=NOW), "email")
    assert problem.level == "warning" and "email through 127.0.0.1" in problem.message
