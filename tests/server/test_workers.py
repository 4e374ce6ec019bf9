"""`datawheel serve --workers N`: several processes on one PostgreSQL store."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from _kb import DOCS, QUESTIONS, admin_workspace, bearer, free_port, running
from sqlalchemy import create_engine, func, select

from datawheel.server.app import create_app
from datawheel.store import schema as t
from datawheel.workspace import Workspace

CLI = [sys.executable, "-m", "datawheel.cli.main"]


def _wait(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            time.sleep(0.3)
    raise AssertionError("the workers did not come up")


@pytest.mark.postgres
def test_two_workers_share_votes_and_follow_a_promotion(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATAWHEEL_DATABASE_URL": pg_url, "HF_HUB_OFFLINE": "1"}
    os.environ["DATAWHEEL_DATABASE_URL"] = pg_url
    try:
        with Workspace.init(tmp_path / "kb") as ws:
            for groups, files in DOCS.items():
                folder = tmp_path / "docs" / groups.replace(",", "+")
                folder.mkdir(parents=True)
                for name, text in files.items():
                    (folder / name).write_text(text, encoding="utf-8")
                ws.ingest([folder], groups=groups.split(","))
            key = ws.add_user("root", role="admin", groups=["*"])
    finally:
        del os.environ["DATAWHEEL_DATABASE_URL"]
    port = free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--workers", "2", "--port", str(port), "-w", str(tmp_path / "kb")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url, h = f"http://127.0.0.1:{port}", bearer(key)
    try:
        _wait(url, server)
        questions = (QUESTIONS["hr"] + QUESTIONS["sales"]) * 3

        def ask_and_vote(i: int) -> str:
            with httpx.Client(base_url=url, headers=h, timeout=60) as client:
                answer = client.post("/api/ask", json={"question": questions[i]}).json()
                voted = client.post(
                    "/api/feedback", json={"interaction_id": answer["id"], "vote": "up"}
                )
                assert voted.status_code == 200, voted.text
                return str(answer["id"])

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(ask_and_vote, range(len(questions))))
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(t.feedback)).scalar()
        engine.dispose()
        assert stored == len(set(ids)) == len(questions)

        # one worker promotes a version with a curated answer; every worker serves it
        question = QUESTIONS["sales"][4]
        first = httpx.post(f"{url}/api/ask", json={"question": question}, headers=h).json()
        httpx.post(
            f"{url}/api/feedback",
            json={"interaction_id": first["id"], "vote": "down", "correction": "Two weeks."},
            headers=h,
        )
        improved = httpx.post(f"{url}/api/improve", headers=h, timeout=300).json()
        assert improved["promoted"], improved
        time.sleep(1.5)
        served = {
            httpx.post(f"{url}/api/ask", json={"question": question}, headers=h).json()[
                "answered_from"
            ]
            for _ in range(12)
        }
        assert served == {"memory"}
        # every worker shows the same plan; the jobs run in the one holding scheduler.lock
        answers = [httpx.get(f"{url}/api/jobs", headers=h).json() for _ in range(12)]
        plans = {json.dumps(a["scheduled"], sort_keys=True) for a in answers}
        assert len(plans) == 1 and len(answers[0]["scheduled"]) == 4, plans
        assert {a["runs_in"] for a in answers} <= {"this worker", "another worker"}
        with (tmp_path / "kb" / "scheduler.lock").open("a") as lock:
            try:  # held by a worker for its lifetime
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                lock_free = True
            except BlockingIOError:
                lock_free = False
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert "Application startup complete" in output
    assert "died" not in output, output  # no worker was lost (uvicorn restarts lost ones)
    assert not lock_free, output


def test_several_workers_on_sqlite_are_refused_with_the_reason(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "kb").close()
    done = subprocess.run(
        [*CLI, "serve", "--workers", "2", "-w", str(tmp_path / "kb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "needs the PostgreSQL store" in done.stdout + done.stderr


@pytest.mark.postgres
def test_workers_count_rate_limits_together(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two services over one PostgreSQL store, one key: the limit holds across both."""
    monkeypatch.setenv("DATAWHEEL_DATABASE_URL", pg_url)
    key = admin_workspace(tmp_path / "kb")
    (tmp_path / "kb" / "datawheel.yaml").write_text("server:\n  rate_limit: 6/minute\n")
    first, second = Workspace.open(tmp_path / "kb"), Workspace.open(tmp_path / "kb")
    apps = [create_app(w, warm=False, shared_limits=True) for w in (first, second)]
    try:
        with running(apps[0]) as one, running(apps[1]) as two:
            codes = [
                httpx.get(f"{url}/api/me", headers=bearer(key)).status_code
                for url in [one, two] * 6
            ]
            refused = httpx.get(f"{two}/api/me", headers=bearer(key))
    finally:
        first.close()
        second.close()
    assert codes == [200] * 6 + [429] * 6, codes  # in memory each would have allowed 6
    assert "rate limit of 6/minute reached" in refused.json()["error"]
